"""``zoo evaluate``: how well, how faithfully and how fast a zoo model stylises a fixed photo set.

Metrics (all on the caffe VGG-19, the loss network Johnson et al. and Gatys et al. used):

- **style distance**: mean over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 of
  ``||G(out) - G(style)||² / ||G(style)||²`` (Gram matrices normalised by C*H*W, see
  ``lit_modules.losses.gram``), with the painting resized to the photos' size (long side);
  lower = closer to the painting's textures.
- **content distance**: ``||F(out) - F(photo)||² / ||F(photo)||²`` at relu4_2; lower = more of
  the photo's structure kept.
- **SSIM** of the output to the photo (torchmetrics, RGB, data range 1), and **layout SSIM**:
  of luminance, both downscaled to 128 px (texture blurred away: is the subject still there?).
- **black**: the worst photo's share of non-dark pixels (luminance > 0.1) clipped to black (every
  channel <= 0.02), the "droplet" artefact of under-trained instance-norm networks.
- **ms per megapixel** of the forward ``zoo apply`` runs (the Stylizer) on the current device
  (512x512, median of 3).

Each is the mean over the photo set (``--data DIR``: the first ``limit`` photos, sorted by name;
use photos the model was not trained on) at 512 px, the size people apply at. ``metrics_for``
takes any callable, so other networks (bench/quality.py's references) are measured the same way.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from lit_modules.errors import StyleZooError
from zoo import EVAL_SIZE as DEFAULT_SIZE
from zoo.media.images import IMAGE_EXTENSIONS, load_image
from zoo.registry import cards, styles
from zoo.registry.errors import ZooError
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"


class EvaluateError(StyleZooError):
    """A model cannot be evaluated (no photos, no style image...)."""


def photo_set(data: str | os.PathLike | None, limit: int = 8) -> list[Path]:
    if not data:
        raise EvaluateError("no photos to measure on: pass --data DIR (photos the model was not trained on)")
    d = Path(data)
    if not d.is_dir():
        raise EvaluateError(f"{d}: no such photo folder; pass --data DIR")
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]
    if not files:
        raise EvaluateError(f"{d}: no photos in this folder")
    return files


@torch.inference_mode()
def speed_ms_per_mp(fn: Callable[[torch.Tensor], torch.Tensor], device: str = "cpu", side: int = 512, repeats: int = 3) -> float:
    x = torch.rand(1, 3, side, side, device=device)
    fn(x)  # warm-up
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3 / (side * side / 1e6)


def style_targets(vgg, style_image: str | os.PathLike, style_size: int = 256, device: str = "cpu") -> dict:
    """Gram matrices of the painting (long side ``style_size``) at ``STYLE_LAYERS``."""
    from lit_modules.losses import gram

    return {k: gram(v) for k, v in vgg(load_image(style_image, style_size).to(device), STYLE_LAYERS).items()}


def style_distance(features: dict, target: dict) -> float:
    """Mean over ``STYLE_LAYERS`` of ||G(out) - G(style)||² / ||G(style)||² (features: vgg(out))."""
    from lit_modules.losses import gram

    return statistics.fmean(
        float(((gram(features[k]) - target[k]).pow(2).sum() / target[k].pow(2).sum()).item()) for k in STYLE_LAYERS)


def black_fraction(y: torch.Tensor, x: torch.Tensor) -> float:
    """Share of the photo's non-dark pixels (luminance > 0.1) that the output clips to black (every
    channel <= 0.02): the instance-norm "droplet" artefact of under-trained networks. (1, 3, H, W)."""
    lum = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1)  # (1, H, W)
    lit = lum > 0.1
    black = (y <= 0.02).all(dim=1) & lit
    return float(black.sum()) / max(1, int(lit.sum()))


@torch.inference_mode()
def metrics_for(
    fn: Callable[[torch.Tensor], torch.Tensor],
    photos: list[Path],
    style_image: str | os.PathLike,
    size: int = DEFAULT_SIZE,
    style_size: int | None = None,
    device: str = "cpu",
    per_photo: bool = False,
) -> dict:
    """Mean style distance, content distance, SSIM and layout SSIM of ``fn`` (RGB [0,1] -> RGB [0,1])
    over ``photos`` at ``size`` px, the painting at ``style_size`` px (default: the same size), and
    the worst photo's black-clipped share (``black_max``, a fraction)."""
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    from lit_modules.vgg import VGG19Features

    vgg = VGG19Features(layers=STYLE_LAYERS + (CONTENT_LAYER,), backbone="caffe").to(device)
    target = style_targets(vgg, style_image, style_size or size, device)
    rows = []
    for p in photos:
        x = load_image(p, size).to(device)
        y = fn(x).float().clamp(0, 1)
        fy, fx = vgg(y), vgg(x, (CONTENT_LAYER,))
        rows.append({
            "photo": p.name,
            "style_distance": style_distance(fy, target),
            "content_distance": float(((fy[CONTENT_LAYER] - fx[CONTENT_LAYER]).pow(2).sum() / fx[CONTENT_LAYER].pow(2).sum()).item()),
            "ssim": float(ssim(y, x, data_range=1.0).item()),
            "layout_ssim": layout_ssim(y, x),
            "black": black_fraction(y, x),
        })
    out = {k: statistics.fmean(r[k] for r in rows) for k in ("style_distance", "content_distance", "ssim", "layout_ssim")}
    out["black_max"] = max(r["black"] for r in rows)
    if per_photo:
        out["photos"] = rows
    return out


@torch.inference_mode()
def layout_ssim(y: torch.Tensor, x: torch.Tensor, side: int = 128) -> float:
    """SSIM of luminance between ``y`` and ``x`` (1, 3, H, W) after both are shrunk to a ``side`` px
    long side: texture is blurred away and the layout (a face, a skyline) is what is compared.
    Content distance at relu4_2 can stay low while a face is painted over; this does not."""
    import torch.nn.functional as F
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    def luma(t: torch.Tensor) -> torch.Tensor:  # (1, 3, H, W) -> (1, 1, h, w), long side = side
        h, w = t.shape[-2:]
        s = side / max(h, w)
        t = F.interpolate(t.float(), size=(max(1, round(h * s)), max(1, round(w * s))), mode="bilinear", antialias=True, align_corners=False)
        return (0.299 * t[:, :1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:]).clamp(0, 1)

    if y.shape[-2:] != x.shape[-2:]:
        y = torch.nn.functional.interpolate(y.float(), size=x.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
    return float(ssim(luma(y), luma(x), data_range=1.0).item())


def style_image_of(entry) -> Path:
    name = entry.record.style_name
    if not name:
        raise EvaluateError(f"{entry.ref} records no named style; pass --style-image PATH")
    try:
        return styles.resolve(name)
    except StyleZooError as e:
        raise EvaluateError(f"{entry.ref}: {e}; or pass --style-image PATH") from None


def evaluate(
    ref: str,
    zoo: str | None = None,
    data: str | os.PathLike | None = None,
    limit: int = 8,
    size: int = DEFAULT_SIZE,
    style_image: str | os.PathLike | None = None,
    device: str = "cpu",
    save: bool = True,
    card_dir: str | os.PathLike | None = None,
) -> dict:
    """Measure ``ref`` and (``save``) write the metrics into its index record and model card."""
    from lit_modules.hw import hardware_name
    from zoo.inference.stylizer import Stylizer

    photos = photo_set(data, limit)
    stylizer = Stylizer.load(ref, zoo, device, "auto", tile=None)  # the forward zoo apply runs, whole photos
    entry, dtype = stylizer.source, stylizer.dtype
    style_path = Path(style_image) if style_image else style_image_of(entry)
    style_size = size  # the painting at the output's size: strokes compared at the scale people see

    def fn(x: torch.Tensor) -> torch.Tensor:
        return stylizer.tensor(x).to(x.device)

    m = metrics_for(fn, photos, style_path, size=size, style_size=style_size, device=device)
    m.update({
        "images": len(photos), "data": str(data), "size": size,
        "style_size": style_size, "backbone": "caffe",
        "speed": {"ms_per_mp": round(speed_ms_per_mp(fn, device), 1), "device": hardware_name(device),
                  "precision": str(dtype).removeprefix("torch.")},
    })
    m = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in m.items()}
    if save:
        entry = save_metrics(entry, m, card_dir)
    return {"ref": entry.ref, "metrics": m}


def save_metrics(entry, m: dict, card_dir: str | os.PathLike | None = None):
    """Write metrics ``m`` into ``entry``'s index record and re-render its card (and, if it is the
    latest version, ``card_dir``'s copy). Returns the updated entry."""
    if entry.zoo.readonly:
        raise ZooError(f"{entry.ref} is a built-in model (read-only); to update it, pass --zoo zoo/builtin from a source checkout")
    info = {**entry.info, "metrics": m}
    files = {}
    if info.get("card"):
        sample = info.get("sample")
        files[info["card"]] = cards.render(entry.name, info, Path(sample).name if sample else None).encode()
    entry = entry.zoo.update(entry.name, entry.version, {"metrics": m}, files)
    if card_dir is not None:
        latest = entry.zoo.find(entry.name)
        if latest is not None and latest.version == entry.version:
            cards.write_card_copy(entry, card_dir)
    return entry
