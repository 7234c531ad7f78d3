"""How consistent and how stylised a model's video is: warping error and style distance.

``measure_clip`` runs one clip through a model under several ``Temporal`` settings at once
(frames that share their instance-norm settings are stylised once, each setting then blends
them its own way) and returns, per setting:

- **warping_error**: ``zoo.media.flow.WarpingError`` (Lai et al. 2018) with the finer DIS setting on
  the input frames, not the one that guides the blending; lower = less
  flicker. The input clip's own figure is returned as ``"input"`` (what perfect consistency
  with the footage would look like).
- **style_distance**: ``zoo.evaluation.metrics``' yardstick (caffe VGG-19 Gram matrices against the
  painting at the same size) on every ``every``-th output frame shrunk to ``style_side`` px (512: the
  size a frame is seen at, as photos are judged), mean over those frames.

Memory is bounded: one decoded frame and one previous output per setting.
"""
from __future__ import annotations

import os
import statistics
from dataclasses import replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from zoo.inference.frames import FrameStylizer
from zoo.inference.stylizer import Stylizer
from zoo.media.flow import WarpingError
from zoo.media.temporal import FlowBlender, Temporal
from zoo.media.video import read_frames

from zoo import EVAL_SIZE

from .metrics import STYLE_LAYERS, style_distance, style_image_of, style_targets

SETTINGS = {
    "per-frame": Temporal(shared_stats=False, blend=0.0),
    "shared stats": Temporal(shared_stats=True, blend=0.0),
    "flow blend": Temporal(shared_stats=False),
    "both": Temporal(),
}


@torch.inference_mode()
def measure_clip(
    ref: str,
    clip: str | os.PathLike,
    settings: dict[str, Temporal] | None = None,
    size: int | None = 320,
    max_frames: int | None = None,
    every: int = 10,
    style_image: str | os.PathLike | None = None,
    zoo: str | None = None,
    device: str = "cpu",
    precision: str = "auto",
    on_frame: Callable[[int], None] | None = None,
    style_side: int = EVAL_SIZE,
    scale: str | float = 1.0,
) -> dict:
    """{"input": {...}, name: {"warping_error", "style_distance"}, ..., "frames", "size"} for ``ref`` on ``clip``."""
    from lit_modules.vgg import VGG19Features

    settings = settings or SETTINGS
    stylizer = Stylizer.load(ref, zoo, device, precision, scale=scale)
    entry = stylizer.source
    vgg = VGG19Features(layers=STYLE_LAYERS, backbone="caffe").to(device)
    target = style_targets(vgg, style_image or style_image_of(entry), style_side, device)

    # One stylizer per distinct instance-norm setting; one blender per setting that blends.
    def key(t: Temporal):
        return (t.momentum, t.stats_size) if t.shared_stats else None

    stylizers = {key(t): FrameStylizer(stylizer, replace(t, blend=0.0)) for t in settings.values()}
    blenders = {name: FlowBlender(t.blend, keep_detail=t.keep_detail) for name, t in settings.items() if t.blend > 0}
    werr = WarpingError("dis-fine")
    dists: dict[str, list[float]] = {name: [] for name in settings}
    n = 0
    for n, frame in enumerate(read_frames(clip, size, max_frames), 1):
        styled = {k: s.stylize(frame) for k, s in stylizers.items()}  # (H, W, 3) float32
        outs = {"input": frame.astype(np.float32) / 255}
        for name, t in settings.items():
            y = styled[key(t)]
            outs[name] = blenders[name](frame, y) if name in blenders else y
        werr.add(frame, outs)
        if (n - 1) % every == 0:
            for name in settings:
                y = torch.from_numpy(np.clip(outs[name], 0, 1)).permute(2, 0, 1).unsqueeze(0).to(device)  # (1, 3, H, W)
                s = style_side / max(y.shape[-2:])
                y = F.interpolate(y, scale_factor=s, mode="area") if s < 1 else y
                dists[name].append(style_distance(vgg(y, STYLE_LAYERS), target))
        if on_frame:
            on_frame(n)
    w = werr.values
    result = {"ref": entry.ref, "frames": n, "size": list(frame.shape[1::-1]) if n else None, "input": {"warping_error": w.get("input", 0.0)}}
    for name in settings:
        result[name] = {"warping_error": w.get(name, 0.0), "style_distance": statistics.fmean(dists[name]) if dists[name] else None}
    return result
