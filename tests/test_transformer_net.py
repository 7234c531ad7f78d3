"""TransformerNet: any size in, same size out, RGB in [0, 1]; width scales the parameter count."""
from __future__ import annotations

import pytest
import torch

from lit_modules.transformer_net import TransformerNet


@pytest.mark.parametrize("h,w", [(64, 64), (33, 47), (17, 90), (9, 13), (255, 31)])
def test_any_size_round_trips(h, w):
    torch.manual_seed(0)
    net = TransformerNet(width=0.25).eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, h, w))
    assert y.shape == (2, 3, h, w)
    assert y.dtype == torch.float32
    assert 0 <= float(y.min()) and float(y.max()) <= 1


def test_width_scales_params_and_config_rebuilds():
    full, half = TransformerNet(width=1.0), TransformerNet(width=0.5)
    n_full = sum(p.numel() for p in full.parameters())
    n_half = sum(p.numel() for p in half.parameters())
    assert 3.5 < n_full / n_half < 4.5
    again = TransformerNet(**half.config())
    again.load_state_dict(half.state_dict())  # same architecture from config alone
    assert half.config() == {"width": 0.5, "num_residual": 5}


def test_gradients_flow_to_every_parameter():
    net = TransformerNet(width=0.25, num_residual=2)
    net(torch.rand(1, 3, 24, 24)).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_no_transposed_convs():
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in TransformerNet().modules())
