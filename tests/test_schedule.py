"""Staged runs and time budgets (train.schedule): `zoo train --minutes`, a preset's `last_stage`."""
from __future__ import annotations

import math

import pytest
import torch
import yaml
from hypothesis import given, settings, strategies as st
from PIL import Image
from typer.testing import CliRunner

from conftest import PHOTOS_1K, STYLES
from lit_modules.errors import ConfigError
from train.config import build_config
from train.schedule import SMALLEST_READ, Stage, describe, lr_at, painting_read_size, resize_painting, scaled_to_painting, stage_at, stages
from zoo.cli import app
from zoo.media.images import load_image

VAL = str(PHOTOS_1K / "val")
TWO = {"at": 0.5, "image_size": 48, "style_size": 96, "batch_size": 1, "lr": 1e-4}


def plan_of(**kw):
    return stages(build_config("quick", style="starry", **kw))


@given(at=st.floats(0.05, 0.95), lr1=st.floats(1e-5, 1e-1), lr2=st.floats(1e-5, 1e-1),
       a=st.floats(0, 1), b=st.floats(0, 1))
@settings(max_examples=200, deadline=None)
def test_each_stage_decays_its_own_lr_from_its_start_to_one_percent(at, lr1, lr2, a, b):
    plan = plan_of(lr=lr1, last_stage={"at": at, "lr": lr2})
    lo, hi = sorted((a, b))
    if stage_at(plan, lo) == stage_at(plan, hi):  # within a stage the lr never rises
        assert lr_at(plan, hi) <= lr_at(plan, lo) * (1 + 1e-9)
    assert lr_at(plan, 0) == pytest.approx(lr1) and lr_at(plan, at) == pytest.approx(lr2)
    assert lr_at(plan, 1) == pytest.approx(0.01 * lr2)
    assert lr_at(plan, at - 1e-9) == pytest.approx(0.01 * lr1, rel=1e-3)


def test_a_bad_last_stage_is_one_line_naming_it():
    for bad, word in (({"image_size": 64}, "'at'"), ({"at": 1.0}, "between 0 and 1"), ({"at": 0.5, "lr": 0}, "lr"),
                      ({"at": 0.5, "image_size": 8}, "image_size"), ({"at": 0.5, "crop": 3}, "takes only")):
        with pytest.raises(ConfigError, match=word):
            build_config("quick", style="starry", last_stage=bad).check()
    with pytest.raises(ConfigError, match="minutes"):
        build_config("quick", style="starry", minutes=-1).check()


def test_resize_painting_shrinks_only():
    p = torch.rand(1, 3, 90, 60)
    assert resize_painting(p, 45).shape[-2:] == (45, 30) and resize_painting(p, 500) is p
    assert [x.shape[-2:] for x in resize_painting([p, p], 30)] == [(30, 20)] * 2


def test_a_second_stage_trains_on_its_own_crop_batch_and_painting(tmp_path):
    """Six steps, the last three in the second stage: its batch (1 of the loader's 2), its crop
    and the Gram targets of the painting at its size end up in the checkpoint."""
    from lit_modules.losses import PerceptualLoss
    from train.run import run_train
    from zoo.media.images import load_image
    from zoo.registry.styles import training_inputs

    over = dict(style="starry", data=VAL, image_size=32, style_size=64, batch_size=2, width=0.25, max_steps=6,
                last_stage=TWO, precision="fp32", out=str(tmp_path), run_id="s")
    summary = run_train(over, training_inputs, preset="quick", progress=False)
    assert summary["steps"] == 6 and summary["images_seen"] == 3 * 2 + 3 * 1
    ckpt = torch.load(tmp_path / "s" / "checkpoints" / "last.ckpt", weights_only=True)
    hp = ckpt["hyper_parameters"]
    assert hp["image_size"] == 48 and hp["style_size"] == 96 and "48 px crops" in hp["schedule"]
    loss = PerceptualLoss(style=hp["style_layers"], backbone=hp["backbone"])
    loss.set_style([load_image(STYLES / "starry_night.jpg", 96)])
    small = PerceptualLoss(style=hp["style_layers"], backbone=hp["backbone"])
    small.set_style([load_image(STYLES / "starry_night.jpg", 64)])
    for layer in hp["style_layers"]:  # the stage-2 painting's targets, not the first stage's
        saved = ckpt["state_dict"][f"loss.style_loss.target_{layer}"].float().reshape(loss.style_loss.target(layer).shape)
        torch.testing.assert_close(saved, loss.style_loss.target(layer), rtol=1e-3, atol=1e-6)
        assert not torch.allclose(saved, small.style_loss.target(layer), rtol=1e-2, atol=1e-5)
    assert Image.open(summary["preview"]).size[0] > 48


def test_minutes_stops_within_the_budget_with_a_checkpoint_and_says_how_to_publish(tmp_path):
    r = CliRunner().invoke(app, ["train", "--style-image", str(STYLES / "tahiti.jpg"), "--data", VAL, "--minutes", "0.15",
                                 "--preset", "quick", "--image-size", "32", "--style-size", "64", "--width", "0.25", "--steps", "100000",
                                 "--precision", "fp32", "--quiet", "--out", str(tmp_path), "--run-id", "m"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "m"
    summary = yaml.safe_load((run / "summary.json").read_text())
    assert 1 < summary["steps"] < 100000 and summary["wall_seconds"] <= 9 + 3  # the budget, plus one step's slack
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert f"zoo publish {run}" in r.output and f"preview: {run / 'preview.jpg'}" in r.output
    assert Image.open(run / "preview.jpg").format == "JPEG"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["minutes"] == 0.15 and "0.15 min" in describe(stages(build_config("quick", style="x", minutes=0.15)), 0.15)


def test_a_painting_of_your_own_gets_the_own_recipe_on_a_cpu(tmp_path):
    """No flag but --style-image (and a tiny crop to keep this short): warm start from the nearest
    zoo model, a time budget and a second, larger stage, all recorded in the run's config."""
    r = CliRunner().invoke(app, ["train", "--style-image", str(STYLES / "tahiti.jpg"), "--data", VAL, "--steps", "1",
                                 "--image-size", "32", "--style-size", "64", "--quiet", "--out", str(tmp_path), "--run-id", "o"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "o" / "config.yaml").read_text())
    assert cfg["preset"] == "own" and cfg["minutes"] > 0 and cfg["last_stage"]["image_size"] > 32
    assert "warm start from" in r.output and "@" in cfg["init"] and "calibrated" in r.output


def test_one_named_style_gets_the_own_recipe_and_several_get_quick(tmp_path):
    """One --style on a CPU learns that painting like a painting of your own (warm start from another
    style's zoo model, never its own); several styles at once keep the quick recipe from scratch."""
    one = CliRunner().invoke(app, ["train", "--style", "starry", "--data", VAL, "--steps", "1", "--image-size", "32",
                                   "--style-size", "64", "--quiet", "--out", str(tmp_path), "--run-id", "one"])
    assert one.exit_code == 0, one.output
    cfg = yaml.safe_load((tmp_path / "one" / "config.yaml").read_text())
    assert cfg["preset"] == "own" and "@" in cfg["init"] and not cfg["init"].startswith("starry@")
    assert cfg["content_limit"] is None  # a named style keeps its hand-tuned weight
    two = CliRunner().invoke(app, ["train", "--style", "starry,wave", "--data", VAL, "--steps", "1", "--image-size", "32",
                                   "--style-size", "64", "--width", "0.25", "--quiet", "--out", str(tmp_path), "--run-id", "two"])
    assert two.exit_code == 0, two.output
    cfg = yaml.safe_load((tmp_path / "two" / "config.yaml").read_text())
    assert cfg["preset"] == "quick" and cfg["init"] is None


def test_auto_picks_the_own_recipe_for_one_painting_and_the_from_scratch_one_for_several():
    from train.run import auto_preset

    assert [auto_preset(None, "my.jpg", gpu) for gpu in (False, True)] == ["own", "own-gpu"]
    assert [auto_preset("starry", None, gpu) for gpu in (False, True)] == ["own", "own-gpu"]
    assert [auto_preset("starry,wave", None, gpu) for gpu in (False, True)] == ["quick", "default"]


def test_the_gpu_recipe_is_the_own_one_on_256_px_crops_in_one_stage():
    """own-gpu extends own: the start, the calibration and the limit are written once, in own.yaml."""
    own, gpu = build_config("own", style_image="x.jpg"), build_config("own-gpu", style_image="x.jpg")
    for k in ("init", "calibration_gain", "content_limit", "width", "content_layers", "style_layers", "channels_last"):
        assert getattr(gpu, k) == getattr(own, k), k
    assert gpu.last_stage is None and gpu.image_size == 256 and gpu.style_size == 512
    # a budget in photos (the same model on any GPU), with a time limit for a slow one
    assert gpu.max_steps * gpu.batch_size >= 5 * 1616 and 0 < gpu.minutes <= 15  # 5x the photos of a 13-minute CPU run
    assert [s.image_size for s in stages(gpu)] == [256]


def test_the_gpu_recipe_runs_on_a_cpu(tmp_path):
    """What `zoo train --style-image P` does on a GPU (--preset own-gpu), on this CPU with a tiny crop:
    the nearest model's warm start, the calibrated weight, one stage in a time budget."""
    r = CliRunner().invoke(app, ["train", "--style-image", str(STYLES / "tahiti.jpg"), "--data", VAL, "--preset", "own-gpu",
                                 "--steps", "2", "--image-size", "32", "--style-size", "64", "--batch-size", "2",
                                 "--precision", "fp32", "--quiet", "--out", str(tmp_path), "--run-id", "g"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "g" / "config.yaml").read_text())
    assert cfg["preset"] == "own-gpu" and cfg["minutes"] > 0 and cfg["last_stage"] is None
    assert "@" in cfg["init"] and "calibrated" in r.output and "zoo publish" in r.output
    assert "--preset own is the CPU recipe" in r.output  # said on a CPU, where this preset is a few dozen steps
    summary = yaml.safe_load((tmp_path / "g" / "summary.json").read_text())
    assert summary["steps"] == 2 and (tmp_path / "g" / "checkpoints" / "last.ckpt").is_file()


def test_a_shape_flag_against_the_own_warm_start_names_the_way_out(tmp_path):
    """`--style starry --width 0.25` (a from-scratch habit) meets the own recipe's warm start: one
    line that says to drop the flag or to train from scratch with --preset quick; no run is left."""
    r = CliRunner().invoke(app, ["train", "--style", "starry", "--width", "0.25", "--data", VAL, "--quiet",
                                 "--out", str(tmp_path), "--run-id", "w"])
    assert r.exit_code == 1 and "drop --width" in r.output and "--preset quick" in r.output
    assert not (tmp_path / "w").exists()


def test_a_painting_shrunk_for_a_stage_is_as_sharp_as_the_painting_read_at_that_size():
    """The first stage's painting (read at the run's largest size, then shrunk) against the same file
    read at the stage's size: same pixels within rounding, same edge energy. A bilinear shrink lost a
    quarter of it, and the calibration read the blur as a painting further from photos."""
    path = STYLES / "wheat_field.jpg"
    shrunk, direct = resize_painting(load_image(path, 512), 384), load_image(path, 384)
    edges = lambda t: (t[..., 1:, :] - t[..., :-1, :]).abs().mean().item()  # noqa: E731
    assert shrunk.shape == direct.shape and shrunk.dtype == torch.float32
    assert (shrunk - direct).abs().mean() < 0.005
    assert abs(edges(shrunk) / edges(direct) - 1) < 0.02


def test_a_painting_too_thin_for_the_loss_network_is_one_line_before_a_run_starts(tmp_path):
    """A 3000x2 painting shrunk for the first stage has no rows left for VGG's pools: one line that
    names its size and what to do, exit 1, no run directory (not a traceback from a pooling layer)."""
    thin = tmp_path / "thin.png"
    Image.open(STYLES / "tahiti.jpg").convert("RGB").resize((3000, 2)).save(thin)
    r = CliRunner().invoke(app, ["train", "--style-image", str(thin), "--data", VAL, "--quiet",
                                 "--out", str(tmp_path / "runs"), "--run-id", "t"])
    assert r.exit_code == 1 and "3000x2 px" in r.output and "less elongated" in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "runs" / "t").exists()


@pytest.mark.parametrize("kind", ["grey", "transparent"])
def test_a_painting_of_one_flat_colour_is_one_line_before_a_run_starts(tmp_path, kind):
    """A blank export, or a PNG with nothing opaque (composited over white), has no texture: the
    calibration would give it a style weight of ~0 and the run would learn nothing. One line, exit 1,
    no run directory."""
    blank = tmp_path / "blank.png"
    if kind == "grey":
        Image.new("RGB", (400, 300), (128, 128, 128)).save(blank)
    else:  # a real painting's pixels, every one of them fully transparent
        img = Image.open(STYLES / "tahiti.jpg").convert("RGBA")
        img.putalpha(0)
        img.save(blank)
    r = CliRunner().invoke(app, ["train", "--style-image", str(blank), "--data", VAL, "--quiet",
                                 "--out", str(tmp_path / "runs"), "--run-id", "t"])
    assert r.exit_code == 1 and "blank.png is one flat colour" in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "runs" / "t").exists()


def test_a_painting_smaller_than_the_run_reads_it_is_read_at_its_own_size_with_the_stages_scaled(tmp_path):
    """A 384 px copy under the own preset (384 then 512 px): read at 384, the first stage's painting
    at 288 (the stages' ratio kept), said in one line, in the run's config; not enlarged (enlarged,
    its model was 1.5x further from the painting). The full-size painting keeps 384/512, no line."""
    small = tmp_path / "small.png"
    Image.open(STYLES / "tahiti.jpg").convert("RGB").resize((384, 220)).save(small)
    for painting, run, sizes in ((small, "s", (288, 384)), (STYLES / "tahiti.jpg", "f", (384, 512))):
        r = CliRunner().invoke(app, ["train", "--style-image", str(painting), "--data", VAL, "--steps", "1",
                                     "--image-size", "32", "--quiet", "--out", str(tmp_path / "runs"), "--run-id", run])
        assert r.exit_code == 0, r.output
        said = run == "s"
        assert ("small.png is 384x220 px, under the 512 px the run reads paintings at: it is read at its own size, "
                "every stage's painting scaled by 0.75" in r.output) == said, r.output
        assert "enlarged)" not in r.output
        cfg = yaml.safe_load((tmp_path / "runs" / run / "config.yaml").read_text())
        assert (cfg["style_size"], cfg["last_stage"]["style_size"]) == sizes


def test_a_thumbnail_is_enlarged_to_half_the_size_and_named(tmp_path):
    """A 200 px copy is read at 256 px (half of 512: at its own size a thumbnail's model landed 2.2-2.5x
    further from woman_with_hat than enlarged): the run goes on and says the brushwork will be soft
    and what size of copy paints sharper."""
    small = tmp_path / "small.png"
    Image.open(STYLES / "tahiti.jpg").convert("RGB").resize((200, 150)).save(small)
    r = CliRunner().invoke(app, ["train", "--style-image", str(small), "--data", VAL, "--steps", "1",
                                 "--image-size", "32", "--quiet", "--out", str(tmp_path / "runs"), "--run-id", "t"])
    assert r.exit_code == 0, r.output
    assert "small.png is 200x150 px and the run reads it at 256 px (1.3x enlarged)" in r.output, r.output
    assert "256 px or more on its long side" in r.output
    cfg = yaml.safe_load((tmp_path / "runs" / "t" / "config.yaml").read_text())
    assert (cfg["style_size"], cfg["last_stage"]["style_size"]) == (192, 256)


@given(st.integers(1, 5000), st.integers(16, 2048), st.integers(16, 2048))
def test_a_painting_is_enlarged_only_below_the_smallest_read_and_the_stages_keep_their_ratio(long_side, first, last):
    cfg = build_config("own", style_image="p.png", style_size=first, last_stage={"at": 0.42, "style_size": last})
    wanted = cfg.painting_size()
    read = painting_read_size(long_side, wanted)
    assert read == min(wanted, max(long_side, math.ceil(wanted * SMALLEST_READ)))
    scaled = scaled_to_painting(cfg, read)
    assert abs(scaled.painting_size() - read) <= 0.5 + 1e-9
    assert abs(scaled.style_size - first * read / wanted) <= 0.5 and abs(scaled.last_stage["style_size"] - last * read / wanted) <= 0.5
    assert scaled_to_painting(scaled, scaled.painting_size()) == scaled  # a resumed run is read as it was


def test_steps_lead_the_schedule_when_they_run_out_before_the_time_budget(tmp_path):
    """--steps 4 --minutes 10: the run ends at step 4 and its lr has decayed over the 4 steps (by the
    clock it would still be at its start); the card's schedule names both budgets."""
    r = CliRunner().invoke(app, ["train", "--style-image", str(STYLES / "tahiti.jpg"), "--data", VAL, "--preset", "quick",
                                 "--minutes", "10", "--steps", "4", "--lr", "0.001", "--image-size", "32", "--style-size", "64",
                                 "--width", "0.25", "--precision", "fp32", "--quiet", "--out", str(tmp_path), "--run-id", "h"])
    assert r.exit_code == 0, r.output
    summary = yaml.safe_load((tmp_path / "h" / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["wall_seconds"] < 120
    ckpt = torch.load(tmp_path / "h" / "checkpoints" / "last.ckpt", weights_only=False)
    lr = ckpt["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr == pytest.approx(lr_at([Stage(0.0, 32, 64, 4, 1e-3)], 3 / 4), rel=1e-6) and lr < 2e-4
    assert "4 steps or 10 min, whichever ends first" in ckpt["hyper_parameters"]["schedule"]
