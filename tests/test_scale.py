"""Stroke scale (zoo apply --scale): a big photo at ``auto`` looks like its 512 px preview, only
sharper; ``1`` is the network as trained; values are checked in one line."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from conftest import PHOTOS
from lit_modules.errors import ConfigError
from zoo import EVAL_SIZE
from zoo.evaluation.metrics import layout_ssim
from zoo.inference import scale as sc
from zoo.inference.frames import FrameStylizer
from zoo.inference.stylizer import Stylizer
from zoo.media.images import pil_to_tensor, read_image, resize_long_side
from zoo_helpers import cli, err_lines


@pytest.fixture(scope="module")
def starry():
    return Stylizer.load("starry", precision="fp32", tile=None)


@pytest.fixture(scope="module")
def photo():
    return read_image(PHOTOS / "tubingen.jpg")  # 1024x768


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=12), st.floats(allow_nan=True, allow_infinity=True), st.integers(-100, 100)))
def test_a_scale_is_auto_or_a_number_in_range_else_one_line(value):
    try:
        s = sc.check_scale(value)
    except ConfigError as e:
        assert "\n" not in str(e) and "scale must be auto or a number" in str(e)
        return
    assert s == "auto" or (isinstance(s, float) and sc.MIN_SCALE <= s <= sc.MAX_SCALE and math.isfinite(s))


@given(st.integers(8, 20000), st.floats(sc.MIN_SCALE, sc.MAX_SCALE))
def test_working_side(long_side, s):
    assert sc.working_side(long_side, "auto") == min(long_side, EVAL_SIZE)
    assert sc.working_side(long_side, s) == max(8, round(long_side / s))


def test_scale_1_is_the_network_as_trained(starry, photo):
    one = starry.with_options(scale=1)
    assert np.array_equal(np.asarray(one(photo)), np.asarray(starry(photo)))  # Stylizer's default: 1
    assert starry.with_options(scale="auto")(resize_long_side(photo, EVAL_SIZE)).tobytes() == starry(resize_long_side(photo, EVAL_SIZE)).tobytes()


def test_auto_looks_like_the_preview_at_full_size(starry, photo):
    """The 1024 px result at auto, shrunk to 512 px, is the 512 px preview's picture; at scale 1 it is
    another (smaller strokes). Full size is kept, and the photo's edges are sharper than an upscale."""
    auto = starry.with_options(scale="auto")(photo)
    assert auto.size == photo.size
    preview = pil_to_tensor(starry(resize_long_side(photo, EVAL_SIZE)))
    shrunk = pil_to_tensor(resize_long_side(auto, EVAL_SIZE))
    today = pil_to_tensor(resize_long_side(starry(photo), EVAL_SIZE))
    assert layout_ssim(shrunk, preview) > 0.9 and (shrunk - preview).abs().mean() < 0.03
    assert (today - preview).abs().mean() > 2 * (shrunk - preview).abs().mean()
    upscaled = pil_to_tensor(resize_long_side(starry(resize_long_side(photo, EVAL_SIZE)), 1024))
    full = pil_to_tensor(auto)

    def sharpness(t):  # mean luminance gradient magnitude
        lum = t.mean(1)
        return float((lum[:, 1:, 1:] - lum[:, :-1, 1:]).abs().mean() + (lum[:, 1:, 1:] - lum[:, 1:, :-1]).abs().mean())

    assert sharpness(full) > 1.2 * sharpness(upscaled)


def test_strips_join_without_seams(starry, photo, monkeypatch):
    s = starry.with_options(scale=2)
    whole = np.asarray(s(photo), dtype=np.int16)
    monkeypatch.setattr(sc, "ROWS", 37)  # strips of an odd height: many joins
    strips = np.asarray(s(photo), dtype=np.int16)
    assert np.abs(whole - strips).max() <= 1


def test_smaller_strokes_and_tensors(starry):
    x = pil_to_tensor(read_image(PHOTOS / "chicago.jpg"))  # 712x474
    y = starry.with_options(scale=0.5).tensor(x)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    assert (y - starry.tensor(x)).abs().mean() > 0.02  # another stroke size


def test_video_frames_honour_the_scale(starry):
    frame = np.array(read_image(PHOTOS / "stata.jpg"))  # 1024x679, writable (a decoded frame)
    fs = FrameStylizer(starry.with_options(scale="auto"))
    outs = [fs(frame) for _ in range(2)]
    assert all(o.shape == frame.shape and o.dtype == np.uint8 for o in outs)


def test_cli_scale(tmp_path):
    src = tmp_path / "photo.jpg"
    resize_long_side(read_image(PHOTOS / "tubingen.jpg"), 800).save(src)
    out = tmp_path / "out.png"
    r = cli("apply", "starry", src, "-o", out, "--scale", "2", "-q")
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == Image.open(src).size
    bad = tmp_path / "bad.png"
    r = cli("apply", "starry", src, "-o", bad, "--scale", "0")
    assert r.exit_code != 0 and not bad.exists()
    lines = err_lines(r)
    assert len(lines) == 1 and "scale must be auto or a number" in lines[0], lines
    assert "--scale" in cli("apply", "--help").output
