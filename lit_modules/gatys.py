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
from .errors import ConfigError, StyleZooError
from .gatys_config import LINE_SEARCHES, OPTIMIZERS, GatysConfig, scale_sizes
from .hw import gatys_bf16
from .losses import PerceptualLoss

DEFAULT_LR = {"lbfgs": 1.0, "adam": 0.02}
FLOOR_SIDE = 512  # long side up to which every scale gets min_steps iterations
MAX_LINE_SEARCH = 20  # loss evaluations one line search may spend


class GatysDiverged(StyleZooError):
    """No finite loss at all: nothing worth writing out."""


class Diverged(Exception):
    """Raised inside the closure when a loss is non-finite or has exploded; never leaves this module."""


class GatysStylizer(L.LightningModule):
    """The image (1, 3, H, W) is the sole ``nn.Parameter``; ``loss`` holds frozen VGG + targets.

    The loss is taken on ``image.clamp(0, 1)``: the optimiser sees exactly the picture that will be
    written, and L-BFGS's curvature pairs stay true (clamping the parameter in place after each
    step moves it behind the optimiser's back). Every evaluation is checked: the best iterate seen
    is kept (``best_image``/``best_terms``) and a non-finite loss, or one above ``guard`` x the best
    at the point a step starts from, throws the step away: the image goes back to the best
    iterate, the L-BFGS history is dropped, and the strong-Wolfe line search is switched on.
    """

    def __init__(self, init_image: torch.Tensor, loss: PerceptualLoss, optimizer: str = "lbfgs", lr: float | None = None,
                 line_search: str = "strong_wolfe", guard: float = 1.5) -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if line_search not in LINE_SEARCHES:
            raise ConfigError(f"unknown line search {line_search!r}; choose one of {', '.join(LINE_SEARCHES)}")
        self.save_hyperparameters(ignore=["init_image", "loss"])
        self.automatic_optimization = False  # L-BFGS needs a closure
        self.image = nn.Parameter(init_image.detach().float().clone(memory_format=torch.contiguous_format))
        self.loss = loss
        self.line_search = line_search if optimizer == "lbfgs" else "none"
        self.best_loss = math.inf
        self.best_image = self.image.detach().clone()
        self.best_terms: dict[str, float] = {}
        self.last_terms: dict[str, float] = {}
        self.evals = 0  # loss evaluations (forward + backward passes)
        self.recoveries = 0  # steps thrown away
        self._cache: tuple[torch.Tensor, torch.Tensor, dict] | None = None  # (image, grad, terms) of the last evaluation

    def forward(self) -> torch.Tensor:
        """The best result so far, RGB [0, 1]."""
        return self.best_image.clamp(0, 1)

    def _evaluate(self) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss and gradient at the current image; a repeat of the last point costs nothing.

        torch's L-BFGS re-evaluates the point its line search has just accepted at the start of the
        next step; the cache turns that into a copy.
        """
        if self._cache is not None and torch.equal(self._cache[0], self.image.detach()):
            self.image.grad = self._cache[1].clone()
            return torch.tensor(self._cache[2]["total"]), self._cache[2]
        terms = self.loss(self.image.clamp(0, 1))
        self.manual_backward(terms["total"])
        self.evals += 1
        floats = {k: float(v.detach()) for k, v in terms.items()}
        self._cache = (self.image.detach().clone(), self.image.grad.detach().clone(), floats)
        return terms["total"].detach(), floats

    def training_step(self, batch, batch_idx: int) -> None:
        opt = self.optimizers()
        calls = [0]

        def closure() -> torch.Tensor:
            opt.zero_grad()
            total, terms = self._evaluate()
            calls[0] += 1
            f = terms["total"]
            # The first call of a step is the point the last step went to: judge it. Later calls
            # are line-search trials, allowed to be worse (the search rejects them itself).
            if not math.isfinite(f) or (calls[0] == 1 and f > self.guard * self.best_loss):
                raise Diverged(f)
            if f < self.best_loss:
                self.best_loss, self.best_terms = f, terms
                self.best_image = self.image.detach().clone()
            self.last_terms = terms
            return total

        try:
            opt.step(closure=closure)
        except Diverged:
            self._recover(opt)
        self.log_dict(dict(self.last_terms), prog_bar=True, on_step=True, logger=False)

    @property
    def guard(self) -> float:
        return self.hparams.guard

    def _recover(self, opt) -> None:
        """Back to the best iterate with a fresh L-BFGS that line-searches from now on."""
        self.recoveries += 1
        with torch.no_grad():
            self.image.copy_(self.best_image)
        self._cache = None
        inner = getattr(opt, "optimizer", opt)
        inner.state.clear()
        if self.hparams.optimizer == "lbfgs":
            self.line_search = "strong_wolfe"
            for group in inner.param_groups:
                group["line_search_fn"] = "strong_wolfe"
        else:
            for group in inner.param_groups:
                group["lr"] *= 0.5

    def finish(self) -> torch.Tensor:
        """Evaluate the last point (the last step went there unevaluated); return the best image."""
        img = self.image.detach()  # the trainer's teardown may have moved the module (to the CPU)
        if self._cache is None or not torch.equal(self._cache[0].to(img.device), img):
            with torch.no_grad():
                terms = {k: float(v) for k, v in self.loss(self.image.clamp(0, 1)).items()}
            self.evals += 1
            if math.isfinite(terms["total"]) and terms["total"] < self.best_loss:
                self.best_loss, self.best_terms = terms["total"], terms
                self.best_image = self.image.detach().clone()
        if not math.isfinite(self.best_loss):
            raise GatysDiverged("the optimisation produced no finite loss; try lower weights or --precision fp32")
        return self()

    def configure_optimizers(self):
        lr = self.hparams.lr or DEFAULT_LR[self.hparams.optimizer]
        if self.hparams.optimizer == "adam":
            return torch.optim.Adam([self.image], lr=lr)
        # max_iter=1: one L-BFGS iteration per training step; the curvature history lives in the
        # optimizer state, so consecutive steps are one continuous L-BFGS run.
        # max_eval bounds the line search's trials (torch's default, max_iter * 5 // 4 = 1, leaves
        # it none: a rejected first trial then means no step at all, and the run stalls).
        return torch.optim.LBFGS([self.image], lr=lr, max_iter=1, max_eval=MAX_LINE_SEARCH + 1, history_size=50,
                                 tolerance_grad=0, tolerance_change=0,
                                 line_search_fn=None if self.line_search == "none" else self.line_search)


def stage_steps(cfg: GatysConfig, sizes: list[int], long_side: int) -> int:
    """Iterations at one scale: ``steps`` at the coarsest, then equal time per scale (~1/area),
    but at least ``min_steps`` up to 512 px (fine textures need iterations of their own) and
    that floor's time above it (min_steps/4 per doubling), so 1024 and 2048 px stay cheap."""
    if long_side == sizes[0]:
        return cfg.steps
    floor = cfg.min_steps * min(1.0, (FLOOR_SIDE / long_side) ** 2)
    return max(1, round(floor), round(cfg.steps * (sizes[0] / long_side) ** 2))


def fit_size(x: torch.Tensor, long_side: int) -> torch.Tensor:
    """Resize (B, 3, H, W) so its long side is ``long_side`` (antialiased when shrinking)."""
    h, w = x.shape[-2:]
    s = long_side / max(h, w)
    hw = (max(1, round(h * s)), max(1, round(w * s)))
    if hw == (h, w):
        return x
    return F.interpolate(x, size=hw, mode="bicubic", align_corners=False, antialias=s < 1).clamp(0, 1)


def content_weights(cfg: GatysConfig, hold_layout: bool) -> dict[str, float]:
    """Content layer weights at one scale: the photo's features, plus the layout term
    (``layout_layers`` x ``layout_weight``) while ``hold_layout`` -- every scale but the last."""
    weights = {k: cfg.content_weight * v for k, v in cfg.content_layers.items()}
    if cfg.layout_weight > 0:
        for k, v in cfg.layout_layers.items():
            weights[k] = weights.get(k, 0.0) + (cfg.layout_weight * v if hold_layout else 0.0)
    return weights


def build_loss(cfg: GatysConfig) -> PerceptualLoss:
    """The last scale's loss (the one reported); ``stylize`` holds the layout before it."""
    content = content_weights(cfg, hold_layout=False)
    style = {k: cfg.style_weight * v for k, v in cfg.style_layers.items()}
    return PerceptualLoss(content=content, style=style, tv=cfg.tv_weight, backbone=cfg.backbone, pooling=cfg.pooling)


def _fast_vgg(loss: PerceptualLoss, device: torch.device, precision: str) -> None:
    use_bf16 = gatys_bf16(precision, device)
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
    cfg.check_sides(content.shape[-2:], [s.shape[-2:] for s in styles])
    sizes = scale_sizes(cfg.size, cfg.min_size, cfg.scale_factor)
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
    def set_style(long_side: int) -> None:
        loss.set_style([fit_size(s, max(16, round(cfg.style_scale * long_side))).to(device) for s in styles], style_weights)

    set_style(cfg.size)

    image = None
    terms: dict[str, float] = {}
    scales: list[dict] = []  # per scale: steps, loss evaluations, recoveries, seconds, loss
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
        loss.content_loss.set_weights(content_weights(cfg, hold_layout=i < len(sizes) - 1))
        loss.set_content(target)
        if cfg.style_per_scale:
            # The painting at the same scale as the image: brush strokes keep their size relative to
            # the picture (the full-size painting's Grams at 128 px paint 4x larger strokes).
            set_style(long_side)
        module = GatysStylizer(image, loss, cfg.optimizer, cfg.lr, cfg.line_search)
        steps = stage_steps(cfg, sizes, long_side)
        t_scale = time.perf_counter()
        if steps:
            _trainer(device, steps, progress, on_step).fit(module, train_dataloaders=[0] * steps)
        # Lightning's teardown moves the module to the CPU after fit: bring it back, so finishing
        # (one more loss evaluation) runs where the optimisation ran and meets its cache there
        image = module.to(device).finish().detach()
        terms = module.best_terms
        scales.append({"long_side": long_side, "steps": steps, "evals": module.evals, "recoveries": module.recoveries,
                       "seconds": round(time.perf_counter() - t_scale, 2), "loss": terms["total"]})
    out = image.cpu()
    if cfg.preserve_color:
        out = preserve_color(out, content_full)
    report = {"terms": terms, "sizes": sizes, "scales": scales, "seconds": time.perf_counter() - t0, "config": cfg.to_dict(),
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
