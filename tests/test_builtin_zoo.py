"""The shipped models: each loads from the read-only built-in layer, verifies, stylises, has a card."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import PHOTOS, ROOT
from zoo.registry import cards
from zoo.inference.loader import load
from zoo.evaluation.metrics import black_fraction
from zoo.media.images import load_image
from zoo.registry.store import BUILTIN_DIR, Zoo, ZooStack

BUILTIN = ["starry", "wave", "scream", "udnie", "composition_vii", "shipwreck"]
REQUIRED = ["name", "version", "license", "model", "painting", "training_data", "loss_network", "layers",
            "loss_weights", "image_size", "steps", "hardware", "wall_time_s", "metrics", "speed"]


def test_builtin_layer_holds_the_six_models():
    assert sorted(Zoo(BUILTIN_DIR, readonly=True).names()) == sorted(BUILTIN)


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_model_verifies_and_stylises(tmp_path, monkeypatch, name):
    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "empty-user-zoo"))  # only the built-in layer
    loaded = load(name, None, "cpu", "fp32")  # sha256 checked before loading
    net, entry, dtype = loaded.net, loaded.source, loaded.dtype
    assert entry.zoo.readonly and entry.name == name
    x = load_image(PHOTOS / "tubingen.jpg", 64)
    with torch.inference_mode():
        y = net(x.to(dtype)).float()
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    assert (y - x).abs().mean() > 0.03  # it changes the photo


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_model_paints_no_black_blobs_at_512px(tmp_path, monkeypatch, name):
    """Under-trained instance-norm networks clip patches of lit photo to black (udnie@1: 5.5 % on
    the portrait): at most 0.1 % of the non-dark pixels, on a portrait and a city at 512 px."""
    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "empty-user-zoo"))  # only the built-in layer
    loaded = load(name, None, "cpu", "fp32")
    net, dtype = loaded.net, loaded.dtype
    for photo in ("amber.jpg", "chicago.jpg"):
        x = load_image(PHOTOS / photo, 512)
        with torch.inference_mode():
            y = net(x.to(dtype)).float().clamp(0, 1)
        assert black_fraction(y, x) <= 0.001, photo


@pytest.mark.parametrize("name", BUILTIN)
def test_model_cards_folder_is_generated_from_the_builtin_layer(name, tmp_path):
    """model_cards/ holds copies, not a second source: each is what the built-in index renders."""
    entry = ZooStack(builtin=False, url=BUILTIN_DIR).resolve(name)
    cards.write_card_copy(entry, tmp_path)
    for f in (f"{name}.md", f"{name}.jpg"):
        assert (ROOT / "model_cards" / f).read_bytes() == (tmp_path / f).read_bytes(), f


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_model_has_card_with_required_fields(name):
    card = ROOT / "model_cards" / f"{name}.md"
    fm = cards.parse(card.read_text())
    missing = [k for k in REQUIRED if fm.get(k) in (None, {}, "")]
    assert not missing, f"{card.name} lacks {missing}"
    assert fm["painting"]["license"].lower().startswith("public domain")
    assert "photos-1k" in str(fm["training_data"]) and fm["training_data"]["licenses"]
    for key in ("style_distance", "content_distance", "ssim"):
        assert isinstance(fm["metrics"].get(key), float)
    assert fm["metrics"]["size"] >= 512 and fm["metrics"]["reference"]["style_distance"] > 0  # judged beside a reference
    assert fm["images_seen"] > 0 and fm["wall_time_s"] > 0
    sample = fm.get("sample")
    assert sample and (card.parent / sample).is_file()
