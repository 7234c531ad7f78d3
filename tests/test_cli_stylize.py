"""`zoo stylize` from the command line: exit codes, one-line errors, no half-written output."""
from __future__ import annotations

import shutil

import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import PHOTOS, STYLES
from zoo.cli import app

runner = CliRunner()
TINY = ["--size", "32", "--min-size", "32", "--steps", "2", "--quiet", "--device", "cpu"]


def _err(result) -> str:
    return result.output  # Click >= 8.2 mixes stderr into output


def test_stylize_named_style_writes_output(tmp_path):
    out = tmp_path / "out.jpg"
    r = runner.invoke(app, ["stylize", str(PHOTOS / "tubingen.jpg"), "--style", "starry", "-o", str(out), *TINY])
    assert r.exit_code == 0, _err(r)
    assert out.is_file() and "wrote" in r.output


def test_stylize_blends_style_images_and_preserves_color(tmp_path):
    out = tmp_path / "blend.png"
    r = runner.invoke(app, ["stylize", str(PHOTOS / "tubingen.jpg"), "--style-image", str(STYLES / "wave.jpg"),
                            "--style-image", str(STYLES / "udnie.jpg"), "--style-weights", "0.7,0.3", "--preserve-color",
                            "--init", "noise", "-o", str(out), *TINY])
    assert r.exit_code == 0, _err(r)
    assert out.is_file()


@pytest.mark.parametrize("case", ["not_image", "truncated", "missing", "bad_style", "bad_ext", "no_style", "bad_weights", "overwrite",
                                  "thin_photo", "thin_style", "flat_style"])
def test_bad_input_one_line_nonzero_no_output(tmp_path, case):
    content = tmp_path / "c.jpg"
    shutil.copy(PHOTOS / "tubingen.jpg", content)
    out = tmp_path / "out.jpg"
    args = ["stylize", str(content), "--style", "starry", "-o", str(out), *TINY]
    if case == "not_image":
        content.write_text("hello")
    elif case == "truncated":
        content.write_bytes((PHOTOS / "tubingen.jpg").read_bytes()[:3000])
    elif case == "missing":
        args[1] = str(tmp_path / "nope.jpg")
    elif case == "bad_style":
        args[3] = "starry_nite"
    elif case == "bad_ext":
        out = tmp_path / "out.xyz"
        args[5] = str(out)
    elif case == "no_style":
        args = ["stylize", str(content), "-o", str(out), *TINY]
    elif case == "bad_weights":
        args = ["stylize", str(content), "--style-image", str(STYLES / "wave.jpg"), "--style-weights", "1,2", "-o", str(out), *TINY]
    elif case == "overwrite":
        out = content
        args[5] = str(content)
    elif case in ("thin_photo", "thin_style"):  # a pool of the loss network would leave nothing of it
        thin = tmp_path / "thin.png"
        Image.open(PHOTOS / "tubingen.jpg").convert("RGB").resize((3000, 2)).save(thin)
        args = (["stylize", str(thin), "--style", "starry", "-o", str(out), *TINY] if case == "thin_photo" else
                ["stylize", str(content), "--style-image", str(thin), "-o", str(out), *TINY])
    elif case == "flat_style":  # a blank export: Gatys would paint the photo grey
        flat = tmp_path / "blank.png"
        Image.new("RGB", (300, 200), (128, 128, 128)).save(flat)
        args = ["stylize", str(content), "--style-image", str(flat), "-o", str(out), *TINY]
    before = sorted(p.name for p in tmp_path.iterdir())
    r = runner.invoke(app, args)
    assert r.exit_code != 0
    err = _err(r).strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    if case == "bad_style":
        assert "starry" in err  # close match offered
    if case.startswith("thin"):
        assert "3000x2 px" in err and "at least 16" in err, err
    if case == "flat_style":
        assert "blank.png is one flat colour" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_missing_style_file_says_where_to_put_it(tmp_path, monkeypatch):
    folder = tmp_path / "styles"
    folder.mkdir()
    monkeypatch.setenv("STYLE_ZOO_STYLE_DIR", str(folder))
    # a style added in the style folder whose painting is not there (the six named ones ship theirs)
    (folder / "cafe.yaml").write_text("title: Cafe Terrace\nartist: Vincent van Gogh\nyear: '1888'\nlicense: Public domain\nfile: cafe.jpg\n")
    r = runner.invoke(app, ["stylize", str(PHOTOS / "tubingen.jpg"), "--style", "cafe", "-o", str(tmp_path / "o.jpg"), *TINY])
    assert r.exit_code == 1
    assert "cafe.jpg" in _err(r) and str(folder) in _err(r) and len(_err(r).strip().splitlines()) == 1
    assert not (tmp_path / "o.jpg").exists()


def test_help_explains_options():
    r = runner.invoke(app, ["stylize", "--help"])
    assert r.exit_code == 0 and "--preserve-color" in r.output and "Gatys" in r.output


def test_a_style_image_smaller_than_the_last_scale_is_named_with_its_enlargement(tmp_path):
    small = tmp_path / "small.png"
    Image.open(STYLES / "wave.jpg").convert("RGB").resize((16, 12)).save(small)
    for painting, said in ((small, True), (STYLES / "wave.jpg", False)):
        r = runner.invoke(app, ["stylize", str(PHOTOS / "tubingen.jpg"), "--style-image", str(painting),
                                "-o", str(tmp_path / "out.jpg"), *TINY])
        assert r.exit_code == 0, _err(r)
        assert ("small.png is 16x12 px and the last scale reads it at 32 px (2.0x enlarged)" in r.output) == said, r.output
        assert ("--style-scale 0.5 reads it at its own size" in r.output) == said  # 16 px of a 32 px output
