"""The README's round trip, from the CLI: train a tiny run -> publish -> list -> apply -> evaluate -> export."""
from __future__ import annotations

import json
from pathlib import Path

from zoo.registry import cards
from zoo.media.images import load_image
from zoo_helpers import cli

ROOT = Path(__file__).resolve().parents[1]
ASSETS = (ROOT / ".." / "shared" / "assets").resolve()


def test_train_publish_list_apply_evaluate_export(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "zoo"))
    monkeypatch.setattr("zoo.registry.store.BUILTIN_DIR", tmp_path / "no-builtin")
    r = cli("train", "--style", "starry", "--data", ASSETS / "photos-1k" / "train", "--image-size", 64, "--batch-size", 2,
            "--steps", 3, "--width", 0.25, "--preset", "quick", "--out", tmp_path / "runs", "--run-id", "tiny", "-q")
    assert r.exit_code == 0, r.output
    run = tmp_path / "runs" / "tiny"
    assert (run / "checkpoints" / "last.ckpt").is_file()

    r = cli("publish", run, "--name", "starry", "--card-dir", tmp_path / "model_cards",
            "--sample", ASSETS / "photos-1k" / "train" / "kodak_kodim23.jpg")
    assert r.exit_code == 0 and "starry@1" in r.output, r.output
    fm = cards.parse((tmp_path / "model_cards" / "starry.md").read_text())
    assert fm["steps"] == 3 and fm["hardware"] and fm["wall_time_s"] is not None and fm["model"]["width"] == 0.25

    r = cli("list")
    assert r.exit_code == 0 and "starry@1" in r.output and "The Starry Night" in r.output

    photo = ASSETS / "photos" / "tubingen.jpg"
    r = cli("apply", "starry", photo, "-o", tmp_path / "out.jpg", "--size", 128)
    assert r.exit_code == 0, r.output
    assert load_image(tmp_path / "out.jpg").shape[-1] == 128

    r = cli("evaluate", "starry", "--data", ASSETS / "photos-1k" / "val", "--limit", 2, "--size", 64, "--card-dir", tmp_path / "model_cards")
    assert r.exit_code == 0 and "style distance" in r.output, r.output
    m = json.loads((tmp_path / "zoo" / "index.json").read_text())["models"]["starry"]["versions"][0]["metrics"]
    assert m["images"] == 2 and 0 < m["style_distance"] and 0 < m["content_distance"] and -1 <= m["ssim"] <= 1
    assert m["speed"]["ms_per_mp"] > 0
    for card in (tmp_path / "zoo" / "cards" / "starry@1.md", tmp_path / "model_cards" / "starry.md"):
        assert cards.parse(card.read_text())["metrics"]["style_distance"] == m["style_distance"]
    assert format(m["style_distance"], ".3g") in cli("list").output

    r = cli("export", "starry", "--format", "onnx", "-o", tmp_path / "starry.onnx")
    assert r.exit_code == 0 and "verified" in r.output, r.output
    r = cli("export", "starry", "--format", "torchscript", "-o", tmp_path / "starry.pt")
    assert r.exit_code == 0 and "verified" in r.output, r.output
    r = cli("export", "starry", "--format", "tflite", "-o", tmp_path / "x")
    assert r.exit_code == 1 and "unknown format" in r.output
