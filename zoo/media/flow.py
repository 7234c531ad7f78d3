"""Optical flow between video frames, warping, occlusion masks and the warping error.

Frames here are numpy arrays as decoded: (H, W, 3) uint8 RGB, or (H, W, 3) float32 in [0, 1]
for outputs. A flow field is (H, W, 2) float32 in px: ``flow[y, x] = (dx, dy)`` maps pixel
(x, y) of the *current* frame to (x + dx, y + dy) in the *other* frame, so ``warp(other, flow)``
brings the other frame onto the current one.

Two settings of OpenCV's DIS: "dis" (preset medium; guides the blending) and "dis-fine" (finest
pyramid level at full resolution, more refinement; used to *measure*, so the blending is not
graded with exactly the flow it was built on). Farneback was tried for measuring and dropped: on a
photo panned by a known 2 px it reported 0.7 to 1.7 px.

Warping error (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018): for each
pair of consecutive frames, the mean over non-occluded pixels of the squared RGB distance
(summed over the 3 channels, values in [0, 1]) between output frame t and output frame t-1
warped onto it by the *input's* flow; averaged over the pairs. Occlusions come from a
forward-backward check (Sundaram et al. 2010, as in Ruder et al. 2016 and Lai et al.).
"""
from __future__ import annotations

import functools

import numpy as np

from lit_modules.errors import StyleZooError


class VideoDependencyError(StyleZooError):
    """PyAV or OpenCV is missing (video support is the ``video`` extra)."""


def cv2():
    """OpenCV, or a one-line error naming the extra that installs it."""
    try:
        import cv2 as _cv2
    except ImportError:
        raise VideoDependencyError("video support needs OpenCV and PyAV: pip install 'style-zoo[video]'") from None
    return _cv2


def gray(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB uint8 -> (H, W) uint8 luma."""
    return cv2().cvtColor(frame, cv2().COLOR_RGB2GRAY)


class FlowEstimator:
    """``estimator(cur, other)`` -> (H, W, 2) flow from grayscale frame ``cur`` to ``other``.

    ``method``: "dis" (OpenCV DIS, preset medium) or "dis-fine". Frames with a long side above
    ``max_side`` are downscaled for the estimate and the flow scaled back up (flow is smooth;
    DIS on 1080p costs more than the blend it guides).
    """

    def __init__(self, method: str = "dis", max_side: int = 720) -> None:
        c = cv2()
        if method not in ("dis", "dis-fine"):
            raise ValueError(f"unknown flow method {method!r}")
        self.method, self.max_side = method, max_side
        self._dis = c.DISOpticalFlow_create(c.DISOPTICAL_FLOW_PRESET_MEDIUM)
        if method == "dis-fine":
            self._dis.setFinestScale(0)
            self._dis.setVariationalRefinementIterations(10)

    def __call__(self, cur: np.ndarray, other: np.ndarray) -> np.ndarray:
        c = cv2()
        h, w = cur.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        if s < 1.0:
            size = (max(8, round(w * s)), max(8, round(h * s)))
            cur, other = (c.resize(f, size, interpolation=c.INTER_AREA) for f in (cur, other))
        flow = self._dis.calc(np.ascontiguousarray(cur), np.ascontiguousarray(other), None)
        if s < 1.0:
            flow = c.resize(flow, (w, h), interpolation=c.INTER_LINEAR) * np.array([w / flow.shape[1], h / flow.shape[0]], np.float32)
        return flow.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (xs, ys), each (H, W) float32; cached (every frame of a clip has one size). Read-only."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs.flags.writeable = ys.flags.writeable = False
    return xs, ys


def warp(img: np.ndarray, flow: np.ndarray, cubic: bool = False) -> np.ndarray:
    """Sample ``img`` (H, W, C) at (x, y) + flow[y, x], bilinear (or bicubic: less blur when
    warped again and again); border pixels replicated."""
    c = cv2()
    xs, ys = _grid(*flow.shape[:2])
    return c.remap(img, xs + flow[..., 0], ys + flow[..., 1], c.INTER_CUBIC if cubic else c.INTER_LINEAR, borderMode=c.BORDER_REPLICATE)


def consistent(flow: np.ndarray, back: np.ndarray) -> np.ndarray:
    """(H, W) bool: where ``flow`` (cur -> other) holds, by the forward-backward check.

    ``back`` is the other direction (other -> cur). A pixel passes when following ``flow`` then
    ``back`` returns within 0.01 * (|f|^2 + |b|^2) + 0.5 px^2 of where it started, and ``flow``
    stays inside the frame.
    """
    h, w = flow.shape[:2]
    b = warp(back, flow)  # (H, W, 2): the backward flow where each pixel lands
    sq = lambda v: np.einsum("hwc,hwc->hw", v, v)  # |v|^2 per pixel; 3x faster than (v**2).sum(-1) over 2 channels
    err = sq(flow + b)
    ok = err <= 0.01 * (sq(flow) + sq(b)) + 0.5
    xs, ys = _grid(h, w)
    x2, y2 = xs + flow[..., 0], ys + flow[..., 1]
    return ok & (x2 >= 0) & (x2 <= w - 1) & (y2 >= 0) & (y2 <= h - 1)


class WarpingError:
    """Streaming warping error: ``add(input_frame, output_frame)`` per frame, then ``value``.

    The flow and its occlusion mask are computed on the *input* frames (uint8 RGB); output
    frames are float32 (H, W, 3) in [0, 1] or uint8. Several outputs of the same input can be
    scored at once with ``add(input, {name: output})``; ``values`` then has one figure per name.
    """

    def __init__(self, method: str = "dis-fine", max_side: int = 720) -> None:
        self.flow = FlowEstimator(method, max_side)
        self._prev_in: np.ndarray | None = None
        self._prev_out: dict[str, np.ndarray] = {}
        self._sum: dict[str, float] = {}
        self.pairs = 0

    def add(self, frame_in: np.ndarray, out) -> None:
        outs = out if isinstance(out, dict) else {"": out}
        outs = {k: (v.astype(np.float32) / 255 if v.dtype == np.uint8 else v.astype(np.float32, copy=False)) for k, v in outs.items()}
        g = gray(frame_in)
        if self._prev_in is not None:
            f = self.flow(g, self._prev_in)  # cur -> prev
            mask = consistent(f, self.flow(self._prev_in, g))
            n = max(1, int(mask.sum()))
            for k, y in outs.items():
                d = ((y - warp(self._prev_out[k], f)) ** 2).sum(-1)  # (H, W)
                self._sum[k] = self._sum.get(k, 0.0) + float(d[mask].sum()) / n
            self.pairs += 1
        self._prev_in, self._prev_out = g, outs

    @property
    def values(self) -> dict[str, float]:
        return {k: s / max(1, self.pairs) for k, s in self._sum.items()}

    @property
    def value(self) -> float:
        return next(iter(self.values.values()), 0.0)
