"""The registry's errors: one line each (``lit_modules.errors.StyleZooError``)."""
from __future__ import annotations

from lit_modules.errors import StyleZooError


class ZooError(StyleZooError):
    """A zoo cannot be read or written."""


class ModelNotFound(ZooError):
    """No model or version of that name."""


class IntegrityError(ZooError):
    """A model file does not match the index (tampered, truncated) or is not safetensors."""


class InvalidName(ZooError):
    """A model name outside ``[a-z0-9_-]``, or a reference that does not parse."""


class HubError(ZooError):
    """A model cannot be pushed to or pulled from a Hub repo or URL."""


class InvalidRecord(IntegrityError):
    """A version record (a pulled config.json, a version's config) of the wrong shape, type or range."""
