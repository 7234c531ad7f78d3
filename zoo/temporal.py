"""Temporal consistency for stylised video: two cheap levers on top of a per-frame network.

Per-frame feed-forward stylisation flickers: each frame's instance norms see slightly different
statistics, and the network's textures react to small changes of its input. Two levers, each
measured by the warping error (``zoo.flow.WarpingError``; numbers in bench/video.py):

1. **Shared instance-norm statistics** (``RunningStats``): every frame is normalised with a
   running average of the frames' statistics (recorded on a small downscaled pass, as the tiled
   path of ``zoo.apply`` does for one big photo) instead of its own.
2. **Flow-guided blending** (``FlowBlender``): each output is blended with the previous output
   warped onto it by the input's optical flow (OpenCV DIS), where a forward-backward check says
   the flow holds; elsewhere (occlusions, frame edges, cuts) the frame's own output is kept.

``FrameStylizer`` puts them together around ``zoo.apply``'s forward (no network code here, so a
change of the network flows through).
"""
from __future__ import annotations

import numpy as np
import torch

from zoo.apply import auto_stats_size, auto_tile, record_stats, stylize_tensor
from zoo.flow import FlowEstimator, consistent, gray, warp
from zoo.video_config import Temporal


class RunningStats:
    """Exponential moving average of instance-norm statistics over frames.

    Means and second moments are averaged (so the variance is that of the pooled frames, not
    the mean of per-frame variances); ``update`` returns [(mean, var)] in ``record_stats`` order.
    """

    def __init__(self, momentum: float = 0.9) -> None:
        self.momentum = momentum
        self._moments: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def update(self, stats: list[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        m = self.momentum
        new = [(mu, var + mu * mu) for mu, var in stats]  # (1, C, 1, 1) each
        if self._moments is None:
            self._moments = new
        else:
            self._moments = [(m * a + (1 - m) * mu, m * b + (1 - m) * sq) for (a, b), (mu, sq) in zip(self._moments, new)]
        return [(a, (b - a * a).clamp_min(0)) for a, b in self._moments]


class FlowBlender:
    """``blender(frame, out)`` -> ``out`` blended with the previous output along the input's flow.

    ``frame``: the input frame (H, W, 3) uint8; ``out``: its stylised frame (H, W, 3) float32 in
    [0, 1]. Keeps only the previous input (grey) and output: memory does not grow with the clip.
    """

    def __init__(self, blend: float = 0.5, max_side: int = 720, cubic: bool = True, keep_detail: bool = True) -> None:
        if not 0.0 <= blend < 1.0:
            raise ValueError(f"blend must be in [0, 1), got {blend}")
        self.blend, self.cubic, self.keep_detail = blend, cubic, keep_detail
        self.flow = FlowEstimator("dis", max_side)
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, frame: np.ndarray, out: np.ndarray) -> np.ndarray:
        g = gray(frame)
        if self._prev is not None and self._prev[1].shape == out.shape:
            pg, pout = self._prev
            f = self.flow(g, pg)  # (H, W, 2): this frame -> previous frame
            ok = consistent(f, self.flow(pg, g))[..., None]  # (H, W, 1)
            b = np.where(ok, out + self.blend * (warp(pout, f, self.cubic) - out), out)
            out = restore_detail(b, out, ok[..., 0], self.blend) if self.keep_detail else b
        self._prev = (g, out)
        return out


def restore_detail(b: np.ndarray, y: np.ndarray, ok: np.ndarray, blend: float, sigma: float = 2.0) -> np.ndarray:
    """Give the blended frame ``b`` back the fine-detail energy of the frame's own output ``y``.

    Averaging two textures that do not line up (the flicker) lowers their contrast: the frames
    look softer and move away from the painting. Per channel, the high-pass (``x - blur(x)``) of
    ``b`` is scaled up so its energy over the blended pixels ``ok`` matches ``y``'s, by at most
    what averaging two independent textures loses (1 / sqrt((1 - blend)^2 + blend^2)). In the
    model "stable picture + independent texture noise per frame" this keeps the texture's
    variance and leaves a warping error of (1 - blend) x per-frame's.
    """
    from zoo.flow import cv2

    c = cv2()
    if ok.sum() < 16:
        return b
    hb = b - c.GaussianBlur(b, (0, 0), sigma)  # (H, W, 3)
    hy = y - c.GaussianBlur(y, (0, 0), sigma)
    k = np.sqrt((hy[ok] ** 2).sum(0) / np.maximum((hb[ok] ** 2).sum(0), 1e-12))  # (3,)
    k = np.clip(k, 1.0, 1.0 / np.sqrt((1 - blend) ** 2 + blend**2)).astype(np.float32)
    return np.where(ok[..., None], b + (k - 1) * hb, b)


class FrameStylizer:
    """Stylises a stream of frames: ``stylizer(frame)`` (H, W, 3) uint8 -> (H, W, 3) uint8."""

    def __init__(self, net, dtype: torch.dtype, temporal: Temporal = Temporal(), tile: str = "auto",
                 strength: float = 1.0, preserve_color: bool = False) -> None:
        self.net, self.dtype, self.temporal = net, dtype, temporal
        self.tile, self.strength, self.preserve_color = tile, strength, preserve_color
        self.stats = RunningStats(temporal.momentum) if temporal.shared_stats else None
        self.blender = FlowBlender(temporal.blend, keep_detail=temporal.keep_detail) if temporal.blend > 0 else None

    def stylize(self, frame: np.ndarray) -> np.ndarray:
        """One frame, lever 1 only: (H, W, 3) uint8 -> (H, W, 3) float32 in [0, 1]."""
        H, W = frame.shape[:2]
        x = torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float().div_(255)  # (1, 3, H, W)
        t = auto_tile(H, W, self.net.width) if self.tile == "auto" else int(self.tile) // 4 * 4
        stats = None
        if self.stats is not None:
            with torch.inference_mode():
                dev = next(self.net.parameters()).device
                stats = self.stats.update(record_stats(self.net, x.to(dev), self.dtype, self.temporal.stats_size))
        y = stylize_tensor(self.net, x, tile=t, strength=self.strength, preserve_color=self.preserve_color,
                           dtype=self.dtype, stats_size=auto_stats_size(H, W, self.net.width), stats=stats)
        return y[0].permute(1, 2, 0).numpy()  # (H, W, 3) float32

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        y = self.stylize(frame)
        if self.blender is not None:
            y = self.blender(frame, y)
        return to_uint8(y)


def to_uint8(y: np.ndarray) -> np.ndarray:
    """(H, W, 3) float [0, 1] -> contiguous uint8, rounded."""
    return np.ascontiguousarray((np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8))
