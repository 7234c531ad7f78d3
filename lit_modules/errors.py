"""Typed, one-line errors. Library code raises these; only `zoo/cli.py` turns them into exits."""


class StyleZooError(Exception):
    """Base class: the message is one line a user can act on."""


class BackboneUnavailable(StyleZooError):
    """A loss-network backbone's weights cannot be loaded."""


class ConfigError(StyleZooError):
    """A setting is out of range or names something that does not exist."""
