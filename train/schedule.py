"""A run's schedule: its stages (crop, painting size, batch, learning rate) over its steps, or over
a time budget (``zoo train --minutes``).

A run has one stage (the preset's crop and lr) or two: ``last_stage`` in the config switches to a
larger crop and painting partway through. Each stage decays its own lr with a cosine to 1 %. With a
time budget the run's progress is its wall time over the budget (earlier legs of a resumed run
included), so the same schedule fits whatever this machine manages in that time, and the run stops
with a checkpoint before the budget is spent. Where its steps over ``max_steps`` are further on, they
lead instead: a budget in photos with a time limit (``train.trainer.Schedule``, the callback that
applies this plan; this module imports no Lightning, so the CLI's checks stay fast).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .config import significant


@dataclass(frozen=True)
class Stage:
    start: float  # fraction of the run where it begins
    image_size: int  # crop the network trains on, px
    style_size: int  # the painting's long side for its Gram targets, px
    batch_size: int
    lr: float  # at the stage's start; cosine to 1 % by its end


def stages(cfg) -> list[Stage]:
    """The config's stages, in order (one, or two with ``last_stage``)."""
    first = Stage(0.0, cfg.image_size, cfg.style_size, cfg.batch_size, cfg.lr)
    s = cfg.last_stage
    if not s:
        return [first]
    return [first, Stage(float(s["at"]), int(s.get("image_size", cfg.image_size)), int(s.get("style_size", cfg.style_size)),
                         int(s.get("batch_size", cfg.batch_size)), float(s.get("lr", cfg.lr)))]


def describe(plan: list[Stage], minutes: float | None, steps: int | None = None) -> str:
    """The stages in one line, for the run's card."""
    if not minutes:
        budget = "the steps"
    elif not steps:
        budget = f"{minutes:g} min"
    else:  # a time budget with a step budget too: the one that runs out first ends the run
        budget = f"{steps:,} steps or {minutes:g} min, whichever ends first"
    parts = [f"{s.image_size} px crops, painting {s.style_size} px, batch {s.batch_size}, lr {s.lr:g}"
             + (f" from {s.start:.0%}" if s.start else "") for s in plan]
    return f"{'; then '.join(parts)} of {budget} (cosine lr decay in each stage)"


# A painting smaller than the run's painting size is read at its own size, every stage's painting
# scaled with it, not enlarged: 13-minute `own` models of cafe_terrace from a 384 px copy land 0.126 from
# the painting (style d; its 800 px file: 0.125) read at 288/384 px, 0.185 enlarged to 384/512 (docs/models.md).
# Not below half that size: a thumbnail at its own size paints strokes a third of the painting's or less,
# and whether that beats its soft enlargement depends on the painting. cafe_terrace's 160 and 96 px copies
# landed 0.176 and 0.206 at their own size against 0.215 and 0.364 enlarged to 256 px; woman_with_hat's
# 0.497 and 0.688 against 0.224 and 0.281 (its flat patches painted as a fine mesh). Enlarged is the
# smaller worst case (docs/models.md, "Thumbnails").
SMALLEST_READ = 0.5


def painting_read_size(long_side: int, wanted: int) -> int:
    """The long side a painting of ``long_side`` px is read at by a run that reads paintings at
    ``wanted`` px: its own size when smaller (never enlarged), but at least ``SMALLEST_READ`` of ``wanted``."""
    return max(min(long_side, wanted), math.ceil(wanted * SMALLEST_READ))


def scaled_to_painting(cfg, read: int):
    """``cfg`` with every stage's painting size scaled by ``read / cfg.painting_size()`` (the stages'
    ratio kept: 384 and 512 px become 288 and 384 for a painting read at 384 px); ``cfg`` if none."""
    wanted = cfg.painting_size()
    if read >= wanted:
        return cfg
    k = read / wanted
    last = dict(cfg.last_stage or {})
    if "style_size" in last:
        last["style_size"] = round(last["style_size"] * k)
    return cfg.update(style_size=round(cfg.style_size * k), **({"last_stage": last} if cfg.last_stage else {}))


# The content limit's rate (FastStyle.CONTROL_RATE a step) was set on the own preset's 13-minute runs.
CONTROL_MINUTES = 13.0


def control_rate(base: float, minutes: float | None) -> float:
    """The content limit's rate a step for a run of ``minutes``: a shorter budget moves the weight
    faster a step, so that its fewer steps reach as far as 13 minutes' do. At the 13-minute rate a
    5-minute run on a painting of flat planes cut the weight 4x where it needed 5x and ran out of
    steps with the photo going (layout 0.53; 0.64 at the scaled rate). A longer budget keeps the
    13-minute rate, as measured (its extra reach settles the weight, never raises it past 1)."""
    return significant(base * max(1.0, CONTROL_MINUTES / minutes)) if minutes else base


def stage_at(plan: list[Stage], frac: float) -> int:
    return max(i for i, s in enumerate(plan) if s.start <= frac)


def lr_at(plan: list[Stage], frac: float) -> float:
    """The learning rate at ``frac`` of the run: the stage's own cosine from its lr down to 1 %."""
    i = stage_at(plan, frac)
    end = plan[i + 1].start if i + 1 < len(plan) else 1.0
    t = min(1.0, max(0.0, (frac - plan[i].start) / max(end - plan[i].start, 1e-9)))
    return plan[i].lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def resize_painting(painting, long_side: int):
    """(1, 3, H, W) in [0, 1] -> the same painting with its long side ``long_side`` (never enlarged);
    a list of paintings (a run of several styles) -> a list.

    Lanczos, as ``zoo.media.images`` resizes a painting read from its file: the first stage's Gram
    targets and the calibration's S0 then match the painting loaded at that size. A bilinear shrink
    (even antialiased) blurs the strokes: S0 18-45 % higher for the same painting, the most for the
    finest texture (wheat_field), and a style weight that much lower. (``train`` does not import ``zoo``,
    so the uint8 round trip is written here.)"""
    if isinstance(painting, (list, tuple)):
        return [resize_painting(p, long_side) for p in painting]
    h, w = painting.shape[-2:]
    k = min(1.0, long_side / max(h, w))
    if k == 1.0:
        return painting
    hwc = painting[0].detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()  # (H, W, 3)
    small = Image.fromarray(hwc).resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.LANCZOS)
    out = torch.from_numpy(np.asarray(small, dtype=np.uint8).copy()).permute(2, 0, 1).unsqueeze(0)  # (1, 3, h, w)
    return out.to(painting.device, painting.dtype if painting.is_floating_point() else torch.float32).div(255)
