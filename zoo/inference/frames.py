"""Video frames through a Stylizer, with the two flicker levers of ``zoo.media.temporal``."""
from __future__ import annotations

import numpy as np
import torch

from zoo.media.temporal import FlowBlender, RunningStats, Temporal, to_uint8

from .stylizer import Stylizer


class FrameStylizer:
    """Stylises a stream of frames: ``stylizer(frame)`` (H, W, 3) uint8 -> (H, W, 3) uint8."""

    def __init__(self, stylizer: Stylizer, temporal: Temporal = Temporal()) -> None:
        self.stylizer, self.temporal = stylizer, temporal
        self.stats = RunningStats(temporal.momentum) if temporal.shared_stats else None
        self.blender = FlowBlender(temporal.blend, keep_detail=temporal.keep_detail) if temporal.blend > 0 else None

    def stylize(self, frame: np.ndarray) -> np.ndarray:
        """One frame, lever 1 only: (H, W, 3) uint8 -> (H, W, 3) float32 in [0, 1]."""
        x = torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float().div_(255)  # (1, 3, H, W)
        t = self.temporal
        if self.stats is None:
            y = self.stylizer.tensor(x)
        elif t.stats_size is None:  # the running average mixed into the frame's own pass
            y = self.stylizer.tensor(x, running=self.stats)
        else:  # statistics from a separate pass at stats_size (at most the working size of the stroke scale)
            side = min(t.stats_size, self.stylizer.work_side(*x.shape[-2:]))
            y = self.stylizer.tensor(x, stats=self.stats.update(self.stylizer.record_stats(x, side)))
        return y[0].permute(1, 2, 0).numpy()  # (H, W, 3) float32

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        y = self.stylize(frame)
        if self.blender is not None:
            y = self.blender(frame, y)
        return to_uint8(y)
