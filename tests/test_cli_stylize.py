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


def test_a_small_style_image_is_read_at_its_own_size_and_a_thumbnail_enlarged_to_the_smallest_read(tmp_path):
    """Output 256 px: a 192 px painting is read at 192 (every scale's painting x0.75), said in one line;
    a 40 px thumbnail at 48 (96 of 512, the smallest copy measured), its enlargement named;
    --style-scale given reads even the 192 px one at that scale, enlarged and named; a large one: no line."""
    small, thumb = tmp_path / "small.png", tmp_path / "thumb.png"
    Image.open(STYLES / "wave.jpg").convert("RGB").resize((192, 144)).save(small)
    Image.open(STYLES / "wave.jpg").convert("RGB").resize((40, 30)).save(thumb)
    size = ["--size", "256", "--min-size", "128", "--steps", "1", "--min-steps", "1", "--quiet", "--device", "cpu"]
    cases = (
        (small, [], "small.png is 192x144 px, under the 256 px the last scale reads paintings at: it is read at its own size, "
                    "every scale's painting scaled by 0.75"),
        (thumb, [], "thumb.png is 40x30 px and the last scale reads it at 48 px (1.2x enlarged)"),
        (small, ["--style-scale", "1"], "small.png is 192x144 px and the last scale reads it at 256 px (1.3x enlarged): its "
                                        "brushwork will be soft; a copy 256 px or more on its long side paints sharper, "
                                        "or --style-scale 0.75 reads it at its own size"),
        (STYLES / "wave.jpg", [], None),
    )
    for painting, extra, line in cases:
        r = runner.invoke(app, ["stylize", str(PHOTOS / "tubingen.jpg"), "--style-image", str(painting),
                                "-o", str(tmp_path / "out.jpg"), *size, *extra])
        assert r.exit_code == 0, _err(r)
        assert (line in r.output) if line else ("own size" not in r.output and "enlarged" not in r.output), r.output


def test_the_report_says_the_size_each_style_image_was_read_at(tmp_path):
    from zoo.inference.gatys import run_stylize

    small = tmp_path / "small.png"
    Image.open(STYLES / "wave.jpg").convert("RGB").resize((48, 36)).save(small)
    got = []
    report = run_stylize(PHOTOS / "tubingen.jpg", tmp_path / "o.png", style_images=[small, STYLES / "udnie.jpg"],
                         overrides={"size": 64, "min_size": 32, "steps": 1, "min_steps": 1}, progress=False, notice=got.append)
    assert report["style_sides"] == [48, 64] and len(got) == 1 and "small.png" in got[0]
