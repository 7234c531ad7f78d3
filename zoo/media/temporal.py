"""Temporal consistency for stylised video: two cheap levers on top of a per-frame network.

Per-frame feed-forward stylisation flickers: each frame's instance norms see slightly different
statistics, and the network's textures react to small changes of its input. Two levers, each
measured by the warping error (``zoo.media.flow.WarpingError``; numbers in bench/video.py):

1. **Shared instance-norm statistics** (``RunningStats``): every frame is normalised with a
   running average of the frames' statistics instead of its own, mixed inside the frame's own
   pass (each norm: the average so far and this frame's own statistics at the size the network
   runs at). ``stats_size`` selects the older way, statistics recorded on a separate downscaled
   pass: at 640 px the 256 px pass's statistics moved starry's style 19 % from per-frame's (an
   instance norm's statistics depend on the size it sees), and the pass costs a forward of its own.
2. **Flow-guided blending** (``FlowBlender``): each output is blended with the previous output
   warped onto it by the input's optical flow (OpenCV DIS), where a forward-backward check says
   the flow holds; elsewhere (occlusions, frame edges, cuts) the frame's own output is kept.

``zoo.inference.frames.FrameStylizer`` puts them together around the Stylizer (no network code
here). ``Temporal`` holds the settings; torch-free, so the CLI reads its defaults fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .flow import FlowEstimator, consistent, cv2, gray, warp

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Temporal:
    """The two flicker levers; defaults are the measured best (bench/video.py)."""

    shared_stats: bool = True  # lever 1: instance norms use a running average over the frames
    momentum: float = 0.9  # weight of the past in that running average (0 = per frame)
    stats_size: int | None = None  # None: each frame's own pass; N: a separate pass at long side N px
    blend: float = 0.5  # lever 2: weight of the warped previous output where the flow holds (0 = off)
    keep_detail: bool = True  # lever 2: give blended pixels back the fine-detail energy averaging took away


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

    def priors(self) -> list[tuple[torch.Tensor, torch.Tensor, float]] | None:
        """[(mean, E[x^2], momentum)] per norm, for ``InstanceNorm.prior``; None before the first frame."""
        return None if self._moments is None else [(a, b, self.momentum) for a, b in self._moments]


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
    c = cv2()
    if ok.sum() < 16:
        return b
    hb = b - c.GaussianBlur(b, (0, 0), sigma)  # (H, W, 3)
    hy = y - c.GaussianBlur(y, (0, 0), sigma)
    okf = ok.reshape(-1).astype(np.float32)  # (H*W,)
    # energies over the blended pixels as (3, H*W) @ (H*W,): no gathered copies (a third of the cost at 720p)
    ey, eb = ((h * h).reshape(-1, 3).T @ okf for h in (hy, hb))  # (3,) each
    k = np.sqrt(ey / np.maximum(eb, 1e-12))
    k = np.clip(k, 1.0, 1.0 / np.sqrt((1 - blend) ** 2 + blend**2)).astype(np.float32)
    hb *= k - 1
    hb *= ok[..., None]
    return np.add(b, hb, out=hb)


def to_uint8(y: np.ndarray) -> np.ndarray:
    """(H, W, 3) float [0, 1] -> contiguous uint8, rounded."""
    return np.ascontiguousarray((np.clip(y, 0, 1) * 255 + 0.5).astype(np.uint8))
