"""Temporal: how video frames are kept consistent. Torch-free so the CLI reads its defaults fast."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Temporal:
    """The two flicker levers of ``zoo.temporal``; defaults are the measured best (bench/video.py)."""

    shared_stats: bool = True  # lever 1: instance norms use a running average over the frames
    momentum: float = 0.9  # weight of the past in that running average (0 = per frame)
    stats_size: int = 256  # long side of the pass that records each frame's statistics
    blend: float = 0.5  # lever 2: weight of the warped previous output where the flow holds (0 = off)
    keep_detail: bool = True  # lever 2: give blended pixels back the fine-detail energy averaging took away
