"""`zoo train --init`: a run starts from a trained network (a zoo model and its family, or a run
checkpoint), each style taking the norm parameters its source learned for it."""
from __future__ import annotations

import json

import pytest
import torch

from conftest import PHOTOS_1K
from lit_modules.errors import ConfigError
from train.warmstart import init_state as _init_state
from zoo.inference.loader import load
from zoo.registry.family import warm_source
from zoo_helpers import cli, err_lines


def init_state(init: str, styles: list[str]):
    """--init as zoo train resolves it: a checkpoint, else a zoo model."""
    return _init_state(init, styles, warm_source)

TRAIN_ARGS = ("--data", PHOTOS_1K / "val", "--image-size", 48, "--style-size", 64, "--batch-size", 2, "--steps", 2, "-q")


def test_a_family_fills_each_style_by_name():
    state, arch, record = init_state("starry@2", ["wave", "starry", "mystery"])
    wave, starry = (load(f"{n}@2", precision="fp32").net.state_dict() for n in ("wave", "starry"))
    assert arch == {"width": 0.5, "num_residual": 5}
    assert record["from"] == "starry@2" and record["images_seen"] == 52000
    assert init_state("wave@3", ["wave"])[2]["images_seen"] == 40000 + 52000  # wave@3 itself started from starry@2
    assert record["styles"] == {"wave": "wave", "starry": "starry", "mystery": "starry"}  # unknown: the named model's
    assert state["enc1.2.weight"].shape == (3,) + wave["enc1.2.weight"].shape
    assert torch.equal(state["enc1.2.weight"][0], wave["enc1.2.weight"])
    assert torch.equal(state["res.0.body.1.2.bias"][1], starry["res.0.body.1.2.bias"])
    assert torch.equal(state["res.0.body.1.2.bias"][2], starry["res.0.body.1.2.bias"])
    assert torch.equal(state["enc1.1.weight"], starry["enc1.1.weight"])  # shared convolutions
    assert not torch.equal(wave["enc1.2.weight"], starry["enc1.2.weight"])


def test_train_from_a_zoo_model_starts_where_it_ended(tmp_path):
    """Two steps from wave@2 at lr 1e-9 (the built-ins' second-stage preset): the network is still wave@2."""
    r = cli("train", "--style", "wave", "--init", "wave@2", "--lr", 1e-9, "--preset", "finetune", *TRAIN_ARGS,
            "--photo-size", 96, "--out", tmp_path, "--run-id", "w")
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["init"]["from"] == "wave@2" and summary["init"]["wall_seconds"] > 0
    ckpt = torch.load(tmp_path / "w" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["init"] == "wave@2" and ckpt["hyper_parameters"]["photo_size"] == 96
    assert "relu5_1" in ckpt["hyper_parameters"]["style_layers"]  # the preset's layers (quick stops at relu4_1)
    assert "preset: finetune" in (tmp_path / "w" / "config.yaml").read_text()
    wave = load("wave@2", precision="fp32").net.state_dict()
    got = {k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    assert max(float((got[k] - wave[k]).abs().max()) for k in wave) < 1e-3  # fp16-stored weights, 2 tiny steps
    # its card states what the warm start had cost
    r = cli("publish", tmp_path / "w", "--name", "wave_ft", "--zoo", tmp_path / "zoo", "--no-sample")
    assert r.exit_code == 0, r.output
    card = next((tmp_path / "zoo").rglob("wave_ft@1.md")).read_text()
    assert "Warm start: from wave@2" in card and "52,000" in card


def test_train_from_a_run_checkpoint(tmp_path):
    r = cli("train", "--style", "starry,udnie", "--init", "udnie@2", "--preset", "quick", *TRAIN_ARGS,
            "--out", tmp_path, "--run-id", "a")
    assert r.exit_code == 0, r.output
    state, arch, record = init_state(str(tmp_path / "a"), ["udnie"])
    assert record["styles"] == {"udnie": "udnie"} and arch["width"] == 0.5
    assert record["steps"] == 2 + 13000  # its own 2 steps and those of its warm start, udnie@2
    (tmp_path / "a" / "summary.json").unlink()  # a run stopped early: the warm start's cost is read from config.yaml
    assert init_state(str(tmp_path / "a" / "checkpoints" / "last.ckpt"), ["udnie"])[2]["steps"] == 2 + 13000
    assert state["enc1.2.weight"].shape == (16,)


@pytest.mark.parametrize("args, words", [
    (("--init", "nosuch@1"), "no model 'nosuch'"),
    (("--init", "starry@2", "--width", 1), "drop --width"),
    (("--init", "/no/such/run.ckpt"), "no such checkpoint"),
])
def test_bad_init_is_one_line(tmp_path, args, words):
    r = cli("train", "--style", "starry", *args, "--preset", "quick", *TRAIN_ARGS, "--out", tmp_path)
    assert r.exit_code != 0 and words in err_lines(r)[-1], r.output
    assert not any(tmp_path.iterdir())  # nothing written


def test_init_state_refuses_a_missing_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="no such checkpoint"):
        init_state(str(tmp_path / "x.ckpt"), ["starry"])
