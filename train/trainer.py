"""Trainer assembly and the training run: config -> run directory -> fitted FastStyle.

Run directory contract (``zoo publish`` reads it)::

    <out>/<run_id>/config.yaml            resolved TrainConfig (+ style and hardware facts)
    <out>/<run_id>/checkpoints/last.ckpt  always the latest state (plus step*.ckpt every N steps)
    <out>/<run_id>/tb/                    TensorBoard logs (loss terms, lr, preview grids)
    <out>/<run_id>/summary.json           written at the end: steps, wall time, images/s, ...
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from lit_modules.errors import ConfigError
from lit_modules.fast_style import FastStyle
from lit_modules.hw import hardware_name, train_precision

from .config import TrainConfig, significant
from .runs import latest_checkpoint, run_init_record
from .data import ContentDataModule, check_source
from .progress import StepRichBar, StepTQDMBar
from .schedule import Stage, control_rate, describe, lr_at, resize_painting, stage_at, stages

ENV_RUN_ID = "STYLE_ZOO_RUN_ID"  # shared by DDP ranks that Lightning launches as subprocesses


# ------------------------------------------------------------------------------------------------
# resolution helpers
# ------------------------------------------------------------------------------------------------
def resolve_accelerator(cfg: TrainConfig) -> str:
    if cfg.accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if cfg.accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError("accelerator gpu requested but CUDA is not available")
    return {"cuda": "gpu"}.get(cfg.accelerator, cfg.accelerator)


def resolve_devices(devices):
    s = str(devices).strip()
    if s.lstrip("-").isdigit():
        return int(s)
    if "," in s:
        return [int(d) for d in s.split(",") if d.strip()]
    return s


def device_count(devices, accelerator: str) -> int:
    if isinstance(devices, int):
        return (torch.cuda.device_count() if accelerator == "gpu" else 1) if devices == -1 else devices
    if isinstance(devices, list):
        return len(devices)
    return torch.cuda.device_count() if accelerator == "gpu" else 1  # "auto"


def resolve_strategy(strategy: str, n_devices: int, num_nodes: int) -> str:
    if strategy == "auto" and (n_devices > 1 or num_nodes > 1):
        return "ddp"
    return strategy


def new_run_id(cfg: TrainConfig) -> str:
    if cfg.run_id:
        return cfg.run_id
    if os.environ.get(ENV_RUN_ID):
        return os.environ[ENV_RUN_ID]
    name = (cfg.style or "").replace(",", "+") or Path(cfg.style_image or "style").stem
    return f"{name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


# ------------------------------------------------------------------------------------------------
# callbacks
# ------------------------------------------------------------------------------------------------
class Throughput(Callback):
    """Images/s over all ranks (first steps excluded as warm-up), shown in the progress bar."""

    def __init__(self, warmup: int = 2) -> None:
        self.warmup = warmup
        self.t0: float | None = None
        self.steps = 0
        self.start_wall = time.perf_counter()
        self.images_per_s = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self.start_wall = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n_images = batch[0].shape[0] * trainer.world_size
        if self.t0 is None:
            self.warm = getattr(self, "warm", 0) + 1
            if self.warm >= self.warmup:
                self.t0 = time.perf_counter()
            return
        self.steps += 1
        dt = time.perf_counter() - self.t0
        self.images_per_s = self.steps * n_images / dt
        pl_module.log("img/s", self.images_per_s, prog_bar=True, logger=False, batch_size=1)

    @property
    def wall(self) -> float:
        """Seconds of training in this run, earlier legs included (a resumed run's card shows the total)."""
        return getattr(self, "wall_before", 0.0) + time.perf_counter() - self.start_wall

    def state_dict(self) -> dict:  # saved in every checkpoint, so --resume carries the time already spent
        return {"wall_seconds": self.wall}

    def load_state_dict(self, state: dict) -> None:
        self.wall_before = float(state.get("wall_seconds", 0.0))


class Schedule(Callback):
    """Sets each step's stage (the module's crop, batch and Gram targets) and learning rate, and
    with a time budget stops the run before the budget is spent (the time left is in the bar).
    With both a time budget and ``max_steps``, whichever runs out first ends the run, and the
    schedule follows the one nearer its end: a GPU preset can be sized in photos (the same model on
    any GPU) with a time limit for a slow one, while a CPU preset's max_steps is only a far cap."""

    def __init__(self, plan: list[Stage], painting, max_steps: int, seconds: float | None = None,
                 wall: Callable[[], float] | None = None) -> None:
        self.plan, self.painting, self.max_steps, self.seconds = plan, painting, max_steps, seconds
        self.wall = wall or time.perf_counter
        self.current: int | None = None
        self.step_s: float | None = None  # recent seconds per step (the stop decision looks one step ahead)
        self._t: float | None = None
        self._timed: int | None = None  # the stage of the steps step_s averages

    def progress(self, trainer) -> float:
        done = trainer.global_step / max(1, self.max_steps)
        if self.seconds:  # rank 0's clock for every rank: one lr and one stage, or the replicas drift apart
            done = max(done, trainer.strategy.broadcast(self.wall() / self.seconds, src=0))
        return min(1.0, done)

    def seconds_left(self, trainer) -> float:
        """Until the budget or max_steps (at the recent pace) ends the run, whichever is sooner."""
        left = self.seconds - self.wall()
        if self.step_s is not None:
            left = min(left, (self.max_steps - trainer.global_step) * self.step_s)
        return max(0.0, left)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        frac = self.progress(trainer)
        i = stage_at(self.plan, frac)
        if i != self.current:
            self.enter(pl_module, i)
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = lr_at(self.plan, frac)
        if self.seconds:
            pl_module.log("min left", self.seconds_left(trainer) / 60, prog_bar=True, logger=False, batch_size=1)
        self._t = time.perf_counter()

    def enter(self, pl_module, i: int) -> None:
        s = self.plan[i]
        self.current = i
        pl_module.train_size, pl_module.train_batch = s.image_size, s.batch_size
        # Stage 0's targets come with the model (or the checkpoint of a run resumed in stage 0);
        # a later stage computes its own once, on entering it (also when a resumed run starts there).
        if self.painting is not None and i > 0:
            image = resize_painting(self.painting, s.style_size)
            pl_module.set_style_image([p.to(pl_module.device) for p in (image if isinstance(image, list) else [image])])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._t is None:
            return
        dt = time.perf_counter() - self._t
        fresh = self.step_s is None or self._timed != self.current  # a larger crop: the old average is stale
        self.step_s, self._timed = (dt if fresh else 0.8 * self.step_s + 0.2 * dt), self.current
        if not self.seconds:
            return
        left = self.seconds - self.wall()
        if trainer.strategy.broadcast(left < self.step_s, src=0):  # every rank stops at the same step
            trainer.should_stop = True  # the next step would overrun: stop now, checkpoint kept
        bar = trainer.progress_bar_callback
        if hasattr(bar, "set_total"):  # the bar counts to the steps the time left holds (max_steps at most)
            bar.set_total(min(self.max_steps, trainer.global_step + max(0, int(left / self.step_s))))


class PreviewAtEnd(Callback):
    def on_train_end(self, trainer, pl_module) -> None:
        pl_module.log_preview(trainer.global_step)


# ------------------------------------------------------------------------------------------------
# assembly
# ------------------------------------------------------------------------------------------------
def staged(cfg: TrainConfig) -> bool:
    """A time budget or a second stage: ``train.schedule`` drives the crops and the lr."""
    return cfg.minutes is not None or bool(cfg.last_stage)


def build_model(cfg: TrainConfig, style_meta: dict, style_image: torch.Tensor, precision: str) -> FastStyle:
    model = FastStyle(
        style=style_meta, width=cfg.width, num_residual=cfg.num_residual, backbone=cfg.backbone, pooling=cfg.pooling,
        content_layers=cfg.content_layers, style_layers=cfg.style_layers, content_weight=cfg.content_weight,
        style_weight=cfg.style_weight, tv_weight=cfg.tv_weight,
        # the last stage's crop and painting: the stroke scale the trained network paints at
        image_size=stages(cfg)[-1].image_size, style_size=stages(cfg)[-1].style_size,
        schedule=describe(stages(cfg), cfg.minutes, cfg.max_steps) if staged(cfg) else None,
        data=cfg.data, lr=cfg.lr, lr_schedule="none" if staged(cfg) else cfg.lr_schedule,  # train.schedule sets the lr
        batch_size=cfg.batch_size, max_steps=cfg.max_steps,
        seed=cfg.seed, precision=precision, channels_last=cfg.channels_last, image_every=cfg.image_every,
        log_every=cfg.log_every, style_image=style_image, photo_size=cfg.photo_size, init=cfg.init,
        content_limit=cfg.content_limit, control_rate=control_rate(FastStyle.CONTROL_RATE, cfg.minutes),
    )
    if precision.startswith("bf16"):
        model.loss.vgg.body.to(torch.bfloat16)  # frozen: one bf16 copy, no per-step weight casts
    if cfg.channels_last:
        model.net.to(memory_format=torch.channels_last)
        model.loss.vgg.body.to(memory_format=torch.channels_last)
    if cfg.compile:
        model.net.compile()  # in place: state_dict keys stay net.*
    return model


def build_trainer(cfg: TrainConfig, run_dir: Path, progress: bool = True, painting=None) -> tuple[L.Trainer, Throughput]:
    accelerator = resolve_accelerator(cfg)
    precision = train_precision(cfg.precision, accelerator)
    devices = resolve_devices(cfg.devices)
    strategy = resolve_strategy(cfg.strategy, device_count(devices, accelerator), cfg.num_nodes)
    throughput = Throughput()
    callbacks: list[Callback] = [
        ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="step{step:07d}", auto_insert_metric_name=False,
                        every_n_train_steps=cfg.checkpoint_every, save_top_k=-1, save_last=True,
                        enable_version_counter=False),  # overwrite last.ckpt on --resume, never last-v1.ckpt
        LearningRateMonitor(logging_interval="step"),
        throughput,
        PreviewAtEnd(),
    ]
    if staged(cfg):
        seconds = None if cfg.minutes is None else 60 * cfg.minutes
        callbacks.append(Schedule(stages(cfg), painting, cfg.max_steps, seconds, wall=lambda: throughput.wall))
    if progress:
        callbacks.append(StepRichBar() if sys.stderr.isatty() else StepTQDMBar(refresh_rate=max(1, cfg.log_every)))
    trainer = L.Trainer(
        accelerator=accelerator, devices=devices, num_nodes=cfg.num_nodes, strategy=strategy, precision=precision,
        max_steps=cfg.max_steps, max_epochs=-1, max_time=cfg.max_time,
        logger=TensorBoardLogger(save_dir=str(run_dir), name="tb", version="", default_hp_metric=False),
        callbacks=callbacks, log_every_n_steps=cfg.log_every, enable_progress_bar=progress,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
        use_distributed_sampler=False,  # ContentDataModule shards by rank itself (deterministic stream)
        benchmark=False, deterministic=False,
    )
    return trainer, throughput


def save_preview(model: FastStyle, path: Path) -> str | None:
    """The held-out preview photos and the trained network's results (one row each) as a JPEG."""
    from torchvision.utils import make_grid

    from PIL import Image

    grid = model.stylize_preview()
    if grid is None:
        return None
    img = make_grid(grid.float().cpu().clamp(0, 1), nrow=len(model.preview), padding=2)  # (3, H, W)
    tmp = path.with_name(path.name + ".part")
    Image.fromarray(img.mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()).save(tmp, format="JPEG", quality=92)
    os.replace(tmp, path)  # never a half-written preview
    return str(path)


def fit(cfg: TrainConfig, style_meta: dict, style_image: torch.Tensor, resume: bool = False,
        progress: bool = True, init: dict | None = None) -> dict:
    """Train (or resume) one run; returns the summary (also written to summary.json).

    ``init``: {"state": TransformerNet state dict, "record": dict} -- a new run starts from these
    weights (``zoo train --init``); a resumed run ignores it (its checkpoint has the weights)."""
    cfg.check()
    check_source(cfg.data)
    run_id = new_run_id(cfg)
    cfg = cfg.update(run_id=run_id)
    run_dir = Path(cfg.out).expanduser() / run_id
    last = run_dir / "checkpoints" / "last.ckpt"
    start_from = latest_checkpoint(run_dir) if resume else None  # last.ckpt, or Lightning's last-v1.ckpt
    if resume and start_from is None:
        raise ConfigError(f"{run_dir}: nothing to resume (no checkpoints/last.ckpt)")

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer, throughput = build_trainer(cfg, run_dir, progress=progress, painting=style_image if cfg.last_stage else None)
    precision = str(trainer.precision)
    accelerator = "cuda" if trainer.accelerator.__class__.__name__.lower().startswith("cuda") else "cpu"
    workers = cfg.num_workers if cfg.num_workers >= 0 else (0 if accelerator == "cpu" else min(8, (os.cpu_count() or 2) // max(1, trainer.num_devices)))
    plan = stages(cfg)
    first = style_image if not cfg.last_stage else resize_painting(style_image, plan[0].style_size)
    model = build_model(cfg, style_meta, first, precision)
    init_record = run_init_record(run_dir) if resume else (init or {}).get("record")  # kept in config.yaml across --resume
    if init is not None and not resume:
        model.net.load_state_dict(init["state"])  # copies into the (channels_last) parameters
    # a staged run's loader gives the largest crop and batch of its stages; the module takes its share
    data = ContentDataModule(cfg.data, image_size=max(s.image_size for s in plan), batch_size=max(s.batch_size for s in plan),
                             total_steps=cfg.max_steps,
                             seed=cfg.seed, num_workers=workers, preview_count=cfg.preview_count, streaming=cfg.streaming,
                             photo_size=cfg.photo_size)
    data.setup()
    model.preview = data.preview_batch()
    if cfg.channels_last and model.preview is not None:
        model.preview = model.preview.contiguous(memory_format=torch.channels_last)

    hardware = hardware_name("cuda" if accelerator == "cuda" else "cpu")
    if trainer.is_global_zero:
        if not resume and (run_dir / "config.yaml").exists():
            if latest_checkpoint(run_dir) is not None:
                raise ConfigError(f"{run_dir} already exists; use --resume {run_dir} to continue it, or another --out/--run-id")
            shutil.rmtree(run_dir / "tb", ignore_errors=True)  # a run stopped before its first checkpoint starts again
        run_dir.mkdir(parents=True, exist_ok=True)
        resolved = cfg.update(precision=precision).to_dict()
        resolved.update(style_info=style_meta, hardware=hardware, world_size=trainer.world_size,
                        global_batch_size=cfg.batch_size * trainer.world_size)
        if init_record:
            resolved["init_record"] = init_record
        (run_dir / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))

    previous = os.environ.get(ENV_RUN_ID)
    os.environ[ENV_RUN_ID] = run_id  # DDP ranks that Lightning launches as subprocesses inherit it
    try:
        trainer.fit(model, datamodule=data, ckpt_path=str(start_from) if resume else None)
    finally:
        if previous is None:
            os.environ.pop(ENV_RUN_ID, None)
        else:
            os.environ[ENV_RUN_ID] = previous
    trainer.save_checkpoint(last)  # the final state, whatever stopped the run (max_steps, max_time)

    summary = {
        "run_id": run_id,
        "run_dir": str(run_dir),
        "steps": int(trainer.global_step),
        "wall_seconds": round(throughput.wall, 2),
        "images_per_s": round(throughput.images_per_s, 3),
        "images_seen": model.images_seen * trainer.world_size if model.images_seen else int(trainer.global_step) * cfg.batch_size * trainer.world_size,
        "hardware": hardware,
        "world_size": trainer.world_size,
        "precision": precision,
        "final_loss": model.last_terms,
        "skipped_images": model.skipped,
        "checkpoint": str(last),
        "rank": trainer.global_rank,
    }
    if cfg.content_limit is not None:  # the style weight the controller ended at (zoo train prints it)
        summary["style_weight"] = significant(float(cfg.style_weight) * model.style_scale())
        summary["style_weight_at_start"] = float(cfg.style_weight)
    if init_record:  # what the warm start had already cost (zoo train --init), for the card
        summary["init"] = init_record
    if trainer.is_global_zero:
        summary["preview"] = save_preview(model, run_dir / "preview.jpg")
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
