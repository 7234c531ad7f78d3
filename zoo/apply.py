"""Apply a zoo model to photos: verified load, tiled inference in bounded memory, colour, strength.

Imports only torch, safetensors, ``lit_modules.transformer_net``, ``lit_modules.color``,
``zoo.images`` and ``zoo.strips`` (the forward pass; no Lightning, no torchvision): a 1080x1080
photo's whole process is dominated by ``import torch`` and that forward pass.

Tiling: a photo above the untiled budget is cut into tiles (multiples of 4 px, so the
network's two stride-2 stages see the same sampling grid as the whole image) with ``CONTEXT``
px of real neighbouring pixels on every side, whose centres are blended with linear ramps over
``OVERLAP`` px. Every instance norm uses statistics recorded once on a downscaled pass of the
whole photo, so tiles share one tone and there are no seams.
"""
from __future__ import annotations

import glob
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from lit_modules.color import preserve_color as _preserve_color
from lit_modules.transformer_net import TransformerNet
from zoo.images import IMAGE_EXTENSIONS, ImageError, check_output_path, pil_to_tensor, read_image, resize_long_side, save_image
from zoo.strips import strip_forward

CONTEXT = 48  # px of real context around each tile (the network's effective receptive radius)
OVERLAP = 32  # px over which neighbouring tiles are cross-faded
STATS_SIZE = 1024  # long side of the downscaled pass that records the instance-norm statistics
UNTILED_MAX_MP = 1.25  # auto: untiled up to this many megapixels per GB of budget
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _dtype(precision: str, device: torch.device) -> torch.dtype:
    from lit_modules.hw import bf16_fast

    if precision not in PRECISIONS:
        from zoo.index import ZooError

        raise ZooError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return torch.bfloat16 if bf16_fast(device) else torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def net_from_bytes(data: bytes, config: dict) -> TransformerNet:
    """A TransformerNet from verified safetensors bytes and the version's config (fp32, eval)."""
    from safetensors.torch import load as st_load

    from zoo.index import IntegrityError

    net = TransformerNet(width=float(config.get("width", 1.0)), num_residual=int(config.get("num_residual", 5)))
    try:
        state = st_load(data)
    except Exception as e:
        raise IntegrityError(f"cannot read safetensors weights ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as e:
        raise IntegrityError(f"weights do not fit TransformerNet(width={net.width}): {str(e).splitlines()[0][:160]}") from None
    return net.eval().requires_grad_(False)


from zoo.blends import Blend, parse_blend, resolve_model  # noqa: E402  (re-exported)


def load_model(ref: str, zoo: str | None = None, device: str = "cpu", precision: str = "auto"):
    """Resolve ``name[@N]`` (or a blend ``a+b``) in the user zoo + built-in layer, verify, load.
    Returns (net, entry, dtype)."""
    net, entry = resolve_model(ref, zoo)
    dev = torch.device(device)
    dtype = _dtype(precision, dev)
    net = net.to(dev, dtype)
    return net, entry, dtype


def _ramp(n: int, lead: int, trail: int) -> torch.Tensor:
    """Weights along one axis of a tile: linear 0->1 over ``lead`` px, 1->0 over ``trail`` px."""
    w = torch.ones(n)
    lead, trail = min(lead, n // 2), min(trail, n // 2)
    if lead:
        w[:lead] = torch.linspace(0, 1, lead + 2)[1:-1]
    if trail:
        w[n - trail :] = torch.linspace(1, 0, trail + 2)[1:-1]
    return w


def _spans(total: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of tiles covering ``total`` px: starts are multiples of 4 (the network's two
    stride-2 stages then see the whole image's sampling grid), neighbours share ``overlap`` px,
    sizes are even-ish and at most ``tile + 4``."""
    if total <= tile:
        return [(0, total)]
    n = math.ceil((total - overlap) / (tile - overlap))
    step = math.ceil((total - overlap) / n / 4) * 4
    spans = [(i * step, min(total, i * step + step + overlap)) for i in range(n)]
    spans[-1] = (spans[-1][0], total)
    return [sp for sp in spans if sp[0] < total]


def _budget_bytes() -> int:
    """Activation budget: a quarter of the available memory, at most 512 MB."""
    try:
        import psutil

        avail = psutil.virtual_memory().available
    except Exception:
        avail = 4 << 30
    return int(min(avail // 4, 512 << 20))


def _bytes_per_px(width: float) -> float:
    # Peak of the strip-wise forward (``strip_forward``): one full-resolution 32*width-channel map
    # plus the next layer's output, fp32 (~240*width B/px), plus the photo in and out.
    return 240 * max(width, 0.25) + 24


def auto_tile(h: int, w: int, width: float = 1.0, budget_bytes: int | None = None) -> int | None:
    """None (untiled) when the photo fits the activation budget, else a tile size in px."""
    budget_bytes = budget_bytes or _budget_bytes()
    per_px = _bytes_per_px(width)
    if h * w * per_px <= budget_bytes:
        return None
    side = int((budget_bytes / per_px) ** 0.5) - 2 * CONTEXT
    return max(128, min(1024, side // 4 * 4))


def auto_stats_size(h: int, w: int, width: float = 1.0, budget_bytes: int | None = None) -> int:
    """Long side of the statistics pass: as large as the budget allows (closer to the untiled result)."""
    budget_bytes = budget_bytes or _budget_bytes()
    aspect = min(h, w) / max(h, w)
    side = int((budget_bytes / _bytes_per_px(width) / aspect) ** 0.5)
    return max(STATS_SIZE, min(side, max(h, w)))


@torch.inference_mode()
def record_stats(net: TransformerNet, x: torch.Tensor, dtype: torch.dtype, stats_size: int = STATS_SIZE) -> list:
    """Every instance norm's (mean, var) for ``x`` (1, 3, H, W) float, recorded on a pass at
    long side ``stats_size`` (downscaled with area averaging; never upscaled)."""
    H, W = x.shape[-2:]
    scale = min(1.0, stats_size / max(H, W))
    if scale < 1.0:
        x = F.interpolate(x, size=(max(8, round(H * scale)), max(8, round(W * scale))), mode="area")
    norms = net.norms()
    for n in norms:
        n.stats, n.record = None, True
    try:
        strip_forward(net, x, dtype)
        return [n.stats for n in norms]
    finally:
        for n in norms:
            n.stats, n.record = None, False


@torch.inference_mode()
def stylize_tensor(
    net: TransformerNet,
    x: torch.Tensor,
    tile: int | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    dtype: torch.dtype = torch.float32,
    stats_size: int = STATS_SIZE,
    out: torch.Tensor | None = None,
    stats: list | None = None,
) -> torch.Tensor:
    """(1, 3, H, W) RGB [0, 1] -> stylised (1, 3, H, W) float32 on the CPU.

    ``stats``: instance-norm statistics to use (from ``record_stats``; video shares them across
    frames); else the image's own, recorded on a ``stats_size`` pass when tiled.

    ``x`` may be uint8 (0..255) to save memory on huge photos; tiles are converted one at a time.
    ``tile=None`` runs the whole image at once (exact instance-norm statistics).
    """
    if not 0.0 <= strength <= 1.0:
        from zoo.index import ZooError

        raise ZooError(f"strength must be in [0, 1], got {strength}")
    device = next(net.parameters()).device
    _, _, H, W = x.shape

    def prep(t: torch.Tensor) -> torch.Tensor:
        t = t.to(device)
        return t.float().div_(255) if t.dtype == torch.uint8 else t.float()

    def post(y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if preserve_color:
            y = _preserve_color(y, c)
        if strength < 1.0:
            y = torch.lerp(c, y, strength)
        return y.float().cpu()

    if tile is None or (H <= tile + 2 * CONTEXT and W <= tile + 2 * CONTEXT):
        c = prep(x)
        net.set_norm_stats(stats)  # None: each norm uses this image's own statistics
        try:
            return post(strip_forward(net, c, dtype), c)
        finally:
            net.set_norm_stats(None)

    if stats is None:
        stats = record_stats(net, prep(x), dtype, stats_size)
    if out is None:
        out = torch.zeros(1, 3, H, W)
    wsum = torch.zeros(1, 1, H, W)
    net.set_norm_stats(stats)
    try:
        for y0, y1 in _spans(H, tile, OVERLAP):
            for x0, x1 in _spans(W, tile, OVERLAP):
                cy0, cx0 = max(0, y0 - CONTEXT), max(0, x0 - CONTEXT)
                cy1, cx1 = min(H, y1 + CONTEXT), min(W, x1 + CONTEXT)
                c = prep(x[:, :, cy0:cy1, cx0:cx1])
                y = post(strip_forward(net, c, dtype), c)[:, :, y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
                wy = _ramp(y1 - y0, OVERLAP if y0 > 0 else 0, OVERLAP if y1 < H else 0)
                wx = _ramp(x1 - x0, OVERLAP if x0 > 0 else 0, OVERLAP if x1 < W else 0)
                wgt = (wy[:, None] * wx[None, :])[None, None]
                out[:, :, y0:y1, x0:x1].addcmul_(y, wgt)
                wsum[:, :, y0:y1, x0:x1].add_(wgt)
    finally:
        net.set_norm_stats(None)
    return out.div_(wsum.clamp_min_(1e-8))


def expand_inputs(inputs: Iterable[str | os.PathLike], extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Files, folders (their files with ``extensions``, sorted) and globs -> paths; unknown ones raise one line."""
    out: list[Path] = []
    for item in inputs:
        s = str(item)
        p = Path(s)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in extensions and q.is_file())
        elif p.is_file():
            out.append(p)
        elif any(ch in s for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(s, recursive=True))
            out += [m for m in matches if m.is_file() and m.suffix.lower() in extensions]
        else:
            raise ImageError(f"{s}: no such file, folder or matching glob")
    if not out:
        raise ImageError(f"no {'images' if extensions == IMAGE_EXTENSIONS else 'images or videos'} found in {', '.join(map(str, inputs))}")
    return list(dict.fromkeys(out))


def plan_outputs(inputs: list[Path], output: Path | None, out_dir: Path | None, suffix: str, overwrite_input: bool) -> list[Path]:
    """Output path of every input, validated before any work."""
    if output is not None and len(inputs) > 1:
        raise ImageError(f"-o names one file but {len(inputs)} inputs were given; use --out-dir DIR")
    if output is not None:
        return [check_output_path(output, inputs, overwrite_input)]
    outs = []
    for p in inputs:
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            q = out_dir / f"{p.stem}{p.suffix if p.suffix.lower() in ('.jpg', '.jpeg', '.png', '.webp') else '.jpg'}"
        else:
            q = p.with_name(f"{p.stem}_{suffix}.jpg")
        outs.append(check_output_path(q, inputs, overwrite_input))
    return outs


@torch.inference_mode()
def to_pil_inplace(y: torch.Tensor):
    """(1, 3, H, W) float [0, 1] -> PIL, reusing ``y``'s memory (no extra float copies of a 27 MP photo)."""
    from PIL import Image

    u8 = y[0].clamp_(0, 1).mul_(255).add_(0.5).to(torch.uint8).permute(1, 2, 0).contiguous()
    return Image.fromarray(u8.numpy(), "RGB")


@dataclass
class ApplyReport:
    ref: str
    outputs: list[Path]
    seconds: float
    megapixels: float
    tiled: int


def apply_files(
    ref: str,
    inputs: list[str | os.PathLike],
    output: Path | None = None,
    out_dir: Path | None = None,
    zoo: str | None = None,
    size: int | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    tile: str = "auto",
    device: str = "cpu",
    precision: str = "auto",
    overwrite_input: bool = False,
    on_progress: Callable[[int, int, Path], None] | None = None,
) -> ApplyReport:
    """Stylise every input file with ``ref`` and write the outputs (atomically)."""
    t0 = time.perf_counter()
    files = expand_inputs(inputs)
    net, entry, dtype = load_model(ref, zoo, device, precision)
    outs = plan_outputs(files, output, out_dir, entry.name, overwrite_input)
    if tile != "auto" and not (tile.isdigit() and int(tile) >= 64):
        raise ImageError(f"--tile must be auto or a tile size in px >= 64, got {tile!r}")
    mp, tiled = 0.0, 0
    for i, (src, dst) in enumerate(zip(files, outs)):
        img = resize_long_side(read_image(src), size)
        W, H = img.size
        t = auto_tile(H, W, net.width) if tile == "auto" else int(tile) // 4 * 4
        if t is not None and max(H, W) > t + 2 * CONTEXT:
            import warnings

            import numpy as np

            with warnings.catch_warnings():  # read-only view of Pillow's buffer: never written to
                warnings.simplefilter("ignore", UserWarning)
                x = torch.from_numpy(np.asarray(img)).permute(2, 0, 1).unsqueeze(0)  # uint8, no copy
            tiled += 1
        else:
            x = pil_to_tensor(img)
        del img
        y = stylize_tensor(net, x, tile=t, strength=strength, preserve_color=preserve_color, dtype=dtype,
                           stats_size=auto_stats_size(H, W, net.width))
        del x
        save_image(to_pil_inplace(y), dst)
        del y
        mp += H * W / 1e6
        if on_progress:
            on_progress(i + 1, len(files), dst)
    return ApplyReport(entry.ref, outs, time.perf_counter() - t0, mp, tiled)
