"""Typed, one-line errors. Library code raises these; only ``zoo/cli`` turns them into exits."""
from __future__ import annotations

import re


class StyleZooError(Exception):
    """Base class: the message is one line a user can act on."""


class BackboneUnavailable(StyleZooError):
    """A loss-network backbone's weights cannot be loaded."""


class ConfigError(StyleZooError):
    """A setting is out of range or names something that does not exist."""


class TrainingDiverged(StyleZooError):
    """The training loss became NaN or infinite: the run stops before the weights do."""


def one_line(e: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (an OSError's strerror first), else its type's name.

    Third-party errors (Pillow, FFmpeg, the Hub client) often span many lines; a user needs one."""
    text = str(getattr(e, "strerror", None) or e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:limit]


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/+(?=[^/])")  # 2+ letters: C:/photo.jpg is a path


def as_url(path) -> str | None:
    """``path`` as the URL it was typed as (Path() turns https:// into https:/), or None if it is not one.

    The zoo reads local files; a pasted URL should say so, not "no such file"."""
    m = _URL.match(str(path))
    return None if m is None else f"{m.group(1)}://{str(path)[m.end():]}"
