"""Gram, content, style and TV terms against hand-computed values; PerceptualLoss wiring."""
from __future__ import annotations

import torch

from conftest import PHOTOS, STYLES
from lit_modules.losses import ContentLoss, PerceptualLoss, StyleLoss, gram, total_variation
from zoo.media.images import load_image


def test_gram_by_hand():
    f = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [0.0, -1.0]]]])  # (1, 2, 2, 2)
    # rows: [1,2,3,4] and [0,1,0,-1]; F F^T = [[30, -2], [-2, 2]]; / (C*H*W = 8)
    expected = torch.tensor([[[30.0, -2.0], [-2.0, 2.0]]]) / 8
    torch.testing.assert_close(gram(f), expected)


def test_gram_is_fp32_under_bf16_autocast():
    f = torch.rand(2, 8, 5, 5).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram(f)
    assert g.dtype == torch.float32 and g.shape == (2, 8, 8)


def test_total_variation_by_hand():
    x = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]]])  # dy: [1, 0] -> mean 0.5 ; dx: [1, 0] -> mean 0.5
    torch.testing.assert_close(total_variation(x), torch.tensor(1.0))


def test_content_and_style_terms_by_hand():
    a = {"l": torch.full((1, 1, 2, 2), 3.0)}
    t = {"l": torch.full((1, 1, 2, 2), 2.0)}
    # mse = 1, target magnitude^2 = 4 -> 0.25, weight 2 -> 0.5
    torch.testing.assert_close(ContentLoss({"l": 2.0})(a, t), torch.tensor(0.5))
    s = StyleLoss({"l": 1.0})
    s.set_targets({"l": gram(t["l"])})  # gram of 2s = 4*4/4 = 4
    # gram of 3s = 9*4/4 = 9; mse = 25; / 4^2 = 1.5625
    torch.testing.assert_close(s(a), torch.tensor(25 / 16))
    assert "target_l" in s.state_dict()  # targets are buffers


def test_perceptual_loss_terms_and_style_blend():
    content = load_image(PHOTOS / "tubingen.jpg", 64)
    s1, s2 = load_image(STYLES / "starry_night.jpg", 64), load_image(STYLES / "the_scream.jpg", 64)
    loss = PerceptualLoss(content={"relu3_1": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0}, tv=0.5)
    g1, g2 = loss.style_grams([s1]), loss.style_grams([s2])
    blended = loss.style_grams([s1, s2], [3.0, 1.0])
    torch.testing.assert_close(blended["relu2_1"], 0.75 * g1["relu2_1"] + 0.25 * g2["relu2_1"])

    loss.set_style([s1])
    terms = loss(content, content=content)
    assert set(terms) == {"content", "style", "tv", "total"}
    assert float(terms["content"]) == 0.0  # the content itself has zero content loss
    torch.testing.assert_close(terms["tv"], 0.5 * total_variation(content))
    torch.testing.assert_close(terms["total"], terms["content"] + terms["style"] + terms["tv"])
    # the style image itself has (almost) zero style loss
    assert float(loss(s1, content=s1)["style"]) < 1e-6 < float(terms["style"])
    # content targets can also be set once (Gatys) and kept as buffers
    loss.set_content(content)
    assert float(loss(content)["content"]) == 0.0 and "content_relu3_1" in loss.state_dict()
