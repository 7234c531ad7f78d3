"""The Stylizer: one loaded network and how it is applied, for every caller (``zoo apply`` photos and
videos, the web page, ``zoo evaluate``, the card sample of ``zoo publish``, ``zoo.load``).

Tiling: a photo above the untiled budget is cut into tiles (multiples of 4 px, so the network's
two stride-2 stages see the same sampling grid as the whole image) with ``CONTEXT`` px of real
neighbouring pixels on every side, whose centres are blended with linear ramps over ``OVERLAP`` px.
Every instance norm uses statistics recorded once on a downscaled pass of the whole photo, so
tiles share one tone and there are no seams. The forward itself is ``zoo.inference.forward``
(bounded memory, channels_last).
"""
from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from lit_modules.color import preserve_color as _keep_color
from lit_modules.errors import ConfigError
from lit_modules.transformer_net import TransformerNet
from zoo.media.images import ImageTooSmall, pil_to_tensor, to_pil_inplace
from zoo.registry.store import Entry, network_from_bytes

from .forward import strip_forward
from .loader import Blend, load
from .scale import check_scale, stylize_scaled, texture_side, working_side

if TYPE_CHECKING:
    from zoo.media.temporal import RunningStats

CONTEXT = 48  # px of real context around each tile (the network's effective receptive radius)
OVERLAP = 32  # px over which neighbouring tiles are cross-faded
STATS_SIZE = 1024  # long side of the downscaled pass that records the instance-norm statistics
MIN_TILE = 64
MIN_SIDE = 5  # the first layer reflection-pads 4 px (a 9x9 kernel): each side must be longer than that


def check_side(h: int, w: int) -> None:
    """Refuse a photo the network cannot run on (a side under ``MIN_SIDE`` px), in one line."""
    if min(h, w) < MIN_SIDE:
        raise ImageTooSmall(f"image is {w}x{h} px; each side must be at least {MIN_SIDE} px")


def ramp(n: int, lead: int, trail: int) -> torch.Tensor:
    """Weights along one axis of a tile: linear 0->1 over ``lead`` px, 1->0 over ``trail`` px."""
    w = torch.ones(n)
    lead, trail = min(lead, n // 2), min(trail, n // 2)
    if lead:
        w[:lead] = torch.linspace(0, 1, lead + 2)[1:-1]
    if trail:
        w[n - trail :] = torch.linspace(1, 0, trail + 2)[1:-1]
    return w


def spans(total: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) of tiles covering ``total`` px: starts are multiples of 4 (the network's two
    stride-2 stages then see the whole image's sampling grid), neighbours share ``overlap`` px,
    sizes are even-ish and at most ``tile + 4``."""
    if total <= tile:
        return [(0, total)]
    n = math.ceil((total - overlap) / (tile - overlap))
    step = math.ceil((total - overlap) / n / 4) * 4
    out = [(i * step, min(total, i * step + step + overlap)) for i in range(n)]
    out[-1] = (out[-1][0], total)
    return [sp for sp in out if sp[0] < total]


def budget_bytes() -> int:
    """Activation budget: a quarter of the available memory, at most 512 MB."""
    try:
        import psutil

        avail = psutil.virtual_memory().available
    except Exception:
        avail = 4 << 30
    return int(min(avail // 4, 512 << 20))


def bytes_per_px(width: float) -> float:
    # Peak of the strip-wise forward: one full-resolution 32*width-channel map plus the next
    # layer's output, fp32 (~240*width B/px), plus the photo in and out.
    return 240 * max(width, 0.25) + 24


def auto_tile(h: int, w: int, width: float = 1.0, budget: int | None = None) -> int | None:
    """None (untiled) when the photo fits the activation budget, else a tile size in px."""
    budget = budget or budget_bytes()
    per_px = bytes_per_px(width)
    if h * w * per_px <= budget:
        return None
    side = int((budget / per_px) ** 0.5) - 2 * CONTEXT
    return max(128, min(1024, side // 4 * 4))


def auto_stats_size(h: int, w: int, width: float = 1.0, budget: int | None = None) -> int:
    """Long side of the statistics pass: as large as the budget allows (closer to the untiled result)."""
    budget = budget or budget_bytes()
    aspect = min(h, w) / max(h, w)
    side = int((budget / bytes_per_px(width) / aspect) ** 0.5)
    return max(STATS_SIZE, min(side, max(h, w)))


def check_tile(tile: str | int | None) -> str | int | None:
    """``auto``, None (untiled) or a tile size in px >= 64 (an int or its digits)."""
    if tile is None or tile == "auto":
        return tile
    if isinstance(tile, int) or (isinstance(tile, str) and tile.isdigit()):
        if int(tile) >= MIN_TILE:
            return int(tile)
    raise ConfigError(f"--tile must be auto or a tile size in px >= {MIN_TILE}, got {tile!r}")


class Stylizer:
    """``stylizer(photo)``: a PIL image or a (1, 3, H, W) RGB [0, 1] tensor in, the same kind out.

    Options fixed at construction: ``tile`` (auto from available memory, None for untiled, or px),
    ``strength`` (0 = the photo, 1 = fully stylised), ``preserve_color`` (luminance only) and
    ``scale`` (stroke size: 1 = as trained, in pixels; ``auto`` = as in the photo's 512 px
    preview, at any size; ``zoo.inference.scale``).
    """

    def __init__(self, net: TransformerNet, source: Entry | Blend | None = None, dtype: torch.dtype = torch.float32,
                 tile: str | int | None = "auto", strength: float = 1.0, preserve_color: bool = False,
                 scale: str | float = 1.0) -> None:
        if not 0.0 <= strength <= 1.0:
            raise ConfigError(f"strength must be in [0, 1], got {strength}")
        self.net, self.source, self.dtype = net, source, dtype
        self.tile, self.strength, self.preserve_color = check_tile(tile), strength, preserve_color
        self.scale = check_scale(scale)

    @classmethod
    def load(cls, ref: str, zoo: str | None = None, device: str = "cpu", precision: str = "auto", **options) -> "Stylizer":
        """A zoo model (``name[@N]`` or a blend), verified and loaded once."""
        loaded = load(ref, zoo, device, precision)
        return cls(loaded.net, loaded.source, loaded.dtype, **options)

    @classmethod
    def from_bytes(cls, data: bytes, config: dict, **options) -> "Stylizer":
        """Verified safetensors bytes and their config (a version being published), fp32 on the CPU."""
        return cls(network_from_bytes(data, config), **options)

    def with_options(self, **options) -> "Stylizer":
        """The same loaded network with other options (tile, strength, preserve_color, scale)."""
        current = {"tile": self.tile, "strength": self.strength, "preserve_color": self.preserve_color, "scale": self.scale}
        return Stylizer(self.net, self.source, self.dtype, **{**current, **options})

    @property
    def ref(self) -> str:
        return self.source.ref if self.source is not None else "network"

    @property
    def name(self) -> str:
        return self.source.name if self.source is not None else "network"

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def tile_for(self, h: int, w: int, tile: str | int | None = "default") -> int | None:
        """The tile size a (h, w) photo is cut into (``tile``: another setting than the Stylizer's),
        or None to run it whole."""
        tile = self.tile if tile == "default" else check_tile(tile)
        if tile == "auto":
            return auto_tile(h, w, self.net.width)
        return None if tile is None else tile // 4 * 4

    @torch.inference_mode()
    def record_stats(self, x: torch.Tensor, stats_size: int = STATS_SIZE) -> list:
        """Every instance norm's (mean, var) for ``x`` (1, 3, H, W) float, recorded on a pass at
        long side ``stats_size`` (downscaled with area averaging; never upscaled)."""
        H, W = x.shape[-2:]
        scale = min(1.0, stats_size / max(H, W))
        x = x.to(self.device)
        if scale < 1.0:
            x = F.interpolate(x, size=(max(8, round(H * scale)), max(8, round(W * scale))), mode="area")
        norms = self.net.norms()
        for n in norms:
            n.stats, n.record = None, True
        try:
            strip_forward(self.net, x, self.dtype)
            return [n.stats for n in norms]
        finally:
            for n in norms:
                n.stats, n.record = None, False

    @torch.inference_mode()
    def tensor(self, x: torch.Tensor, stats: list | None = None, tile: str | int | None = "default",
               stats_size: int | None = None, running: RunningStats | None = None) -> torch.Tensor:
        """(1, 3, H, W) RGB [0, 1] -> stylised (1, 3, H, W) float32 on the CPU.

        ``x`` may be uint8 (0..255) to save memory on huge photos; tiles are converted one at a time.
        ``stats``: instance-norm statistics to use (``record_stats``; video shares them across
        frames); else the image's own, recorded on a ``stats_size`` pass when tiled (default: as
        large as the memory budget allows). ``tile``: this call's tiling, else the Stylizer's.
        ``running``: a video's running statistics, mixed into this pass's own and updated with them
        (``RunningStats``; a tiled frame records its own on a ``stats_size`` pass first).
        At a stroke scale other than 1, ``stats`` and ``running`` serve the working-size pass (``work_side``).
        """
        _, _, H, W = x.shape
        check_side(H, W)
        if self.work_side(H, W) != max(H, W):
            def run(img: Image.Image, working: bool) -> Image.Image:
                y = self._tensor(pil_to_tensor(img), stats if working else None, tile, stats_size, running if working else None)
                return to_pil_inplace(y)

            return pil_to_tensor(stylize_scaled(run, self._to_pil(x), self.scale))
        return self._tensor(x, stats, tile, stats_size, running)

    def work_side(self, h: int, w: int) -> int:
        """Long side at which the network runs for a (h, w) photo at this Stylizer's stroke scale."""
        return working_side(max(h, w), self.scale)

    @staticmethod
    def _to_pil(x: torch.Tensor) -> Image.Image:
        """(1, 3, H, W) float [0, 1] or uint8 -> RGB PIL."""
        if x.dtype != torch.uint8:
            x = x.float().clamp(0, 1).mul(255).add_(0.5).to(torch.uint8)
        return Image.fromarray(x[0].permute(1, 2, 0).contiguous().cpu().numpy(), "RGB")

    def _tensor(self, x: torch.Tensor, stats: list | None, tile: str | int | None, stats_size: int | None,
                running: RunningStats | None = None) -> torch.Tensor:
        """``tensor`` at stroke scale 1."""
        _, _, H, W = x.shape
        check_side(H, W)
        t = self.tile_for(H, W, tile)
        if t is None or (H <= t + 2 * CONTEXT and W <= t + 2 * CONTEXT):
            c = self._prep(x)
            if running is not None and stats is None:
                return self._shared_pass(c, running)
            self.net.set_norm_stats(stats)  # None: each norm uses this image's own statistics
            try:
                return self._post(strip_forward(self.net, c, self.dtype), c)
            finally:
                self.net.set_norm_stats(None)
        if stats is None:
            stats = self.record_stats(self._prep(x), stats_size or auto_stats_size(H, W, self.net.width))
            if running is not None:
                stats = running.update(stats)
        return self._tiled(x, t, stats)

    def _shared_pass(self, c: torch.Tensor, running: RunningStats) -> torch.Tensor:
        """One untiled pass whose norms mix ``running``'s statistics with their own, then update it."""
        norms, priors = self.net.norms(), running.priors()
        for i, n in enumerate(norms):
            n.stats, n.record, n.prior = None, True, None if priors is None else priors[i]
        try:
            y = self._post(strip_forward(self.net, c, self.dtype), c)
            running.update([n.stats for n in norms])
            return y
        finally:
            for n in norms:
                n.stats, n.record, n.prior = None, False, None

    def _prep(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device)
        return t.float().div_(255) if t.dtype == torch.uint8 else t.float()

    def _post(self, y: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.preserve_color:
            y = _keep_color(y, c)
        if self.strength < 1.0:
            y = torch.lerp(c, y, self.strength)
        return y.float().cpu()

    def _tiled(self, x: torch.Tensor, tile: int, stats: list) -> torch.Tensor:
        _, _, H, W = x.shape
        out = torch.zeros(1, 3, H, W)
        wsum = torch.zeros(1, 1, H, W)
        self.net.set_norm_stats(stats)
        try:
            for y0, y1 in spans(H, tile, OVERLAP):
                for x0, x1 in spans(W, tile, OVERLAP):
                    cy0, cx0 = max(0, y0 - CONTEXT), max(0, x0 - CONTEXT)
                    cy1, cx1 = min(H, y1 + CONTEXT), min(W, x1 + CONTEXT)
                    c = self._prep(x[:, :, cy0:cy1, cx0:cx1])
                    y = self._post(strip_forward(self.net, c, self.dtype), c)[:, :, y0 - cy0 : y1 - cy0, x0 - cx0 : x1 - cx0]
                    wy = ramp(y1 - y0, OVERLAP if y0 > 0 else 0, OVERLAP if y1 < H else 0)
                    wx = ramp(x1 - x0, OVERLAP if x0 > 0 else 0, OVERLAP if x1 < W else 0)
                    wgt = (wy[:, None] * wx[None, :])[None, None]
                    out[:, :, y0:y1, x0:x1].addcmul_(y, wgt)
                    wsum[:, :, y0:y1, x0:x1].add_(wgt)
        finally:
            self.net.set_norm_stats(None)
        return out.div_(wsum.clamp_min_(1e-8))

    def image(self, img: Image.Image) -> Image.Image:
        """An RGB PIL image in, its stylised image out; a tiled photo stays uint8 until each tile
        (a 27 MP photo never exists as a float tensor)."""
        W, H = img.size
        check_side(H, W)
        if self.work_side(H, W) != max(H, W):
            return stylize_scaled(lambda im, working: self._image(im), img, self.scale)
        return self._image(img)

    def _image(self, img: Image.Image) -> Image.Image:
        """``image`` at stroke scale 1."""
        W, H = img.size
        if self._runs_tiled(H, W):
            with warnings.catch_warnings():  # read-only view of Pillow's buffer: never written to
                warnings.simplefilter("ignore", UserWarning)
                x = torch.from_numpy(np.asarray(img)).permute(2, 0, 1).unsqueeze(0)  # uint8, no copy
        else:
            x = pil_to_tensor(img)
        return to_pil_inplace(self._tensor(x, None, "default", None))

    def tiled(self, h: int, w: int) -> bool:
        """Whether a (h, w) photo is cut into tiles (at the largest size the network runs at for it)."""
        side = self.work_side(h, w)
        if side != max(h, w):
            side = max(side, texture_side(max(h, w), side) or 0)
            h, w = round(h * side / max(h, w)), round(w * side / max(h, w))
        return self._runs_tiled(h, w)

    def _runs_tiled(self, h: int, w: int) -> bool:
        """Whether the network runs on a (h, w) image in tiles."""
        t = self.tile_for(h, w)
        return t is not None and max(h, w) > t + 2 * CONTEXT

    def __call__(self, x: Image.Image | torch.Tensor) -> Image.Image | torch.Tensor:
        if isinstance(x, Image.Image):
            return self.image(x.convert("RGB"))
        return self.tensor(x)
