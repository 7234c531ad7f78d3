"""A run's schedule: its stages (crop, painting size, batch, learning rate) over its steps, or over
a time budget (``zoo train --minutes``).

A run has one stage (the preset's crop and lr) or two: ``last_stage`` in the config switches to a
larger crop and painting partway through. Each stage decays its own lr with a cosine to 1 %. With a
time budget the run's progress is its wall time over the budget (earlier legs of a resumed run
included), so the same schedule fits whatever this machine manages in that time, and the run stops
with a checkpoint before the budget is spent.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback


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


def describe(plan: list[Stage], minutes: float | None) -> str:
    """The stages in one line, for the run's card."""
    budget = f"{minutes:g} min" if minutes else "the steps"
    parts = [f"{s.image_size} px crops, painting {s.style_size} px, batch {s.batch_size}, lr {s.lr:g}"
             + (f" from {s.start:.0%}" if s.start else "") for s in plan]
    return f"{'; then '.join(parts)} of {budget} (cosine lr decay in each stage)"


def stage_at(plan: list[Stage], frac: float) -> int:
    return max(i for i, s in enumerate(plan) if s.start <= frac)


def lr_at(plan: list[Stage], frac: float) -> float:
    """The learning rate at ``frac`` of the run: the stage's own cosine from its lr down to 1 %."""
    i = stage_at(plan, frac)
    end = plan[i + 1].start if i + 1 < len(plan) else 1.0
    t = min(1.0, max(0.0, (frac - plan[i].start) / max(end - plan[i].start, 1e-9)))
    return plan[i].lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


def resize_painting(painting, long_side: int):
    """(1, 3, H, W) -> the same painting with its long side ``long_side`` (never enlarged); a list
    of paintings (a run of several styles) -> a list."""
    if isinstance(painting, (list, tuple)):
        return [resize_painting(p, long_side) for p in painting]
    h, w = painting.shape[-2:]
    k = min(1.0, long_side / max(h, w))
    if k == 1.0:
        return painting
    return F.interpolate(painting, size=(max(1, round(h * k)), max(1, round(w * k))), mode="bilinear",
                         antialias=True, align_corners=False).clamp(0, 1)


class Schedule(Callback):
    """Sets each step's stage (the module's crop, batch and Gram targets) and learning rate, and
    with a time budget stops the run before the budget is spent (the time left is in the bar)."""

    def __init__(self, plan: list[Stage], painting, max_steps: int, seconds: float | None = None,
                 wall: Callable[[], float] | None = None) -> None:
        self.plan, self.painting, self.max_steps, self.seconds = plan, painting, max_steps, seconds
        self.wall = wall or time.perf_counter
        self.current: int | None = None
        self.step_s: float | None = None  # recent seconds per step (the stop decision looks one step ahead)
        self._t: float | None = None
        self._timed: int | None = None  # the stage of the steps step_s averages

    def progress(self, trainer) -> float:
        if self.seconds:
            return min(1.0, self.wall() / self.seconds)
        return min(1.0, trainer.global_step / max(1, self.max_steps))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        frac = self.progress(trainer)
        i = stage_at(self.plan, frac)
        if i != self.current:
            self.enter(pl_module, i)
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = lr_at(self.plan, frac)
        if self.seconds:
            pl_module.log("min left", max(0.0, self.seconds - self.wall()) / 60, prog_bar=True, logger=False, batch_size=1)
        self._t = time.perf_counter()

    def enter(self, pl_module, i: int) -> None:
        s, first = self.plan[i], self.current is None
        self.current = i
        pl_module.train_size, pl_module.train_batch = s.image_size, s.batch_size
        if self.painting is not None and (not first or len(self.plan) > 1):
            image = resize_painting(self.painting, s.style_size)
            pl_module.set_style_image([i.to(pl_module.device) for i in image] if isinstance(image, list) else image.to(pl_module.device))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._t is None:
            return
        dt = time.perf_counter() - self._t
        fresh = self.step_s is None or self._timed != self.current  # a larger crop: the old average is stale
        self.step_s, self._timed = (dt if fresh else 0.8 * self.step_s + 0.2 * dt), self.current
        if self.seconds and self.wall() + self.step_s > self.seconds:
            trainer.should_stop = True  # the next step would overrun: stop now, checkpoint kept
