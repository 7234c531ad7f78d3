"""Gatys et al. (2016) style transfer: optimise the image itself against the perceptual loss.

``GatysStylizer`` is a LightningModule whose only parameter is the image; one training step is
one L-BFGS iteration (or one Adam step), so the Trainer's progress bar counts iterations.
``stylize()`` runs it coarse-to-fine: a few hundred cheap iterations at ~256 px, then the image
is carried up by sqrt(2) steps to the target size, where fewer iterations are needed.
"""
from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from .color import match_luminance, preserve_color, rgb_to_yuv
from .errors import ConfigError
from .gatys_config import OPTIMIZERS, GatysConfig
from .hw import bf16_fast
from .losses import PerceptualLoss

DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}


class GatysStylizer(L.LightningModule):
    """The image (1, 3, H, W) is the sole ``nn.Parameter``; ``loss`` holds frozen VGG + targets."""

    def __init__(self, init_image: torch.Tensor, loss: PerceptualLoss, optimizer: str = "lbfgs", lr: float | None = None) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        self.save_hyperparameters(ignore=["init_image", "loss"])
        self.automatic_optimization = False  # L-BFGS needs a closure
        self.image = nn.Parameter(init_image.detach().float().clone(memory_format=torch.contiguous_format))
        self.loss = loss
        self.last_terms: dict[str, float] = {}

    def forward(self) -> torch.Tensor:
        """The current result, RGB [0, 1]."""
        return self.image.detach().clamp(0, 1)

    def training_step(self, batch, batch_idx: int) -> None:
        opt = self.optimizers()
        terms: dict[str, torch.Tensor] = {}

        def closure() -> torch.Tensor:
            opt.zero_grad()
            terms.update(self.loss(self.image))
            self.manual_backward(terms["total"])
            return terms["total"]

        opt.step(closure=closure)
        with torch.no_grad():
            # Keep pixels valid as we go: clamping only at the end undoes much of the progress.
            self.image.clamp_(0, 1)
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
        self.log_dict({k: v for k, v in self.last_terms.items()}, prog_bar=True, on_step=True, logger=False)

    def configure_optimizers(self):
        lr = self.hparams.lr or DEFAULT_LR[self.hparams.optimizer]
        if self.hparams.optimizer == "adam":
            return torch.optim.Adam([self.image], lr=lr)
        # max_iter=1: one function evaluation per training step; the curvature history lives in
        # the optimizer state, so consecutive steps are one continuous L-BFGS run.
        return torch.optim.LBFGS([self.image], lr=lr, max_iter=1, history_size=50, tolerance_grad=0, tolerance_change=0)


def scale_sizes(size: int, min_size: int, factor: float) -> list[int]:
    """Long sides from ``min_size`` up to ``size`` by ``factor``: 512, 256, sqrt2 -> [256, 362, 512]."""
    sizes = [size]
    while sizes[-1] / factor >= min_size * 0.99:
        sizes.append(round(sizes[-1] / factor))
    return sizes[::-1]


def stage_steps(cfg: GatysConfig, sizes: list[int], long_side: int) -> int:
    """Iterations at one scale: ``steps`` at the coarsest, then equal time per scale (~1/area)."""
    return max(1, round(cfg.steps * (sizes[0] / long_side) ** 2))


def fit_size(x: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize (B, 3, H, W) so its long side is ``long_side`` (antialiased when shrinking)."""
    h, w = x.shape[-2:]
    s = long_side / max(h, w)
    hw = (max(1, round(h * s)), max(1, round(w * s)))
    if hw == (h, w):
        return x
    return F.interpolate(x, size=hw, mode="bicubic", align_corners=False, antialias=s < 1).clamp(0, 1)


def build_loss(cfg: GatysConfig) -> PerceptualLoss:
    content = {k: cfg.content_weight * v for k, v in cfg.content_layers.items()}
    style = {k: cfg.style_weight * v for k, v in cfg.style_layers.items()}
    return PerceptualLoss(content=content, style=style, tv=cfg.tv_weight, backbone=cfg.backbone, pooling=cfg.pooling)


def _fast_vgg(loss: PerceptualLoss, device: torch.device, precision: str) -> None:
    use_bf16 = precision == "bf16" or (precision == "auto" and bf16_fast(device))
    loss.to(device)
    if use_bf16:
        # bf16 weights in channels_last once, instead of autocast re-casting them every pass.
        loss.vgg.to(dtype=torch.bfloat16, memory_format=torch.channels_last)


def stylize(
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    cfg: GatysConfig,
    style_weights: Sequence[float] | None = None,
    init_image: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    on_stage: Callable[[int, int, int, int], None] | None = None,
    on_step: Callable[[int, int, dict], None] | None = None,
) -> tuple[torch.Tensor, dict]:
    """Stylise ``content`` (1, 3, H, W) RGB [0,1] with ``styles``; returns (image, report).

    ``on_stage(stage, n_stages, height, width)`` is called as each scale starts, ``on_step(step,
    steps, terms)`` after each iteration of that scale. The report holds the final loss terms, the
    scales, wall time and the resolved config.
    """
    cfg.check()
    device = torch.device(device)
    t0 = time.perf_counter()
    L.seed_everything(cfg.seed, verbose=False)
    gen = torch.Generator().manual_seed(cfg.seed)
    content_full = fit_size(content, cfg.size)
    if cfg.preserve_color:
        # Luminance-only transfer: optimise on grey images, put the content's chroma back at the end.
        styles = [match_luminance(s, content_full) for s in styles]
        content_work = rgb_to_yuv(content_full)[:, :1].clamp(0, 1).expand(-1, 3, -1, -1).contiguous()
    else:
        content_work = content_full

    loss = build_loss(cfg)
    _fast_vgg(loss, device, cfg.precision)
    styles_sized = [fit_size(s, max(16, round(cfg.style_scale * cfg.size))).to(device) for s in styles]
    loss.set_style(styles_sized, style_weights)  # Gram targets are size-independent: set once

    sizes = scale_sizes(cfg.size, cfg.min_size, cfg.scale_factor)
    image = None
    terms: dict[str, float] = {}
    for i, long_side in enumerate(sizes):
        target = fit_size(content_work, long_side).to(device)
        if image is None:
            if init_image is not None:
                image = F.interpolate(init_image.to(device), size=target.shape[-2:], mode="bicubic").clamp(0, 1)
            elif cfg.init == "noise":
                image = torch.rand(target.shape, generator=gen).to(device)
            elif cfg.init == "content":
                image = target.clone()
            else:
                raise ConfigError(f"unknown init {cfg.init!r}; choose content, noise or an image path")
        else:
            image = F.interpolate(image, size=target.shape[-2:], mode="bicubic", align_corners=False).clamp(0, 1)
        if on_stage:
            on_stage(i + 1, len(sizes), *target.shape[-2:])
        loss.set_content(target)
        module = GatysStylizer(image, loss, cfg.optimizer, cfg.lr)
        steps = stage_steps(cfg, sizes, long_side)
        if steps:
            _trainer(device, steps, progress, on_step).fit(module, train_dataloaders=[0] * steps)
        image = module().detach()
        terms = module.last_terms
    out = image.cpu()
    if cfg.preserve_color:
        out = preserve_color(out, content_full)
    report = {"terms": terms, "sizes": sizes, "seconds": time.perf_counter() - t0, "config": cfg.to_dict(),
              "bf16": loss.vgg.body[0].weight.dtype == torch.bfloat16, "shape": list(out.shape[-2:])}
    return out, report


class _StepCallback(L.Callback):
    """Calls ``fn(step, steps, loss terms)`` after every iteration (for progress outside a terminal)."""

    def __init__(self, fn: Callable[[int, int, dict], None], steps: int) -> None:
        self.fn, self.steps = fn, steps

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.fn(batch_idx + 1, self.steps, dict(module.last_terms))


def _trainer(device: torch.device, steps: int, progress: bool, on_step: Callable | None = None) -> L.Trainer:
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*train_dataloader.*")
    warnings.filterwarnings("ignore", ".*module\\(s\\) in eval mode.*")  # the frozen VGG, on purpose
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    return L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=[device.index or 0] if device.type == "cuda" else 1,
        max_steps=steps,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        callbacks=[_StepCallback(on_step, steps)] if on_step else None,
        num_sanity_val_steps=0,
        deterministic=False,
    )
