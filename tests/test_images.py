"""Image I/O: every mode becomes RGB [0,1]; bad files raise one-line ImageErrors; atomic writes."""
from __future__ import annotations

import os

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from conftest import PHOTOS
from lit_modules.errors import as_url
from zoo.media.images import ENLARGED, ImageError, check_output_path, enlargement_note, load_image, read_image, save_image


def _photo(size=(40, 30)) -> Image.Image:
    return Image.open(PHOTOS / "tubingen.jpg").convert("RGB").resize(size)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA"])
def test_modes_become_rgb(tmp_path, mode):
    img = _photo()
    if mode == "I;16":
        arr = np.asarray(img.convert("L"), dtype=np.uint16) * 257
        img = Image.fromarray(arr)  # uint16 -> mode I;16
        path = tmp_path / "x.png"
    else:
        img = img.convert(mode)
        path = tmp_path / ("x.tif" if mode == "CMYK" else "x.png")
    img.save(path)
    x = load_image(path)
    assert x.shape == (1, 3, 30, 40) and x.dtype == torch.float32
    assert 0 <= float(x.min()) and float(x.max()) <= 1
    if mode == "I;16":  # 16-bit range mapped to 0..1, not clipped
        assert float(x.max()) > 0.5


def test_alpha_is_composited_over_white(tmp_path):
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "t.png")
    assert torch.allclose(load_image(tmp_path / "t.png"), torch.ones(1, 3, 4, 4))


def test_exif_orientation_is_applied(tmp_path):
    img = _photo((40, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").size == (30, 40)


def test_resize_long_side():
    x = load_image(PHOTOS / "tubingen.jpg", 100)
    assert max(x.shape[-2:]) == 100


def test_bad_files_raise_one_line(tmp_path):
    (tmp_path / "text.jpg").write_text("not an image")
    full = tmp_path / "full.jpg"
    _photo((400, 300)).save(full)
    (tmp_path / "trunc.jpg").write_bytes(full.read_bytes()[:2000])
    for name in ["text.jpg", "trunc.jpg", "missing.jpg"]:
        with pytest.raises(ImageError) as e:
            read_image(tmp_path / name)
        assert "\n" not in str(e.value) and name in str(e.value)


def test_a_folder_or_a_url_is_named_as_such(tmp_path):
    """A folder exists, so "no such file" would mislead; a pasted URL reaches read_image as a Path,
    which folds its // into / (https:/host/...): the line gives it back as typed."""
    with pytest.raises(ImageError, match="a folder, not an image file"):
        read_image(tmp_path)
    with pytest.raises(ImageError) as e:
        read_image(Path("https://example.com/art/painting.jpg"))
    assert str(e.value).startswith("https://example.com/art/painting.jpg: a URL") and "local files" in str(e.value)


_SCHEME = st.from_regex(r"[a-z][a-z0-9+.-]{1,9}", fullmatch=True)
_PART = st.from_regex(r"[A-Za-z0-9_.~-]{1,12}", fullmatch=True).filter(lambda s: s not in (".", ".."))


@given(_SCHEME, st.lists(_PART, min_size=1, max_size=4))
def test_urls_survive_path_folding(scheme, parts):
    url = f"{scheme}://{'/'.join(parts)}"
    assert as_url(url) == url and as_url(Path(url)) == url


@given(st.lists(_PART, min_size=1, max_size=4), st.sampled_from(["", "/", "./", "C:/", "c:\\"]))
def test_local_paths_are_not_urls(parts, prefix):
    """Relative, absolute and drive-letter paths; a colon after a folder name is not a scheme either."""
    path = prefix + "/".join(parts)
    assert as_url(path) is None and as_url(Path(path)) is None
    assert as_url(f"{parts[0]}/x:/y.jpg") is None


def test_decompression_bomb_refused(tmp_path, monkeypatch):
    import zoo.media.images as images

    _photo((400, 300)).save(tmp_path / "big.png")
    monkeypatch.setattr(images, "MAX_PIXELS", 10_000)  # the real file is 120k pixels
    with pytest.raises(ImageError, match="too large"):
        read_image(tmp_path / "big.png")


def test_atomic_save_and_output_checks(tmp_path):
    x = load_image(PHOTOS / "tubingen.jpg", 32)
    out = save_image(x, tmp_path / "o.png")
    assert torch.allclose(load_image(out), x, atol=1 / 255)
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]  # no temp files left
    old = os.umask(0o027)
    try:  # the output gets a new file's permissions, not the temp file's private 0600
        assert save_image(x, tmp_path / "g.jpg").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o666 & ~old
    with pytest.raises(ImageError, match="unknown output format"):
        check_output_path(tmp_path / "o.xyz")
    with pytest.raises(ImageError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "o.png")
    with pytest.raises(ImageError, match="overwrite an input"):
        check_output_path(out, inputs=[out])


@given(st.integers(1, 4000), st.integers(1, 4000), st.integers(16, 4096))
def test_an_enlargement_is_named_past_the_measured_threshold(w, h, long_side):
    """A 448 px copy read at 512 (1.14x) already paints a quarter further from the painting
    (docs/models.md): the note comes past ENLARGED, with the factor and the size that paints sharper."""
    note = enlargement_note("the painting p.png", (w, h), long_side, "the run")
    assert (note is not None) == (long_side > ENLARGED * max(w, h))
    if note:
        assert f"{w}x{h} px" in note and f"{long_side} px or more" in note and "\n" not in note
    assert enlargement_note("p", (448, 353), 512, "the run") and not enlargement_note("p", (480, 378), 512, "the run")
