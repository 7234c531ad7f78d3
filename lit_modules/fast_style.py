"""Fast (feed-forward) style transfer, Johnson et al. (2016): train a TransformerNet per style.

``FastStyle`` is a LightningModule: ``self.net`` is the TransformerNet (checkpoint keys
``net.*``), ``self.loss`` the frozen VGG-19 perceptual loss whose style Gram targets are
computed once from the style image and kept as buffers. ``forward`` is inference.

Every hyperparameter is a plain Python value (``save_hyperparameters``), so a checkpoint loads
with ``torch.load(..., weights_only=True)`` and rebuilds the network with no other input:
``FastStyle.network_from_checkpoint(path)``.
"""
from __future__ import annotations

import math

import lightning as L
import torch

from .errors import ConfigError, TrainingDiverged
from .losses import PerceptualLoss
from .transformer_net import TransformerNet


class FastStyle(L.LightningModule):
    def __init__(
        self,
        style: dict | list,
        width: float = 1.0,
        num_residual: int = 5,
        backbone: str = "caffe",
        pooling: str = "max",
        content_layers: dict | None = None,
        style_layers: dict | None = None,
        content_weight: float = 1.0,
        style_weight: float | list = 100.0,
        tv_weight: float = 1.0,
        image_size: int = 256,
        style_size: int = 512,
        data: str = "",
        lr: float = 1e-3,
        lr_schedule: str = "none",
        batch_size: int = 4,
        max_steps: int = 1000,
        seed: int = 0,
        precision: str = "32-true",
        channels_last: bool = False,
        image_every: int = 200,
        log_every: int = 10,
        style_image: torch.Tensor | None = None,
        photo_size: int | None = None,
        init: str | None = None,
        schedule: str | None = None,  # a staged run's stages in words (train.schedule.describe), for the card
        content_limit: float | None = None,  # lower the style term when content term / content weight passes this
        control_rate: float | None = None,  # the content limit's step on log(weight) per step and per log(distance / limit)
    ) -> None:
        super().__init__()
        content_layers = dict(content_layers or {"relu2_2": 1.0})
        style_layers = dict(style_layers or {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0})
        metas = list(style) if isinstance(style, (list, tuple)) else [style]
        if not metas or not all(isinstance(m, dict) and "name" in m for m in metas):
            raise ConfigError("FastStyle needs style={'name': ..., 'sha256': ..., ...} (or a list of them: one network, several styles)")
        n = len(metas)
        factor = [float(w) for w in style_weight] if isinstance(style_weight, (list, tuple)) else [float(style_weight)] * n
        if len(factor) != n:
            raise ConfigError(f"{len(factor)} style weights for {n} styles")
        self.save_hyperparameters(ignore=["style_image"])
        # Plain-python hparams only (weights_only checkpoints): normalise the layer dicts.
        self.hparams.content_layers = {str(k): float(v) for k, v in content_layers.items()}
        self.hparams.style_layers = {str(k): float(v) for k, v in style_layers.items()}
        self.num_styles = n
        self.net = TransformerNet(width=width, num_residual=num_residual, styles=n)
        # One style: the style weight multiplies the layer weights (as always). Several: the layer
        # weights stay relative and each style's own weight rides in StyleLoss.factor (per sample).
        self.loss = PerceptualLoss(
            content={k: float(v) * content_weight for k, v in content_layers.items()},
            style={k: float(v) * (factor[0] if n == 1 else 1.0) for k, v in style_layers.items()},
            tv=tv_weight, backbone=backbone, pooling=pooling,
        )
        self.style_factor = [1.0] if n == 1 else factor
        if content_limit is not None:
            if n != 1 or content_limit <= 0:
                raise ConfigError("content_limit needs one style and a value > 0")
            # log of the style term's multiplier, and the running content distance it answers to (resume keeps both)
            self.register_buffer("style_log_scale", torch.zeros(()))
            self.register_buffer("content_ema", torch.full((), float(content_limit)))
        self.loss.style_loss.factor = torch.tensor(self.style_factor)
        if style_image is not None:
            self.set_style_image(style_image)
        # Gram targets are empty until set: size them from a checkpoint before it is loaded.
        self._register_load_state_dict_pre_hook(self._size_target_buffers)
        self.preview: torch.Tensor | None = None  # (K, 3, S, S) fixed photos, set by the trainer
        # A staged run (train.schedule) trains on fewer/smaller crops than the loader gives early on.
        self.train_size: int | None = None
        self.train_batch: int | None = None
        self.images_seen = 0  # by this rank, earlier legs included (kept in the checkpoint)
        self.skipped = 0
        self.last_terms: dict[str, float] = {}

    # -- style targets ------------------------------------------------------------------------------
    @torch.no_grad()
    def set_style_image(self, image) -> None:
        """Compute the Gram targets once from ``image`` (1, 3, H, W) in [0, 1] -- or a list of them,
        one per style, for a conditional network; they live in buffers."""
        images = list(image) if isinstance(image, (list, tuple)) else [image]
        if len(images) != self.num_styles:
            raise ConfigError(f"{len(images)} style images for {self.num_styles} styles")
        self.loss.set_styles([i.float() for i in images], self.style_factor)

    def _size_target_buffers(self, state_dict, prefix, *args) -> None:
        for name, buf in list(self.named_buffers()):
            value = state_dict.get(prefix + name)
            if value is not None and buf.numel() == 0 and value.shape != buf.shape:
                owner, _, attr = name.rpartition(".")
                setattr(self.get_submodule(owner), attr, torch.empty_like(value, device=buf.device))

    def has_style_targets(self) -> bool:
        return all(self.loss.style_loss.target(layer).numel() > 0 for layer in self.loss.style_layers)

    def setup(self, stage: str) -> None:
        if not self.has_style_targets():
            raise ConfigError("FastStyle has no style targets: pass style_image= or load a checkpoint")

    # -- inference ----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, style=None) -> torch.Tensor:
        """Stylise (B, 3, H, W) RGB [0, 1] -> same shape, RGB [0, 1] (``style``: index or weights
        when the network holds several styles)."""
        return self.net(x, style)

    # -- training -----------------------------------------------------------------------------------
    def style_index(self, batch: int) -> torch.Tensor | None:
        """Which style each sample of this step learns: round-robin over the run's sample stream
        (balanced, deterministic, the same on resume and for any DDP split of the global batch)."""
        if self.num_styles == 1:
            return None
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self._trainer is not None else (0, 1)
        first = (self.global_step * world + rank) * batch
        return (torch.arange(first, first + batch, device=self.device) % self.num_styles)

    def terms(self, content: torch.Tensor, style_index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Loss terms for a batch of content photos (the network's output vs. content and style)."""
        if self.hparams.channels_last:
            content = content.contiguous(memory_format=torch.channels_last)
        if style_index is None:
            style_index = self.style_index(content.shape[0])
        # content pass cut at the content layer
        return self.loss(self.net(content, style_index), content=content, style_index=style_index)

    def stage_crops(self, content: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) loader crops -> this stage's (b, 3, s, s): the first ``train_batch``, the
        whole crop shrunk to ``train_size`` (the same photo, as a smaller crop of it would not be)."""
        if self.train_batch:
            content = content[: self.train_batch]
        if self.train_size and content.shape[-1] != self.train_size:
            content = torch.nn.functional.interpolate(content, size=(self.train_size, self.train_size), mode="bilinear",
                                                      antialias=True, align_corners=False).clamp(0, 1)
        return content

    # A painting's style term is not on one scale with the photo's (train.calibrate only estimates the
    # balance, and an abstract painting's calibrated weight paints the photo away). A run with a content
    # limit L watches the content term over its weight (the loss's own MSE / mean|F|^2 scale) on the
    # training batches and, while its running value is above L, lowers the style term: the multiplier
    # exp(style_log_scale), an integral controller on log(L / running distance), clamped to 1/8..1 (never
    # raised: a painting the calibration balances keeps its weight). CONTROL_RATE suits a run of ~600
    # steps (the own preset's 13 minutes on two cores); a shorter budget passes a faster control_rate.
    CONTROL_RATE, CONTROL_EMA, CONTROL_FLOOR = 0.02, 0.9, math.log(1 / 8)

    def style_scale(self) -> float:
        return math.exp(float(self.style_log_scale)) if self.hparams.content_limit is not None else 1.0

    def control(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Weight the style term by the controller's scale (in place of ``total``), then move the scale."""
        scale = self.style_log_scale.exp()
        terms["total"] = terms["content"] + scale * terms["style"] + terms["tv"]
        unit = float(self.hparams.content_weight) * sum(self.hparams.content_layers.values())
        r = terms["content"].detach() / max(unit, 1e-12)  # this batch's content distance
        if self._trainer is not None and self.trainer.world_size > 1:
            r = self.trainer.strategy.reduce(r, reduce_op="mean")  # every rank moves the scale alike
        self.content_ema.mul_(self.CONTROL_EMA).add_(r.to(self.content_ema) * (1 - self.CONTROL_EMA))
        c = float(self.hparams.content_limit)
        rate = self.hparams.get("control_rate") or self.CONTROL_RATE  # checkpoints from before the hparam: the class's
        self.style_log_scale.add_(rate * torch.log(c / self.content_ema.clamp_min(1e-6))).clamp_(self.CONTROL_FLOOR, 0.0)
        terms["style_scale"] = scale.detach()
        return terms

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        content, skipped = batch
        content = self.stage_crops(content)
        self.images_seen += content.shape[0]
        terms = self.terms(content)
        if self.hparams.content_limit is not None:
            terms = self.control(terms)
        self.skipped += int(skipped)
        self.last_terms = {k: float(v.detach()) for k, v in terms.items()}
        if not math.isfinite(self.last_terms["total"]):  # stop before Adam writes NaN into every weight (and checkpoint)
            raise TrainingDiverged(f"training diverged at step {self.global_step} (loss {self.last_terms['total']}); the "
                                   "checkpoints before it are kept: lower --lr or --style-weight and start again")
        self.log_dict({f"loss/{k}": v.detach() for k, v in terms.items()}, on_step=True, prog_bar=False, logger=True,
                      batch_size=content.shape[0])
        self.log("loss", terms["total"].detach(), prog_bar=True, logger=False, batch_size=content.shape[0])
        if skipped:
            self.log("data/skipped", float(self.skipped), on_step=True, logger=True, batch_size=content.shape[0])
        return terms["total"]

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        step = self.global_step
        if self.preview is not None and (step % self.hparams.image_every == 0 or step == self.hparams.max_steps):
            self.log_preview(step)

    @torch.no_grad()
    def stylize_preview(self) -> torch.Tensor | None:
        if self.preview is None:
            return None
        was = self.net.training
        self.net.eval()
        try:
            x = self.preview.to(self.device)
            rows = [self.net(x, None if self.num_styles == 1 else s).float() for s in range(self.num_styles)]
            return torch.cat([x, *rows], dim=0)  # photos row, then one stylised row per style
        finally:
            self.net.train(was)

    def log_preview(self, step: int) -> None:
        if self.trainer is None or not self.trainer.is_global_zero or self.logger is None:
            return
        exp = getattr(self.logger, "experiment", None)
        if exp is None or not hasattr(exp, "add_image"):
            return
        from torchvision.utils import make_grid

        grid = self.stylize_preview()
        if grid is not None:
            exp.add_image("preview", make_grid(grid.cpu(), nrow=len(self.preview), padding=2), global_step=step)

    def configure_optimizers(self):
        # fused: one kernel for all ~60 tensors instead of ~10 small ops each (CPU and CUDA alike)
        opt = torch.optim.Adam(self.net.parameters(), lr=self.hparams.lr, fused=True)
        sched = self.hparams.lr_schedule
        if sched == "none":
            return opt
        total = max(1, int(self.hparams.max_steps))
        if sched == "cosine":
            fn = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)) * 0.99 + 0.01  # noqa: E731
        elif sched == "step":
            fn = lambda s: 1.0 if s < 2 * total // 3 else 0.1  # noqa: E731
        else:
            raise ConfigError(f"unknown lr schedule {sched!r}")
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, fn)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # -- checkpoints ----------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["images_seen"] = self.images_seen

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.images_seen = int(checkpoint.get("images_seen", 0))

    @staticmethod
    def network_from_checkpoint(path, map_location: str = "cpu") -> TransformerNet:
        """Rebuild the trained TransformerNet from a checkpoint alone (weights_only load, no Lightning)."""
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
        hp = ckpt["hyper_parameters"]
        style = hp["style"]
        net = TransformerNet.from_config(hp, styles=len(style) if isinstance(style, (list, tuple)) else 1)
        net.load_state_dict({k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")})
        return net.eval()
