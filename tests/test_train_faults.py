"""`zoo train` after a crash: no checkpoint yet, a damaged config.yaml, Lightning's last-v1.ckpt.

Real Trainer, real VGG, tiny sizes; the kill -9 at random moments is bench/train_faults.py."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import PHOTOS_1K
from lit_modules.errors import ConfigError
from train.config import TrainConfig, load_run_config
from train.runs import latest_checkpoint
from zoo.cli import app

TINY = ["--style", "starry", "--data", str(PHOTOS_1K / "val"), "--image-size", "48", "--style-size", "64",
        "--width", "0.25", "--batch-size", "2", "--precision", "fp32", "--quiet", "--preset", "quick"]


def zoo(*args: str):
    return CliRunner().invoke(app, ["train", *args])


def step_of(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    """A finished 3-step run (the other tests copy it and damage the copy)."""
    out = tmp_path_factory.mktemp("runs")
    r = zoo(*TINY, "--steps", "3", "--checkpoint-every", "2", "--out", str(out), "--run-id", "r")
    assert r.exit_code == 0, r.output
    return out / "r"


def copy_run(done: Path, tmp_path: Path) -> Path:
    run = tmp_path / "r"
    shutil.copytree(done, run)
    return run


def test_checkpoint_every_is_a_flag(done):
    assert sorted(p.name for p in (done / "checkpoints").glob("*.ckpt")) == ["last.ckpt", "step0000002.ckpt"]
    assert yaml.safe_load((done / "config.yaml").read_text())["checkpoint_every"] == 2


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(done, tmp_path):
    run = copy_run(done, tmp_path)
    shutil.rmtree(run / "checkpoints")
    (run / "summary.json").unlink()
    r = zoo("--resume", str(run), "--steps", "4", "--quiet")
    assert r.exit_code == 0, r.output
    assert "no checkpoint yet" in r.output and "step 0" in r.output
    assert step_of(run / "checkpoints" / "last.ckpt") == 4


def test_a_run_killed_before_its_first_checkpoint_restarts_under_its_own_id(done, tmp_path):
    run = copy_run(done, tmp_path)
    shutil.rmtree(run / "checkpoints")
    r = zoo(*TINY, "--steps", "2", "--out", str(tmp_path), "--run-id", "r")
    assert r.exit_code == 0, r.output
    assert step_of(run / "checkpoints" / "last.ckpt") == 2
    # ... while a run that has a checkpoint is never overwritten
    r = zoo(*TINY, "--steps", "2", "--out", str(tmp_path), "--run-id", "r")
    assert r.exit_code == 1 and "already exists; use --resume" in r.output


def test_resume_reads_lightnings_last_v1(done, tmp_path):
    run = copy_run(done, tmp_path)
    ckpts = run / "checkpoints"
    (ckpts / "last.ckpt").rename(ckpts / "last-v1.ckpt")  # step 3; step0000002.ckpt is older
    assert latest_checkpoint(run) == ckpts / "last-v1.ckpt"
    r = zoo("--resume", str(run), "--steps", "4", "--quiet")
    assert r.exit_code == 0, r.output
    assert "no checkpoint yet" not in r.output
    assert step_of(ckpts / "last.ckpt") == 4
    assert sorted(p.name for p in ckpts.glob("last*.ckpt")) == ["last-v1.ckpt", "last.ckpt"]  # no last-v2


@pytest.mark.parametrize("text, words", [
    ("style: starry\nimage_size: [1, 2\n", "not valid YAML"),
    ("- a\n- b\n", "not a mapping"),
    ("style: starry\nimage_size: abc\n", "image_size must be int"),
    ("style: starry\nlr: .nan\n", "lr must be float"),
    ("style: starry\nstyle_layers: {relu1_1: x}\n", "style_layers must be dict"),
    ("style: starry\nbatch_size: 0\n", "batch size must be >= 1"),
    ("image_size: 64\n", "exactly one of --style"),
    ("\x00\x01\x02", "not valid YAML"),
])
def test_resume_with_a_damaged_config_is_one_line(done, tmp_path, text, words):
    run = copy_run(done, tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != "config.yaml"}
    (run / "config.yaml").write_text(text)
    r = zoo("--resume", str(run), "--quiet")
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], r.output
    assert {p: p.read_bytes() for p in before} == before  # nothing of the run touched


# Any value of any type for any setting: load_run_config gives a TrainConfig or one ConfigError line.
values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                   st.text(max_size=12), st.lists(st.floats(), max_size=3), st.dictionaries(st.text(max_size=8), st.integers(), max_size=2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.dictionaries(st.sampled_from(sorted(TrainConfig.fields())), values, min_size=1, max_size=4))
def test_any_damaged_setting_loads_or_is_one_line(tmp_path_factory, changes):
    run = tmp_path_factory.mktemp("cfg")
    data = {**TrainConfig(style="starry").to_dict(), **changes}
    (run / "config.yaml").write_text(yaml.safe_dump(data))
    try:
        cfg = load_run_config(run)
    except ConfigError as e:
        assert "\n" not in str(e) and str(e).startswith(str(run / "config.yaml"))
        return
    cfg.check()  # what loaded is a config every later step can use
    assert isinstance(cfg.image_size, int) and isinstance(cfg.lr, (int, float))


def test_a_loss_that_turns_inf_stops_the_run_in_one_line_before_the_weights_do(tmp_path):
    """A style weight of 1e38 overflows the first step's loss: exit 1, one line saying the run
    diverged and what to lower, and no checkpoint written from NaN weights."""
    r = zoo(*TINY, "--steps", "3", "--checkpoint-every", "1", "--style-weight", "1e38", "--out", str(tmp_path), "--run-id", "d")
    lines = [ln for ln in r.output.splitlines() if ln.startswith("error:")]
    assert r.exit_code == 1 and len(lines) == 1 and "diverged at step 0" in lines[0] and "--style-weight" in lines[0], r.output
    assert "Traceback" not in r.output and latest_checkpoint(tmp_path / "d") is None


def test_a_warm_start_from_a_diverged_checkpoint_is_one_line(done, tmp_path):
    """--init from a checkpoint whose weights hold NaN: refused before any step, naming the tensor."""
    ckpt = torch.load(done / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    key = next(k for k in ckpt["state_dict"] if k.startswith("net.") and k.endswith("weight"))
    w = ckpt["state_dict"][key].contiguous().clone()  # (a channels_last tensor has no flat view)
    w.view(-1)[0] = float("nan")
    ckpt["state_dict"][key] = w
    bad = tmp_path / "nan.ckpt"
    torch.save(ckpt, bad)
    r = zoo(*TINY, "--steps", "1", "--init", str(bad), "--out", str(tmp_path / "runs"), "--run-id", "w")
    assert r.exit_code == 1 and "NaN or infinite" in r.output and key[4:] in r.output, r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("source,words", [
    ("missing", "missing: no such run folder or checkpoint file"),
    ("empty", "no checkpoints/last.ckpt"),
    ("https://example.com/runs/starry", "https://example.com/runs/starry: a URL; give a local run folder"),
])
def test_publish_names_what_is_wrong_with_its_source(tmp_path, source, words):
    (tmp_path / "empty").mkdir()
    path = source if "://" in source else tmp_path / source
    r = CliRunner().invoke(app, ["publish", str(path), "--name", "x", "--zoo", str(tmp_path / "zoo"), "--no-sample"])
    assert r.exit_code == 1 and words in r.output and r.output.count("\n") == 1, r.output
    assert not (tmp_path / "zoo").exists()


@pytest.mark.parametrize("styles, words", [("nope", "unknown style 'nope'"), ("wave,stary", "did you mean starry?")])
def test_a_mistyped_style_is_named_before_the_data_is_looked_for(tmp_path, styles, words):
    """Without --data the preset's Hub dataset is looked for (and is not in this offline cache): the
    style name the user typed is the error to see, in one line, and no run directory is made."""
    r = zoo("--style", styles, "--quiet", "--out", str(tmp_path / "runs"))
    assert r.exit_code == 1 and words in r.output and "dataset" not in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "runs").exists()
