"""What the server accepts, and the HTTP status of each library error."""
from __future__ import annotations

from lit_modules.errors import ConfigError, StyleZooError
from zoo.media.images import ImageError, ImageTooLarge, NotAnImage
from zoo.registry.errors import IntegrityError, InvalidName, ModelNotFound

MAX_UPLOAD_BYTES = 25 << 20  # 25 MB: a phone photo fits; anything bigger is refused with 413
MAX_PIXELS = 50_000_000  # decoded size limit (a 50 MP photo), checked before decoding


def status_of(e: StyleZooError) -> int:
    """HTTP status of a library error."""
    if isinstance(e, (ModelNotFound, InvalidName)):
        return 404
    if isinstance(e, ImageTooLarge):
        return 413
    if isinstance(e, NotAnImage):
        return 415
    if isinstance(e, IntegrityError):
        return 500  # the server's own model file is broken: not the client's fault
    if isinstance(e, (ImageError, ConfigError)):
        return 400
    return 400
