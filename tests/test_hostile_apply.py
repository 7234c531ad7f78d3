"""zoo apply under clumsy and hostile input: colliding output names, corrupt photos in a folder,
photos (or resizes) with a side under 5 px. Each: one line per problem, no traceback, no partial
file, nothing overwritten."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import PHOTOS
from zoo.inference.stylizer import MIN_SIDE, Stylizer
from zoo.media.images import ImageTooSmall
from zoo_helpers import cli, err_lines


@pytest.fixture(autouse=True)
def _empty_user_zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "user-zoo"))  # the built-in models only


@pytest.fixture(scope="module")
def stylizer() -> Stylizer:
    return Stylizer.load("starry", None, "cpu", "fp32", tile=None)


def photo(path: Path, size=(48, 36)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.open(PHOTOS / "tubingen.jpg").convert("RGB").resize(size).save(path)
    return path


def files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def one_error(r, *words: str) -> str:
    """The run failed with exit 1 and exactly one line on stderr, containing ``words``."""
    lines = err_lines(r)
    assert r.exit_code == 1 and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    assert len(lines) == 1 and "Traceback" not in r.output, r.output
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


@pytest.mark.parametrize("case", ["same stem beside the inputs", "same name in --out-dir", "a video and a photo folder"])
def test_two_inputs_never_write_one_file(tmp_path, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    if case == "same stem beside the inputs":
        photo(tmp_path / "x.jpg"), photo(tmp_path / "x.png")
        args, words = ["x.jpg", "x.png"], ["x.jpg and x.png", "x_starry.jpg"]
    elif case == "same name in --out-dir":
        photo(tmp_path / "a" / "p.jpg"), photo(tmp_path / "b" / "p.jpg")
        args, words = ["a/p.jpg", "b/p.jpg", "--out-dir", "out"], ["a/p.jpg and b/p.jpg", "out/p.jpg"]
    else:  # a folder holding p.jpg and p.webp: both would be p_starry.jpg
        photo(tmp_path / "f" / "p.jpg"), photo(tmp_path / "f" / "p.webp")
        args, words = ["f"], ["f/p.jpg and f/p.webp", "p_starry.jpg"]
    before = files(tmp_path)
    r = cli("apply", "starry", *args, "-q")
    one_error(r, *words, "separate")
    assert files(tmp_path) == before and not (tmp_path / "out").exists()  # refused before any work


def test_one_file_named_twice_is_done_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "x.jpg")
    r = cli("apply", "starry", "x.jpg", "./x.jpg", str(tmp_path / "x.jpg"), "-q")
    assert r.exit_code == 0, r.output
    assert "wrote x_starry.jpg" in r.output and files(tmp_path) == {"x.jpg", "x_starry.jpg"}


def test_a_folder_apply_does_every_good_photo_and_lists_each_bad_one(tmp_path):
    folder = tmp_path / "in"
    for i in range(3):
        photo(folder / f"good{i}.jpg")
    (folder / "bad0.jpg").write_bytes(b"")  # empty
    (folder / "bad1.png").write_bytes(b"not a picture at all\n" * 20)
    good = (folder / "good0.jpg").read_bytes()
    (folder / "bad2.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG
    photo(folder / "tiny.png", (3, 40))  # a side under 5 px
    r = cli("apply", "starry", str(folder), "--out-dir", str(tmp_path / "out"), "-q")
    assert r.exit_code == 1 and (r.exception is None or isinstance(r.exception, SystemExit)), r.output
    assert files(tmp_path / "out") == {"good0.jpg", "good1.jpg", "good2.jpg"}  # no partial or temp file
    assert "wrote 3 files" in r.stdout and "4 failed" in r.stdout
    errors = err_lines(r)
    assert "Traceback" not in r.output and len(errors) == 4, errors
    for name in ("bad0.jpg", "bad1.png", "bad2.jpg", "tiny.png"):
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert all(line.startswith("error: ") for line in errors)


@pytest.mark.parametrize("size, args, words", [
    ((1, 1), [], ["1x1 px", f"at least {MIN_SIDE} px"]),
    ((4, 300), [], ["4x300 px"]),
    ((300, 2), [], ["300x2 px"]),
    ((2000, 16), ["--size", "512"], ["512x4 px"]),
    ((48, 36), ["--size", "3"], ["--size", f"at least {MIN_SIDE}"]),
    ((48, 36), ["--size", "0"], ["--size"]),
    ((48, 36), ["--size", "-7"], ["--size"]),
])
def test_a_side_under_five_px_is_one_line(tmp_path, size, args, words):
    src = photo(tmp_path / "p.png", size)
    r = cli("apply", "starry", str(src), *args, "-q")
    one_error(r, *words)
    assert files(tmp_path) == {"p.png"}


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12))
def test_the_stylizer_refuses_exactly_the_sides_it_cannot_run(stylizer, h, w):
    x = torch.rand(1, 3, h, w)
    if min(h, w) < MIN_SIDE:
        with pytest.raises(ImageTooSmall, match=f"{w}x{h} px"):
            stylizer.tensor(x)
    else:
        assert stylizer.tensor(x).shape == (1, 3, h, w)
