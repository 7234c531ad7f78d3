"""Johnson et al. (2016) image transformation network: RGB [0,1] in, RGB [0,1] out, same size.

Differences from the paper, all standard since: instance norm (Ulyanov et al.) instead of batch
norm, nearest-upsample + conv instead of transposed conv (no checkerboard artefacts, Odena et al.),
reflection padding everywhere, and a sigmoid bound on the output.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InstanceNorm(nn.Module):
    """Affine instance norm whose statistics can be recorded once and then reused.

    Tiled inference of a huge photo needs every tile normalised with the statistics of the
    *whole* image, or tiles come out in different tones: record them on a downscaled pass
    (``record=True``), then set ``stats`` before running the tiles.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.stats: tuple[torch.Tensor, torch.Tensor] | None = None  # (mean, var), each (B, C, 1, 1)
        self.record = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        if self.stats is None and not self.record:
            return F.instance_norm(x, weight=self.weight.to(x.dtype), bias=self.bias.to(x.dtype), eps=self.eps)
        if self.stats is None:
            var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, unbiased=False)
            self.stats = (mean, var)
        mean, var = self.stats
        y = (x.float() - mean) * torch.rsqrt(var + self.eps)
        return (y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)).to(x.dtype)


class ConvLayer(nn.Sequential):
    """Reflection pad + conv (+ instance norm + ReLU)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, norm: bool = True, relu: bool = True) -> None:
        layers: list[nn.Module] = [nn.ReflectionPad2d(k // 2), nn.Conv2d(cin, cout, k, stride)]
        if norm:
            layers.append(InstanceNorm(cout))
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvLayer(c, c, 3), ConvLayer(c, c, 3, relu=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpConv(nn.Module):
    """Nearest upsample to an exact size (so odd input sizes round-trip), then conv."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvLayer(cin, cout, 3)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))


class TransformerNet(nn.Module):
    """Encoder (9x9/32, 3x3 s2/64, 3x3 s2/128), 5 residual blocks, decoder mirroring it.

    ``width`` scales every channel count (0.5 gives a ~4x cheaper network).
    """

    def __init__(self, width: float = 1.0, num_residual: int = 5) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        self.width, self.num_residual = float(width), int(num_residual)
        c1, c2, c3 = (max(4, round(c * width)) for c in (32, 64, 128))
        self.enc1 = ConvLayer(3, c1, 9)
        self.enc2 = ConvLayer(c1, c2, 3, stride=2)
        self.enc3 = ConvLayer(c2, c3, 3, stride=2)
        self.res = nn.Sequential(*[ResidualBlock(c3) for _ in range(num_residual)])
        self.up1 = UpConv(c3, c2)
        self.up2 = UpConv(c2, c1)
        self.out = ConvLayer(c1, 3, 9, norm=False, relu=False)

    def config(self) -> dict:
        """What is needed to rebuild this architecture (weights aside)."""
        return {"width": self.width, "num_residual": self.num_residual}

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) in [0, 1]
        h1 = self.enc1(x)  # (B, c1, H, W)
        h2 = self.enc2(h1)  # (B, c2, H/2, W/2)
        h = self.res(self.enc3(h2))  # (B, c3, H/4, W/4)
        h = self.up1(h, h2.shape[-2:])
        h = self.up2(h, h1.shape[-2:])
        return torch.sigmoid(self.out(h).float())  # (B, 3, H, W), fp32 in [0, 1]

    def norms(self) -> list[InstanceNorm]:
        return [m for m in self.modules() if isinstance(m, InstanceNorm)]

    @torch.no_grad()
    def record_norm_stats(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Run ``x`` once and return every instance norm's (mean, var), in module order."""
        norms = self.norms()
        for n in norms:
            n.stats, n.record = None, True
        try:
            self(x)
            return [n.stats for n in norms]  # type: ignore[misc]
        finally:
            for n in norms:
                n.stats, n.record = None, False

    def set_norm_stats(self, stats: list[tuple[torch.Tensor, torch.Tensor]] | None) -> None:
        """Freeze every instance norm to ``stats`` (from ``record_norm_stats``), or unfreeze with None."""
        norms = self.norms()
        for i, n in enumerate(norms):
            n.stats = None if stats is None else stats[i]
