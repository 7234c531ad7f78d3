"""A content limit (the own preset's): the style weight is lowered during the run while the photo is going."""
from __future__ import annotations

import math

import pytest
import torch
import yaml
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from conftest import PHOTOS_1K, STYLES
from lit_modules.errors import ConfigError
from lit_modules.fast_style import FastStyle
from train.config import significant
from train.config import build_config
from train.schedule import control_rate
from zoo.cli import app
from zoo.media.images import load_image
from zoo.registry.cards import limit_note

VAL = str(PHOTOS_1K / "val")
LAYERS = {"content_layers": {"relu4_2": 1.0}, "style_layers": {"relu1_1": 1.0, "relu3_1": 1.0}}


@pytest.fixture(scope="module")
def model():
    return FastStyle(style={"name": "tahiti", "sha256": ""}, width=0.25, content_limit=1.0,
                     style_image=load_image(STYLES / "tahiti.jpg", 64), **LAYERS)


@pytest.fixture(scope="module")
def terms(model):
    photos = torch.cat([load_image(p, 48)[..., :32, :32] for p in sorted((PHOTOS_1K / "val").iterdir())[:2]])
    with torch.no_grad():
        return model.terms(photos)  # real VGG terms of a real (untrained) network's output


def run_controller(model, terms, target: float, steps: int) -> float:
    model.hparams.content_limit = target
    model.style_log_scale.zero_()
    model.content_ema.fill_(target)
    for _ in range(steps):
        model.control(dict(terms))
    return model.style_scale()


def test_the_style_weight_is_lowered_while_the_photo_goes_and_never_raised(model, terms):
    r = float(terms["content"])  # content weight 1, one layer: the batch's content distance
    assert run_controller(model, terms, r / 3, 60) < 1 / 1.5  # above the limit: less style
    assert run_controller(model, terms, r / 3, 400) == pytest.approx(1 / 8)  # at most 8x less
    assert run_controller(model, terms, r * 3, 60) == 1.0  # the photo is kept: the weight stays


def test_a_shorter_budget_moves_the_weight_as_far_in_its_fewer_steps(model, terms):
    limit = float(terms["content"]) / 1.2  # a photo going steadily: the weight falls all run
    try:
        model.hparams.control_rate = control_rate(FastStyle.CONTROL_RATE, 13)
        in_13 = run_controller(model, terms, limit, 260)  # ~ the steps of 13 minutes and of 5
        model.hparams.control_rate = control_rate(FastStyle.CONTROL_RATE, 5)
        in_5 = run_controller(model, terms, limit, 100)
        model.hparams.control_rate = None  # the class's rate a step, whatever the budget
        in_5_at_13s_rate = run_controller(model, terms, limit, 100)
    finally:
        model.hparams.control_rate = None
    assert in_13 < 0.5 and in_5 == pytest.approx(in_13, rel=0.1)
    assert in_5_at_13s_rate > 0.6  # a step's rate alone: a short run ends with most of the weight it had
    assert control_rate(FastStyle.CONTROL_RATE, 30) == control_rate(FastStyle.CONTROL_RATE, None) == FastStyle.CONTROL_RATE


def test_the_scaled_style_term_is_what_the_run_minimises(model, terms):
    run_controller(model, terms, float(terms["content"]) / 3, 20)
    scale = model.style_scale()
    out = model.control(dict(terms))
    assert scale < 1
    assert float(out["total"]) == pytest.approx(float(terms["content"] + scale * terms["style"] + terms["tv"]), rel=1e-5)
    assert float(out["style_scale"]) == pytest.approx(scale, rel=1e-5)


@settings(max_examples=40, deadline=None)
@given(ratio=st.floats(1e-3, 1e3), steps=st.integers(1, 400))
def test_the_weight_only_goes_down_and_by_at_most_eight_times(model, terms, ratio, steps):
    scale = run_controller(model, terms, float(terms["content"]) * ratio, steps)
    assert 1 / 8 - 1e-6 <= scale <= 1.0
    if ratio >= 1:  # the distance at or under the limit: the weight stays
        assert scale == 1.0
    elif ratio < 0.99:  # above it: lowered
        assert scale < 1


def test_a_content_limit_must_be_positive():
    with pytest.raises(ConfigError, match="content limit must be > 0"):
        build_config("own", style_image=str(STYLES / "tahiti.jpg"), data=VAL, content_limit=0).check()
    with pytest.raises(ConfigError, match="content_limit needs one style"):
        FastStyle(style=[{"name": "a", "sha256": ""}, {"name": "b", "sha256": ""}], content_limit=4.0)


def test_the_own_recipe_records_where_the_weight_ended_in_the_run_and_the_card(tmp_path):
    r = CliRunner().invoke(app, ["train", "--style-image", str(STYLES / "tahiti.jpg"), "--data", VAL, "--steps", "3",
                                 "--image-size", "32", "--style-size", "64", "--quiet", "--out", str(tmp_path), "--run-id", "t"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "t" / "config.yaml").read_text())
    ckpt = torch.load(tmp_path / "t" / "checkpoints" / "last.ckpt", weights_only=True)
    scale = math.exp(float(ckpt["state_dict"]["style_log_scale"]))  # kept for --resume
    end = significant(cfg["style_weight"] * scale)
    said = f"style weight {end:g} at the end, from {cfg['style_weight']:g}" if scale < 1 else f"style weight {end:g}, kept"
    assert cfg["content_limit"] > 0 and scale <= 1.0 and said in r.output
    assert ckpt["hyper_parameters"]["control_rate"] == control_rate(FastStyle.CONTROL_RATE, cfg["minutes"])
    p = CliRunner().invoke(app, ["publish", str(tmp_path / "t"), "--name", "tahiti-own", "--zoo", str(tmp_path / "zoo"), "--no-sample"])
    assert p.exit_code == 0, p.output
    card = next((tmp_path / "zoo" / "cards").glob("tahiti-own@1.md")).read_text()
    assert f"style {end:g}" in card or f"style {end}" in card
    if scale < 1:
        assert f"style {cfg['style_weight']} at the start" in card and f"ran above {cfg['content_limit']}" in card
    else:
        assert f"kept: the content distance stayed under the limit, {cfg['content_limit']}" in card
    # a weight the user gives is kept as given: no content limit
    r = CliRunner().invoke(app, ["train", "--style-image", str(STYLES / "tahiti.jpg"), "--data", VAL, "--steps", "1",
                                 "--style-weight", "3", "--image-size", "32", "--style-size", "64", "--quiet",
                                 "--out", str(tmp_path), "--run-id", "given"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "given" / "config.yaml").read_text())
    assert cfg["content_limit"] is None and cfg["style_weight"] == 3.0 and "at the end" not in r.output and ", kept" not in r.output


def test_the_card_says_whether_the_limit_lowered_the_weight():
    lowered = limit_note({"style": 6.55, "style_at_start": 11.43, "content_limit": 4.5})
    kept = limit_note({"style": 8.81, "style_at_start": 8.81, "content_limit": 4.5})
    assert "11.43 at the start, lowered" in lowered and "ran above 4.5" in lowered and "kept" not in lowered
    assert "kept" in kept and "lowered" not in kept and "4.5" in kept
    assert limit_note({"style": 3.0}) == ""  # no limit: the weight given is the weight used
