"""Helpers for the zoo tests: a checkpoint in the FastStyle run-dir format, and a CLI runner."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from typer.testing import CliRunner

from lit_modules.transformer_net import TransformerNet

STYLE = {"name": "starry", "title": "The Starry Night", "artist": "Vincent van Gogh", "file": "starry_night.jpg",
         "sha256": "0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098"}


def make_run(run: Path, width: float = 0.25, seed: int = 0) -> Path:
    """A run folder shaped like `zoo train`'s: checkpoints/last.ckpt (Lightning layout) + summary.json."""
    torch.manual_seed(seed)
    net = TransformerNet(width)
    (run / "checkpoints").mkdir(parents=True, exist_ok=True)
    hp = dict(width=width, num_residual=5, backbone="caffe", pooling="max", content_layers={"relu2_2": 1.0},
              style_layers={"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 1.0}, content_weight=1.0, style_weight=100.0,
              tv_weight=1.0, image_size=64, style_size=64, style=dict(STYLE), data="../shared/assets/photos-1k/train",
              lr=1e-3, batch_size=2, max_steps=3, seed=seed, precision="32-true")
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "hyper_parameters": hp, "global_step": 3},
               run / "checkpoints" / "last.ckpt")
    (run / "summary.json").write_text(json.dumps({"steps": 3, "wall_seconds": 1.5, "hardware": "test CPU", "precision": "32-true"}))
    return run


def cli(*args: str, env: dict | None = None):
    from zoo.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def err_lines(result) -> list[str]:
    text = getattr(result, "stderr", None) or result.output
    return [line for line in text.splitlines() if line.strip()]
