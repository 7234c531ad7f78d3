"""TransformerNet: any size in, same size out, RGB in [0, 1]; width scales the parameter count."""
from __future__ import annotations

import pytest
import torch

from lit_modules.transformer_net import TransformerNet, blend, norm_keys


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


def _randomise_norms(net: TransformerNet) -> TransformerNet:
    for n in net.norms():
        n.weight.data.uniform_(0.5, 1.5)
        n.bias.data.uniform_(-0.5, 0.5)
    return net


def test_instance_norm_matches_torch():
    torch.manual_seed(0)
    net = _randomise_norms(TransformerNet(width=0.25)).eval()
    x = torch.rand(2, 3, 40, 36)
    with torch.no_grad():
        ours = net(x)
        cl = net.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        for n in net.norms():  # the same network with torch's own instance norm
            n.forward = lambda h, n=n: torch.nn.functional.instance_norm(h, weight=n.weight, bias=n.bias, eps=n.eps)
        ref = net(x)
    assert (ours - ref).abs().max() < 1e-5 and (cl - ref).abs().max() < 1e-5


def test_conditional_network_specialises_and_blends():
    torch.manual_seed(0)
    net = _randomise_norms(TransformerNet(width=0.25, num_residual=2, styles=3)).eval()
    assert net.config() == {"width": 0.25, "num_residual": 2, "styles": 3}
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        per_sample = net(x, style=torch.tensor([2, 0, 1]))
        for b, s in enumerate([2, 0, 1]):
            plain = net.specialize(s)
            assert plain.styles == 1 and plain.config() == {"width": 0.25, "num_residual": 2}
            assert (plain(x[b : b + 1]) - per_sample[b : b + 1]).abs().max() < 1e-5
        # a blend of two styles' scale/shift, three ways: conditional weights, specialize, blend()
        mixed = net(x, style=[0.25, 0.75, 0.0])
        assert (net.specialize([0.25, 0.75, 0.0])(x) - mixed).abs().max() < 1e-5
        assert (blend([net.specialize(0), net.specialize(1)], [1, 3])(x) - mixed).abs().max() < 1e-5
        assert (mixed - net(x, style=0)).abs().max() > 1e-3  # the styles really differ
    with pytest.raises(ValueError, match="pass style="):
        net(x)
    with pytest.raises(ValueError, match="out of range"):
        net(x, style=3)
    other = TransformerNet(width=0.25, num_residual=2)
    with pytest.raises(ValueError, match="do not share"):
        blend([net.specialize(0), other], [1, 1])


def test_norm_keys_are_exactly_the_instance_norms():
    net = TransformerNet(width=0.25, num_residual=3)
    keys = norm_keys(net.state_dict())
    assert len(keys) == 2 * len(net.norms()) and all(k.endswith((".weight", ".bias")) for k in keys)
    assert not any(k.startswith("out.") for k in keys)


def test_channel_stats_match_var_mean_in_every_path():
    """The matrix-product statistics (inference, NCHW) agree with var_mean; autograd and
    channels_last take var_mean itself; a large offset does not cancel away the variance."""
    from lit_modules.transformer_net import channel_stats

    big = torch.randn(1, 2, 40, 40) * 0.01 + 100  # offset 10,000 std: fp32 E[x^2] - E[x]^2 is noise
    with torch.no_grad():
        assert torch.allclose(channel_stats(big)[1], big.var(dim=(2, 3), keepdim=True, unbiased=False), rtol=1e-3)
    torch.manual_seed(0)
    x = torch.randn(2, 8, 37, 53) * torch.rand(1, 8, 1, 1) + 4 * torch.randn(1, 8, 1, 1)  # offsets up to ~10 std
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, unbiased=False)
    with torch.no_grad():
        for t in (x, x.to(torch.bfloat16).float(), x.contiguous(memory_format=torch.channels_last)):
            m, v = channel_stats(t)
            rv, rm = torch.var_mean(t.float(), dim=(2, 3), keepdim=True, unbiased=False)
            assert m.shape == v.shape == (2, 8, 1, 1) and m.dtype == torch.float32
            assert torch.allclose(m, rm, rtol=1e-5, atol=1e-5), (m - rm).abs().max()
            assert torch.allclose(v, rv, rtol=1e-2, atol=1e-6), (v / rv).flatten()
        m, v = channel_stats(x.to(torch.bfloat16))
        assert torch.allclose(v, var, rtol=0.05, atol=1e-3)
    xg = x.clone().requires_grad_(True)
    m, v = channel_stats(xg)
    v.sum().backward()  # the training path keeps autograd
    assert xg.grad is not None and torch.allclose(v.detach(), var, rtol=1e-5)
