"""The only place that reads or writes image files.

Reading: any mode Pillow opens (EXIF orientation, L, LA, RGBA, P, I;16, CMYK, ...) becomes RGB
float in [0, 1], shape (1, 3, H, W). Non-images, truncated files and decompression bombs raise
``ImageError`` with one line. Writing is atomic (temp file + rename) and refuses to overwrite
the input unless asked.
"""
from __future__ import annotations

import io
import math
import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageFile, ImageOps

from lit_modules.errors import StyleZooError, as_url, one_line
from .files import mkstemp_beside

# Anything above this many pixels is refused as a likely decompression bomb (Pillow's own
# default warns at ~89 MP and fails at twice that; we fail at the limit itself).
MAX_PIXELS = 250_000_000
SAVE_EXTENSIONS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
IMAGE_EXTENSIONS = tuple(SAVE_EXTENSIONS) + (".gif",)


class ImageError(StyleZooError):
    """An image file cannot be read or written."""


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB; alpha is composited over white. An RGB image is returned as
    is, and no step holds more than two full-size copies (a 50 MP upload is 200 MB per copy)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I") and arr.max() > 255 else 255.0
        arr /= hi
        arr *= 255.0
        arr += 0.5
        img = Image.fromarray(np.clip(arr, 0, 255, out=arr).astype(np.uint8), "L")
        del arr
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        out = Image.new("RGB", rgba.size, (255, 255, 255))
        out.paste(rgba, (0, 0), rgba)  # the same pixels as alpha_composite over opaque white, one copy fewer
        return out
    return img if img.mode == "RGB" else img.convert("RGB")


class ImageTooLarge(ImageError):
    """More pixels than allowed (a likely decompression bomb, or over a server's limit)."""


class NotAnImage(ImageError):
    """Bytes Pillow cannot identify as an image."""


class ImageTooSmall(ImageError):
    """A side too short for the network (or a resize that leaves one)."""


class FlatImage(ImageError):
    """A painting of one flat colour: nothing to learn a style from."""


def check_not_flat(x: torch.Tensor, label: str, least: float = 2 / 255) -> None:
    """Refuse a painting ``x`` (1, 3, H, W) in [0, 1] whose every channel spreads less than ``least``
    (standard deviation): its Gram matrices hold no texture, so a run learns nothing from it (zoo
    train's calibration gave a flat grey one a style weight of 4e-5; Gatys paints the photo grey).
    A blank export or a fully transparent PNG (composited over white) is the usual cause."""
    spread = float(x.flatten(2).std(dim=-1).max())
    if spread < least:
        raise FlatImage(f"{label} is one flat colour (its pixels vary by {spread * 255:.1f} of 255): there is no "
                        "style in it to learn; give a painting")


# A painting enlarged more than this to the size it is read at has lost brushwork the style term learns.
# 13-minute models of cafe_terrace from copies of 448, 384 and 256 px enlarged to 512 land 0.156, 0.185
# and 0.297 from the painting by the zoo's style distance, against 0.125 from its 800 px file
# (docs/models.md): even 1.14x costs a quarter. (zoo train reads such copies at their own size instead,
# down to half of 512: train.schedule.painting_read_size; zoo stylize names them.)
ENLARGED = 1.1


def enlargement_note(label: str, wh: tuple[int, int], long_side: int, reader: str, also: str = "") -> str | None:
    """A line for a painting of ``wh`` (W, H) px that ``reader`` reads at ``long_side`` px, if that
    enlarges it more than ``ENLARGED`` times (``also``: another remedy, ending the line); None otherwise."""
    w, h = wh
    if long_side <= ENLARGED * max(w, h):
        return None
    return (f"{label} is {w}x{h} px and {reader} reads it at {long_side} px ({long_side / max(w, h):.1f}x enlarged): "
            f"its brushwork will be soft; a copy {long_side} px or more on its long side paints sharper{also}")


def url_error(path: str | os.PathLike) -> ImageError:
    """For a pasted URL where a file was expected (call when ``as_url(path)``)."""
    return ImageError(f"{as_url(path)}: a URL; the zoo reads local files (download it first)")


def read_image(path: str | os.PathLike) -> Image.Image:
    """Open, fully decode and orient an image as RGB. Raises ImageError."""
    path = Path(path)
    if not path.is_file():
        if not path.exists() and as_url(path):
            raise url_error(path)
        raise ImageError(f"{path}: {'a folder, not an image file' if path.is_dir() else 'no such file'}")
    return _decode(path, str(path), MAX_PIXELS)


def decode_image(data: bytes | BinaryIO, label: str = "upload", max_pixels: int = MAX_PIXELS,
                 max_side: int | None = None) -> Image.Image:
    """Image bytes or a binary file (an upload) -> oriented RGB; same checks as ``read_image``, with a
    pixel limit. ``max_side``: the long side is shrunk to it, and a JPEG is decoded at a reduced
    scale (1/2 to 1/8) when that still covers it, so a large photo never exists at full size."""
    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    img = _decode(src, label, max_pixels, max_side)
    return img if max_side is None or max(img.size) <= max_side else resize_long_side(img, max_side)


def declared_pixels(data: bytes | BinaryIO, label: str = "upload", max_pixels: int = MAX_PIXELS) -> int:
    """Width x height from the image's header, nothing decoded; a file is rewound afterwards.
    Raises ``NotAnImage`` and ``ImageTooLarge`` as decoding would."""
    src = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else data
    start = src.tell()
    try:
        with _opened(src, label, max_pixels) as img:
            pixels = img.width * img.height
    finally:
        src.seek(start)
    if pixels > max_pixels:
        raise _too_large(label, max_pixels)
    return pixels


def _too_large(label: str, max_pixels: int) -> ImageTooLarge:
    return ImageTooLarge(f"{label}: image too large (over {max_pixels:,} pixels), refused as a possible decompression bomb")


@contextmanager
def _opened(src, label: str, max_pixels: int):
    """``Image.open(src)`` under ``_pillow_limits``, Pillow's failures as this module's one-line errors
    (the one mapping for headers and pixels alike)."""
    try:
        with _pillow_limits(max_pixels), Image.open(src) as img:
            yield img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(label, max_pixels) from None
    except Image.UnidentifiedImageError:
        raise NotAnImage(f"{label}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{label}: cannot decode image ({one_line(e)})") from None


@contextmanager
def _pillow_limits(max_pixels: int):
    """Pillow's bomb limit at ``max_pixels`` (its warning an error) and truncated files refused."""
    old_max, old_trunc = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = max_pixels, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = old_max, old_trunc


def _draft(img: Image.Image, max_side: int | None) -> None:
    """Let a JPEG decode at the smallest of 1/2, 1/4, 1/8 scale whose long side still reaches ``max_side``."""
    if max_side is None or img.format != "JPEG" or max(img.size) <= max_side:
        return
    k = max_side / max(img.size)
    img.draft(None, (max(1, math.ceil(img.width * k)), max(1, math.ceil(img.height * k))))


def _decode(src, label: str, max_pixels: int, max_side: int | None = None) -> Image.Image:
    with _opened(src, label, max_pixels) as img:
        if img.width * img.height > max_pixels:  # checked before decoding a single pixel
            raise Image.DecompressionBombError(label)
        _draft(img, max_side)
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # in place: no second full-size copy
        return _to_rgb(img)


def encode_image(img: Image.Image, fmt: str = "JPEG", quality: int = 92) -> bytes:
    """An RGB image as JPEG / PNG / WEBP bytes (for responses; files go through ``save_image``)."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def resize_long_side(img: Image.Image, size: int | None) -> Image.Image:
    """Resize so the longer side is ``size`` (no-op for None), keeping the aspect ratio."""
    if size is None or max(img.size) == size:
        return img
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img.resize(new, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (1, 3, H, W) float32 in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().div_(255).contiguous()


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) float in [0, 1] -> RGB PIL image."""
    if x.dim() == 4:
        x = x[0]
    arr = (x.detach().float().clamp(0, 1).mul(255).add_(0.5)).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def load_image(path: str | os.PathLike, size: int | None = None) -> torch.Tensor:
    """Read an image file as (1, 3, H, W) RGB float in [0, 1], long side resized to ``size``."""
    return pil_to_tensor(resize_long_side(read_image(path), size))


def check_output_path(path: str | os.PathLike, inputs: list[Path] = (), overwrite_input: bool = False) -> Path:
    """Validate an output path before any work is done: known extension, existing folder, not an input."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in SAVE_EXTENSIONS:
        raise ImageError(f"{path}: unknown output format {ext or '(no extension)'}; use one of {', '.join(SAVE_EXTENSIONS)}")
    if not path.parent.exists():
        raise ImageError(f"{path}: folder {path.parent} does not exist")
    if not overwrite_input and any(path.exists() and Path(i).exists() and path.resolve() == Path(i).resolve() for i in inputs):
        raise ImageError(f"{path}: refusing to overwrite an input image (pass --overwrite-input to allow)")
    return path


def save_image(x: torch.Tensor | Image.Image, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write atomically: a temp file in the same folder, then rename over the target."""
    path = check_output_path(path, overwrite_input=True)
    img = x if isinstance(x, Image.Image) else tensor_to_pil(x)
    fmt = SAVE_EXTENSIONS[path.suffix.lower()]
    fd, tmp = mkstemp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
            img.save(f, format=fmt, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@torch.inference_mode()
def to_pil_inplace(y: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) float [0, 1] -> PIL, reusing ``y``'s memory (no extra float copies of a 27 MP photo)."""
    u8 = y[0].clamp_(0, 1).mul_(255).add_(0.5).to(torch.uint8).permute(1, 2, 0).contiguous()
    return Image.fromarray(u8.numpy(), "RGB")
