"""`zoo train --style-image`: the style weight is calibrated from the named styles, not a fixed 100."""
from __future__ import annotations

import yaml
from hypothesis import given, strategies as st
from typer.testing import CliRunner

from conftest import PHOTOS_1K, STYLES
from train.config import significant
from train.config import build_config
from train.run import calibrate
from zoo.cli import app
from zoo.registry.styles import recommended, training_inputs

VAL = str(PHOTOS_1K / "val")


def test_calibration_gives_the_named_styles_their_own_weights_back():
    """Each named painting, treated as unknown, gets a weight near its hand-tuned one (the tuned
    weights vary 5x, from 2 to 10; the calibration must follow them, not one constant)."""
    got = {}
    for name, file in (("starry", "starry_night.jpg"), ("scream", "the_scream.jpg"), ("composition_vii", "composition_vii.jpg")):
        cfg = build_config("quick", style_image=str(STYLES / file), data=VAL, image_size=64, style_size=128)
        _, painting, recs = training_inputs(cfg)
        assert {"content_weight", "tv_weight", "calibrate"} <= set(recs) and len(recs["calibrate"]) == 6
        found = calibrate(cfg, painting, recs["calibrate"])
        tuned = recommended(name, "fast")["style_weight"]
        assert tuned / 2 < found["style_weight"] < tuned * 2, (name, found, tuned)
        got[name] = found["style_weight"]
    assert got["starry"] > 2 * got["scream"]  # tuned 8 and 2


@given(st.floats(1e-12, 1e12))
def test_a_weight_keeps_its_significant_figures_however_small(v):
    """A faint painting's calibrated weight is ~7e-4: decimal places would round it to 0.0007 or 0."""
    assert significant(v) > 0 and abs(significant(v) / v - 1) < 1e-5


def test_train_on_a_painting_records_its_calibrated_weight(tmp_path):
    common = ["train", "--style-image", str(STYLES / "tahiti.jpg"), "--data", VAL, "--image-size", "48", "--style-size", "64",
              "--width", "0.25", "--steps", "1", "--precision", "fp32", "--quiet", "--out", str(tmp_path), "--preset", "quick"]
    r = CliRunner().invoke(app, [*common, "--run-id", "a"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    cal = cfg["style_info"]["calibration"]
    assert cfg["style_weight"] == cal["style_weight"] and 0.5 < cal["style_weight"] < 50
    assert f"style weight {cal['style_weight']:g}" in r.output
    r = CliRunner().invoke(app, [*common, "--run-id", "b", "--style-weight", "3"])  # a weight given is kept
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert cfg["style_weight"] == 3.0 and "calibration" not in cfg["style_info"] and "calibrated" not in r.output


def test_init_nearest_starts_from_the_zoo_model_with_the_nearest_painting(tmp_path):
    r = CliRunner().invoke(app, ["train", "--style-image", str(STYLES / "wave.jpg"), "--data", VAL, "--init", "nearest",
                                 "--image-size", "48", "--style-size", "64", "--steps", "1", "--precision", "fp32",
                                 "--quiet", "--out", str(tmp_path), "--run-id", "n"])
    assert r.exit_code == 0, r.output
    assert "warm start from wave@" in r.output  # the painting itself is the built-in wave's
    cfg = yaml.safe_load((tmp_path / "n" / "config.yaml").read_text())
    assert cfg["init"].startswith("wave@") and cfg["init_record"]["from"].startswith("wave@")
    r = CliRunner().invoke(app, ["train", "--style", "wave,udnie", "--data", VAL, "--init", "nearest"])
    assert r.exit_code == 2 and "--init nearest needs --style-image or one --style" in r.output


def test_init_nearest_for_a_named_style_passes_over_its_own_models(tmp_path):
    # wave's own models are the nearest to wave's painting: learning wave afresh starts elsewhere
    r = CliRunner().invoke(app, ["train", "--style", "wave", "--data", VAL, "--init", "nearest",
                                 "--image-size", "48", "--style-size", "64", "--steps", "1", "--precision", "fp32",
                                 "--quiet", "--out", str(tmp_path), "--run-id", "n"])
    assert r.exit_code == 0, r.output
    assert "warm start from" in r.output and "warm start from wave@" not in r.output
    cfg = yaml.safe_load((tmp_path / "n" / "config.yaml").read_text())
    assert cfg["style"] == "wave" and not cfg["init"].startswith("wave@")
