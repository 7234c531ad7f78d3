"""Stroke scale (``zoo apply --scale``): the size of the network's strokes relative to the photo.

A feed-forward network paints strokes of a fixed size in pixels, so a 24 MP photo comes out as a
busier picture with tiny strokes than its 512 px preview. ``--scale S`` stylises the photo at
1/S of its size (strokes S times larger); ``auto`` picks the S at which the photo's long side is
``PREVIEW`` px, the size previews and ``zoo evaluate`` use; ``1`` is the network as trained.

Below full size the result is brought back in three frequency bands, each at its own resolution:

- **base**: the working result, upsampled (Lanczos) after one back-projection step, so that the
  output shrunk to the working size gives the working result back (the preview's look);
- **texture**: half of what a second pass of the network at an intermediate size (long side
  ``max(L/2, min(L, 2w))``) adds above the working resolution: brush texture where the base is
  soft (``TEXTURE``). Skipped when that pass is under 1.5x the working size (little to add);
- **edges**: the photo's own luminance detail above 1.5x the working resolution (``EDGE_SPLIT``).

Measured on the 17.9 MP demo photo (bench/scale.py): the texture band keeps the output crisp at
100 % (the photo detail alone looks like an upscaled preview), the photo band keeps its edges.
Memory: the photo and the output (uint8), the intermediate pass, and float strips of ``ROWS`` rows.
Torch-free at import: the CLI reads ``DEFAULT_SCALE`` and ``check_scale`` before torch is loaded.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from PIL import Image

from lit_modules.errors import ConfigError
from zoo import EVAL_SIZE as PREVIEW

DEFAULT_SCALE = "auto"  # zoo apply, zoo serve: a photo of any size looks like its preview
MIN_SCALE, MAX_SCALE = 0.25, 64.0
ROWS = 256  # output rows per strip of the full-size composition
# Weight of the texture band. At 1 the network's fine texture drowns the photo's edges (gradient
# correlation with the photo 0.10 on the 17.9 MP demo photo, starry; 0.115 at --scale 1); at 0.5
# the edges come back (0.24) and the texture still reads as paint at 100 %; style d of the shrunk
# result 1.04x the preview's (1.09x at 1).
TEXTURE = 0.5
# The photo's edges are its detail above 1.5x the working size, not above the working size itself:
# Lanczos leaks the band just above the split into the shrunk result, and on a flat style (udnie,
# tubingen upscaled to 12 MP) that moved its style d 1.23x from the preview's (1.02x with 1.5x).
EDGE_SPLIT = 1.5
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
LANCZOS = Image.Resampling.LANCZOS

Run = Callable[[Image.Image, bool], Image.Image]  # (photo, is the working pass) -> stylised photo


def check_scale(scale: str | float | int) -> str | float:
    """``auto`` or a stroke scale in [MIN_SCALE, MAX_SCALE] (a number or its text); else one line."""
    if isinstance(scale, str) and scale.strip().lower() == "auto":
        return "auto"
    try:
        s = float(scale)
    except (TypeError, ValueError):
        s = float("nan")
    if not MIN_SCALE <= s <= MAX_SCALE:  # also refuses nan
        raise ConfigError(f"scale must be auto or a number from {MIN_SCALE:g} to {MAX_SCALE:g}, got {scale!r}")
    return s


def working_side(long_side: int, scale: str | float) -> int:
    """Long side at which the network runs for a photo of ``long_side`` px at ``scale``."""
    scale = check_scale(scale)
    if scale == "auto":
        return min(long_side, PREVIEW)
    return max(8, round(long_side / scale))


def texture_side(long_side: int, work: int) -> int | None:
    """Long side of the texture pass, or None when it would add little (under 1.5x the working size)."""
    side = max(long_side // 2, min(long_side, 2 * work))
    return side if side >= 1.5 * work else None


def stylize_scaled(run: Run, img: Image.Image, scale: str | float) -> Image.Image:
    """``img`` (RGB) stylised with strokes ``scale`` times their trained size; ``run`` stylises a photo."""
    from zoo.media.images import resize_long_side  # loads torch: not at import (module docstring)

    W, H = img.size
    L = max(W, H)
    work = working_side(L, scale)
    if work == L:
        return run(img, True)
    if work > L:  # smaller strokes: stylise an enlarged photo, then shrink it
        return run(resize_long_side(img, work), True).resize((W, H), LANCZOS)
    small = resize_long_side(img, work)
    sty = run(small, True)
    # one back-projection step: base = 2*sty - down(up(sty)), so down(up(base)) ~ sty
    base = 2 * _f32(sty) - _f32(sty.resize((W, H), LANCZOS).resize(small.size, LANCZOS))  # (h, w, 3)
    tex = None
    side = texture_side(L, work)
    if side is not None:
        mid = resize_long_side(img, side)
        ym = run(mid, False)
        tex = _f32(ym) - _f32(ym.resize(small.size, LANCZOS).resize(mid.size, LANCZOS))  # (hm, wm, 3) high band
        del mid, ym
    split = round(EDGE_SPLIT * work)  # at or above the photo's size there is no detail to add
    return _compose(img, base, tex, _f32(resize_long_side(img, split)) @ LUMA if split < L else None)


def _f32(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0  # (h, w, 3)


def _resize_rows(a: np.ndarray, size: tuple[int, int], r0: int, r1: int) -> np.ndarray:
    """Rows r0:r1 of ``a`` (h, w[, C]) float resized (Lanczos) to ``size`` (W, H): (r1 - r0, W[, C]).
    Pillow's ``box`` keeps the filter's support beyond the strip, so strips join without seams."""
    W, H = size
    h, w = a.shape[:2]
    box = (0.0, r0 * h / H, float(w), r1 * h / H)
    chans = a[..., None] if a.ndim == 2 else a
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(chans[..., c]), mode="F").resize((W, r1 - r0), LANCZOS, box=box))
           for c in range(chans.shape[-1])]
    return out[0] if a.ndim == 2 else np.stack(out, axis=-1)


def _compose(img: Image.Image, base: np.ndarray, tex: np.ndarray | None, luma_split: np.ndarray | None) -> Image.Image:
    """Full-size output = up(base) + TEXTURE * up(tex) + (photo luma - up(its luma at the split size)),
    ``ROWS`` rows at a time."""
    W, H = img.size
    out = np.empty((H, W, 3), dtype=np.uint8)
    for r0 in range(0, H, ROWS):
        r1 = min(H, r0 + ROWS)
        y = _resize_rows(base, (W, H), r0, r1)  # (n, W, 3)
        if tex is not None:
            y += TEXTURE * _resize_rows(tex, (W, H), r0, r1)
        if luma_split is not None:
            edges = _f32(img.crop((0, r0, W, r1))) @ LUMA - _resize_rows(luma_split, (W, H), r0, r1)  # (n, W)
            y += edges[..., None]
        np.clip(y, 0.0, 1.0, out=y)
        out[r0:r1] = (y * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(out, "RGB")
