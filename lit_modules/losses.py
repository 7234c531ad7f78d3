"""Perceptual loss: content (feature MSE), style (Gram MSE) and total variation, as small modules.

All terms are computed in fp32, even when the VGG passes run in bf16 under autocast or with a
bf16 extractor: Gram matrices sum H*W products and lose too much in bf16.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError
from .vgg import VGG19Features


def gram(feat: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) Gram matrix normalised by C*H*W, always fp32."""
    b, c, h, w = feat.shape
    with torch.autocast(device_type=feat.device.type, enabled=False):
        f = feat.float().reshape(b, c, h * w)  # (B, C, HW)
        return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error in fp32 (broadcasts a (1, ...) target over a batch)."""
    with torch.autocast(device_type=a.device.type, enabled=False):
        return F.mse_loss(a.float(), b.float().expand_as(a))


def scaled_mse(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE divided by the target's squared mean magnitude, so every layer's term is O(1).

    Raw VGG activations differ by orders of magnitude between layers and backbones (caffe
    relu1_1 Grams ~16, relu5_1 ~0.3 with avg pooling); dividing by mean(|target|)^2 makes
    per-layer weights mean "relative importance" and lets one set of weights serve both
    backbones. A term of 1.0 means an error as large as the target itself.
    """
    scale = target.detach().float().abs().mean().pow(2).clamp_min(1e-12)
    return mse(a, target) / scale


def scaled_mse_per_sample(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``scaled_mse`` for each sample of a (B, ...) batch against its own target, averaged over B.

    A plain mean over samples: DDP's gradient average over ranks then equals the gradient of one
    process with the same global batch (a batch-wide scale would couple the samples).
    """
    with torch.autocast(device_type=a.device.type, enabled=False):
        a, t = a.float(), target.detach().float().expand_as(a)
        dims = tuple(range(1, a.dim()))
        scale = t.abs().mean(dim=dims).pow(2).clamp_min(1e-12)  # (B,)
        return ((a - t).pow(2).mean(dim=dims) / scale).mean()


def scaled_mse_rows(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) ``scaled_mse`` of each sample of ``a`` against its own row of ``target`` (same shape)."""
    with torch.autocast(device_type=a.device.type, enabled=False):
        a, t = a.float(), target.detach().float()
        dims = tuple(range(1, a.dim()))
        return (a - t).pow(2).mean(dim=dims) / t.abs().mean(dim=dims).pow(2).clamp_min(1e-12)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels of (B, C, H, W), fp32."""
    x = x.float()
    dy = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).mean()
    dx = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).mean()
    return dx + dy


def _check_weights(kind: str, weights: Mapping[str, float]) -> dict[str, float]:
    out = {str(k): float(v) for k, v in dict(weights).items()}
    neg = [k for k, v in out.items() if v < 0]
    if neg:
        raise ConfigError(f"{kind} weights must be >= 0; negative for {neg}")
    return out


class ContentLoss(nn.Module):
    """sum_l w_l * MSE(F_l(x), F_l(content)) / mean|F_l(content)|^2, per photo, averaged over the batch."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        self.weights = _check_weights("content", weights)

    def set_weights(self, weights: Mapping[str, float]) -> None:
        """New weights for the same layers (the extractor computes only those)."""
        weights = _check_weights("content", weights)
        if set(weights) != set(self.weights):
            raise ConfigError(f"content layers are fixed at {sorted(self.weights)}; got {sorted(weights)}")
        self.weights = weights

    def forward(self, feats: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
        terms = [w * scaled_mse_per_sample(feats[layer], targets[layer]) for layer, w in self.weights.items()]
        return torch.stack(terms).sum() if terms else torch.zeros((), device=next(iter(feats.values())).device)


class StyleLoss(nn.Module):
    """sum_l w_l * MSE(G(F_l(x)), A_l) / mean|A_l|^2; target Grams A_l live in buffers ``target_<layer>``.

    Targets are (S, C, C): one Gram per style. With one style every sample is compared with it;
    with S > 1 (a conditional network learning S styles at once) ``forward(feats, index)`` compares
    sample b with style ``index[b]``, scaled by that style's own target magnitude and multiplied
    by ``factor[index[b]]`` (per-style weights; buffer ``factor``, ones by default).
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        super().__init__()
        self.weights = _check_weights("style", weights)
        for layer in self.weights:
            self.register_buffer(f"target_{layer}", torch.empty(0))
        self.register_buffer("factor", torch.empty(0), persistent=False)  # from hyperparameters

    def set_targets(self, grams: Mapping[str, torch.Tensor], factor: Sequence[float] | None = None) -> None:
        for layer in self.weights:
            setattr(self, f"target_{layer}", grams[layer].detach().float())  # (S, C, C)
        n = next(iter(grams.values())).shape[0] if grams else 1
        self.factor = torch.as_tensor(factor if factor is not None else [1.0] * n, dtype=torch.float32,
                                      device=self.target(next(iter(self.weights))).device if self.weights else None)

    def target(self, layer: str) -> torch.Tensor:
        return getattr(self, f"target_{layer}")

    def forward(self, feats: Mapping[str, torch.Tensor], index: torch.Tensor | None = None) -> torch.Tensor:
        if self.weights and self.target(next(iter(self.weights))).numel() == 0:
            raise RuntimeError("StyleLoss has no targets yet: call set_targets() / PerceptualLoss.set_style()")
        if index is None:
            terms = [w * scaled_mse(gram(feats[layer]), self.target(layer)) for layer, w in self.weights.items()]
        else:
            factor = (self.factor if self.factor.numel() else torch.ones(1, device=index.device))[index]  # (B,)
            terms = [w * (scaled_mse_rows(gram(feats[layer]), self.target(layer)[index]) * factor).mean()
                     for layer, w in self.weights.items()]
        return torch.stack(terms).sum() if terms else torch.zeros((), device=next(iter(feats.values())).device)


class PerceptualLoss(nn.Module):
    """Content + style + TV on one frozen VGG-19, configured by ``{layer: weight}`` dicts.

    ``forward(x, content=None)`` returns ``{"content", "style", "tv", "total"}`` (fp32 scalars).
    Content targets come either from ``content`` (a batch, e.g. fast-style training: one
    extra VGG pass cut at the deepest content layer) or from ``set_content`` (Gatys: computed
    once, kept as buffers). Style targets are always set once by ``set_style``.
    """

    def __init__(
        self,
        content: Mapping[str, float] = {"relu2_2": 1.0},
        style: Mapping[str, float] = {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0},
        tv: float = 0.0,
        backbone: str = "caffe",
        pooling: str = "max",
    ) -> None:
        super().__init__()
        self.content_loss = ContentLoss(content)
        self.style_loss = StyleLoss(style)
        if tv < 0:
            raise ConfigError(f"tv weight must be >= 0, got {tv}")
        self.tv_weight = float(tv)
        self.content_layers = tuple(self.content_loss.weights)
        self.style_layers = tuple(self.style_loss.weights)
        self.vgg = VGG19Features(self.content_layers + self.style_layers, backbone=backbone, pooling=pooling)
        for layer in self.content_layers:
            self.register_buffer(f"content_{layer}", torch.empty(0))

    @torch.no_grad()
    def style_grams(self, images: Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
        """Blend the Gram matrices of several style images (each (1, 3, H, W)) by ``weights``."""
        if not images:
            raise ConfigError("at least one style image is needed")
        weights = [1.0] * len(images) if weights is None else [float(w) for w in weights]
        if len(weights) != len(images) or min(weights) < 0 or sum(weights) <= 0:
            raise ConfigError(f"style weights must be {len(images)} non-negative numbers with a positive sum")
        total = sum(weights)
        grams: dict[str, torch.Tensor] = {}
        for img, w in zip(images, weights):
            feats = self.vgg(img, layers=self.style_layers)
            for layer in self.style_layers:
                g = gram(feats[layer]).mean(0, keepdim=True) * (w / total)  # (1, C, C)
                grams[layer] = grams[layer] + g if layer in grams else g
        return grams

    def set_style(self, images: Sequence[torch.Tensor], weights: Sequence[float] | None = None) -> None:
        """One target: the Gram matrices of ``images`` blended by ``weights``."""
        self.style_loss.set_targets(self.style_grams(images, weights))

    @torch.no_grad()
    def set_styles(self, images: Sequence[torch.Tensor], factor: Sequence[float] | None = None) -> None:
        """S targets, one per image (a conditional network's styles), each weighted by ``factor[s]``."""
        per = [self.style_grams([img]) for img in images]
        self.style_loss.set_targets({layer: torch.cat([g[layer] for g in per]) for layer in self.style_layers}, factor)

    @torch.no_grad()
    def set_content(self, image: torch.Tensor) -> None:
        feats = self.vgg(image, layers=self.content_layers)
        for layer in self.content_layers:
            setattr(self, f"content_{layer}", feats[layer].detach().float())

    def forward(self, x: torch.Tensor, content: torch.Tensor | None = None,
                style_index: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if content is not None:
            with torch.no_grad():
                targets = self.vgg(content, layers=self.content_layers)
        else:
            targets = {layer: getattr(self, f"content_{layer}") for layer in self.content_layers}
            if any(t.numel() == 0 for t in targets.values()):
                raise RuntimeError("no content targets: pass content= or call set_content()")
        feats = self.vgg(x)
        terms = {
            "content": self.content_loss(feats, targets),
            "style": self.style_loss(feats, style_index),
            "tv": self.tv_weight * total_variation(x),
        }
        terms["total"] = terms["content"] + terms["style"] + terms["tv"]
        return terms
