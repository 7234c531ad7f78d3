"""Colour helpers on RGB [0, 1] tensors (B, 3, H, W): YUV (BT.601) and colour preservation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

# BT.601 analogue YUV; rows map RGB -> Y, U, V.
_RGB2YUV = torch.tensor([[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]])
_YUV2RGB = torch.linalg.inv(_RGB2YUV)


def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB -> (B, 3, H, W) YUV."""
    return torch.einsum("ij,bjhw->bihw", _RGB2YUV.to(x), x)


def yuv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", _YUV2RGB.to(x), x)


def preserve_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance of ``stylized`` with the chroma (U, V) of ``content``; resized to match if needed."""
    if content.shape[-2:] != stylized.shape[-2:]:
        content = F.interpolate(content, size=stylized.shape[-2:], mode="bilinear", align_corners=False)
    y = rgb_to_yuv(stylized.float())[:, :1]
    uv = rgb_to_yuv(content.float())[:, 1:]
    return yuv_to_rgb(torch.cat([y, uv], 1)).clamp(0, 1)


def match_luminance(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Style image turned to grey, its luminance mean/std matched to the content's (Gatys et al. 2017)."""
    ys, yc = rgb_to_yuv(style.float())[:, :1], rgb_to_yuv(content.float())[:, :1]
    ys = (ys - ys.mean()) / (ys.std() + 1e-6) * yc.std() + yc.mean()
    return ys.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()
