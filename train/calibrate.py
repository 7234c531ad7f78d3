"""A style weight for a painting nobody tuned: the named styles' hand-tuned balance, carried over.

The style term's size depends on the painting: its Gram magnitudes, how far ordinary photos
already are from them. So no fixed weight suits every painting (style weight 100 on an ochre
portrait painted the photo away; the named styles' own weights are 2 to 10). What the named
styles' weights share is the product ``weight x S0``, where S0 is the style loss of the
*unstylised* photos against the painting: the weight puts the photo's starting distance from the
painting at a similar scale for all of them. A new painting gets ``weight = K / S0``, K the median of
that product over the named styles, each measured with the run's own loss (layers, crop and
style sizes) on the same few photos, so the calibration holds under any preset.
"""
from __future__ import annotations

import statistics
from typing import Sequence

import torch

from lit_modules.losses import PerceptualLoss

from .config import significant


@torch.no_grad()
def photo_style_distance(loss: PerceptualLoss, feats: dict, painting: torch.Tensor) -> float:
    """S0: the style loss (unweighted) of photos, given as their VGG features ``feats``, against
    ``painting`` (1, 3, h, w)."""
    loss.set_style([painting])
    return float(loss.style_loss(feats))


@torch.no_grad()
def calibrated_style_weight(loss: PerceptualLoss, photos: torch.Tensor, painting: torch.Tensor,
                            references: Sequence[tuple[torch.Tensor, float]]) -> dict:
    """{"style_weight": K / S0, "s0": S0, "k": K} for ``painting``; ``references`` are (painting,
    tuned style weight) pairs of the named styles."""
    feats = loss.vgg(photos, layers=loss.style_layers)  # once: the photos are the same for every painting
    products = [w * photo_style_distance(loss, feats, p) for p, w in references]
    k = statistics.median(products)
    s0 = photo_style_distance(loss, feats, painting)
    return {"style_weight": significant(k / max(s0, 1e-6)), "s0": significant(s0), "k": significant(k)}
