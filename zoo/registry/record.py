"""A version's record, typed: what ``index.json`` and ``<zoo>/models/<name>/v<N>.json`` hold.

The on-disk format is a plain JSON object; ``VersionRecord`` reads it (unknown keys are kept and
written back untouched), so every reader asks for ``record.style`` instead of re-deriving
``info.get("style") or {}``.
"""
from __future__ import annotations

from dataclasses import dataclass


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


@dataclass(frozen=True)
class VersionRecord:
    """``{version, file, sha256, bytes, created, style, config, training, metrics, card, sample, origin, ...}``."""

    raw: dict

    @property
    def version(self) -> int:
        return int(self.raw["version"])

    @property
    def file(self) -> str:
        return self.raw["file"]

    @property
    def sha256(self) -> str:
        return self.raw["sha256"]

    @property
    def bytes(self) -> int:
        return int(self.raw.get("bytes") or 0)

    @property
    def created(self) -> str:
        return str(self.raw.get("created") or "")

    @property
    def style(self) -> dict:
        """The painting: name, title, artist, year, license, file, sha256 (what is known)."""
        return _dict(self.raw.get("style"))

    @property
    def style_name(self) -> str | None:
        return self.style.get("name") or None

    @property
    def title(self) -> str | None:
        """The painting's title, else the style's name."""
        return self.style.get("title") or self.style.get("name") or None

    @property
    def config(self) -> dict:
        return _dict(self.raw.get("config"))

    @property
    def training(self) -> dict:
        return _dict(self.raw.get("training"))

    @property
    def metrics(self) -> dict:
        return _dict(self.raw.get("metrics"))

    @property
    def speed(self) -> dict:
        return _dict(self.metrics.get("speed"))

    @property
    def origin(self) -> dict:
        """Where a pulled version came from (source, revision, ref, sha256); {} for a local one."""
        return _dict(self.raw.get("origin"))

    @property
    def family(self) -> str | None:
        """The hash of the convolutions shared with the styles trained together with it, else None."""
        return _dict(self.config.get("family")).get("shared_sha256")

    @property
    def card(self) -> str | None:
        return self.raw.get("card") or None

    @property
    def sample(self) -> str | None:
        return self.raw.get("sample") or None
