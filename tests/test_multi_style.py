"""One network for several styles (conditional instance norm): per-sample style loss, `zoo train
--style a,b`, `zoo publish --all-styles`, and blending at apply/export time (`zoo apply a:0.7+b:0.3`)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import PHOTOS, PHOTOS_1K, STYLES
from lit_modules.losses import PerceptualLoss
from zoo.media.images import load_image
from zoo_helpers import cli, err_lines, make_run


def test_style_loss_compares_each_sample_with_its_own_style():
    loss = PerceptualLoss(content={"relu2_2": 1.0}, style={"relu1_1": 1.0, "relu2_1": 1.0})
    a = load_image(STYLES / "starry_night.jpg", 64)[..., :32, :32]
    b = load_image(STYLES / "wave.jpg", 64)[..., :32, :32]
    loss.set_styles([a, b], factor=[1.0, 3.0])
    x = torch.cat([a, b])  # sample 0 is painting a, sample 1 painting b
    with torch.no_grad():
        right = loss(x, content=x, style_index=torch.tensor([0, 1]))["style"]
        wrong = loss(x, content=x, style_index=torch.tensor([1, 0]))["style"]
        a_as_b = loss(a, content=a, style_index=torch.tensor([1]))["style"]  # style b's factor: 3
        loss.set_styles([a, b], factor=[1.0, 1.0])
        a_as_b_plain = loss(a, content=a, style_index=torch.tensor([1]))["style"]
    assert float(right) < 1e-6 < float(wrong)
    assert float(a_as_b) == pytest.approx(3 * float(a_as_b_plain), rel=1e-5)


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> tuple[Path, Path]:
    """A real 2-style run (3 steps) published with --all-styles into a fresh zoo. A high learning rate
    so the two styles' norm parameters move apart within 3 steps (at 2e-3 they differ by ~0.1 %)."""
    tmp = tmp_path_factory.mktemp("family")
    r = cli("train", "--style", "starry,wave", "--data", PHOTOS_1K / "train", "--image-size", 64, "--style-size", 96,
            "--batch-size", 2, "--steps", 3, "--width", 0.25, "--preset", "quick", "--lr", 0.05, "--style-weight", "3,4", "--out", tmp / "runs", "--run-id", "two", "-q")
    assert r.exit_code == 0, r.output
    zoo = tmp / "zoo"
    r = cli("publish", tmp / "runs" / "two", "--all-styles", "--zoo", zoo, "--no-sample")
    assert r.exit_code == 0 and "starry@1" in r.output and "wave@1" in r.output, r.output
    return tmp / "runs" / "two", zoo


def test_train_several_styles_publishes_one_plain_network_per_style(family):
    run, zoo = family
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert [s["name"] for s in ckpt["hyper_parameters"]["style"]] == ["starry", "wave"]
    assert ckpt["state_dict"]["net.enc1.2.weight"].shape[0] == 2  # (styles, C) scale per norm
    assert ckpt["hyper_parameters"]["style_weight"] == [3.0, 4.0]  # --style-weight 3,4: one per style
    index = json.loads((zoo / "index.json").read_text())["models"]
    fams = [index[n]["versions"][0]["config"]["family"] for n in ("starry", "wave")]
    assert fams[0]["shared_sha256"] == fams[1]["shared_sha256"] and [f["index"] for f in fams] == [0, 1]
    assert index["wave"]["versions"][0]["style"]["title"] == "The Great Wave off Kanagawa"
    r = cli("publish", run, "--name", "x", "--zoo", zoo)
    assert r.exit_code == 1 and "--style (starry, wave)" in err_lines(r)[-1]
    r = cli("publish", run, "--name", "x", "--style", "udnie", "--zoo", zoo)
    assert r.exit_code == 1 and "its styles: starry, wave" in err_lines(r)[-1]


def test_per_style_weights_must_match_the_styles(tmp_path):
    base = ["train", "--style", "starry,wave", "--data", PHOTOS_1K / "train", "--steps", 1, "--out", tmp_path, "--style-weight"]
    for weights, words in (("1,2,3", "3 style weights for 2 style(s) (starry, wave)"), ("5,x", "not a number")):
        r = cli(*base, weights)
        assert r.exit_code == 1 and words in err_lines(r)[-1] and len(err_lines(r)) == 1, r.output
    assert not any(tmp_path.iterdir())  # nothing written


def test_apply_and_export_a_blend(family, tmp_path):
    _, zoo = family
    photo = PHOTOS / "tubingen.jpg"
    outs = {}
    for ref in ("starry", "wave", "starry:0.5+wave:0.5"):
        out = tmp_path / f"{ref.replace(':', '_')}.png"
        r = cli("apply", ref, photo, "-o", out, "--size", 96, "--zoo", zoo)
        assert r.exit_code == 0, r.output
        outs[ref] = load_image(out)
    mid, a, b = outs["starry:0.5+wave:0.5"], outs["starry"], outs["wave"]
    apart = float((a - b).abs().mean())
    assert apart > 5e-3, apart  # the two styles give different pictures
    # the blend lies between them: well away from each, closer to each than they are to each other
    for end in (a, b):
        assert 0.2 * apart < float((mid - end).abs().mean()) < apart
    r = cli("export", "starry+wave", "--format", "onnx", "-o", tmp_path / "blend.onnx", "--zoo", zoo)
    assert r.exit_code == 0 and "starry@1:0.5+wave@1:0.5" in r.output and "verified" in r.output, r.output


def test_blend_refuses_models_not_trained_together(family, tmp_path):
    _, zoo = family
    r = cli("publish", make_run(tmp_path / "solo"), "--name", "solo", "--zoo", zoo, "--no-sample")
    assert r.exit_code == 0, r.output
    out = tmp_path / "never.jpg"
    for ref, words in (("starry+solo", "trained together"), ("starry:x+wave", "not a weight"),
                       ("starry:0+wave:0", "must be a finite number > 0")):
        r = cli("apply", ref, PHOTOS / "tubingen.jpg", "-o", out, "--zoo", zoo)
        assert r.exit_code == 1 and words in err_lines(r)[-1] and len(err_lines(r)) == 1, r.output
    assert not out.exists()


def test_unversioned_blend_keeps_to_the_family_when_a_style_is_retrained_alone(family, tmp_path):
    import shutil

    zoo = tmp_path / "zoo"
    shutil.copytree(family[1], zoo)  # the module's zoo stays as the other tests expect it
    r = cli("publish", make_run(tmp_path / "solo"), "--name", "wave", "--zoo", zoo, "--no-sample")
    assert r.exit_code == 0 and "wave@2" in r.output, r.output  # the latest wave is not the family's
    r = cli("export", "starry+wave", "--format", "onnx", "-o", tmp_path / "blend.onnx", "--zoo", zoo)
    assert r.exit_code == 0 and "starry@1:0.5+wave@1:0.5" in r.output, r.output
    r = cli("apply", "starry+wave@2", PHOTOS / "tubingen.jpg", "-o", tmp_path / "never.jpg", "--zoo", zoo)
    assert r.exit_code == 1 and "trained together" in err_lines(r)[-1], r.output
    assert not (tmp_path / "never.jpg").exists()


def test_builtin_blend_uses_the_family_when_a_style_has_a_dedicated_newer_version(tmp_path):
    r = cli("apply", "starry+wave", PHOTOS / "tubingen.jpg", "-o", tmp_path / "b.jpg", "--size", 64, "--zoo", tmp_path / "z")
    assert r.exit_code == 0 and "starry@3:0.5+wave@3:0.5" in r.output, r.output  # wave@4 was trained alone
