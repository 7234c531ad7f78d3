"""Named styles: shipped paintings (verified), the style folder as override / addition, `zoo styles`."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from conftest import ROOT, STYLES
from lit_modules.errors import ConfigError
from zoo.registry import styles
from zoo.cli import app

SHIPPED = ("starry", "wave", "scream", "composition_vii", "udnie", "shipwreck")


@pytest.fixture()
def fresh_home(tmp_path, monkeypatch) -> Path:
    """A new user's machine: empty $HOME, no style folder, no cache variables."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("STYLE_ZOO_STYLE_DIR", "XDG_CACHE_HOME", "STYLE_ZOO_HOME"):
        monkeypatch.delenv(var, raising=False)
    return home


def test_six_paintings_ship_beside_their_yaml_and_match_its_sha256():
    assert set(SHIPPED) <= set(styles.names())
    for name in SHIPPED:
        s = styles.get(name)
        path = styles.package_dir() / s.file
        assert path.is_file(), path
        assert styles.sha256_file(path) == s.sha256  # the same bytes the URL serves
        assert 100_000 <= path.stat().st_size <= 500_000
        assert s.title and s.artist and s.year and "Public domain" in s.license and s.url.startswith("https://")
        with Image.open(path) as im:
            assert im.mode == "RGB" and min(im.size) >= 256


def test_fresh_home_resolves_the_shipped_painting_and_writes_nothing(fresh_home):
    path = styles.resolve("starry")  # STYLE_ZOO_OFFLINE=1 (conftest): no download possible
    assert path == styles.package_dir() / "starry_night.jpg"
    assert list(fresh_home.iterdir()) == []


def test_style_folder_overrides_a_shipped_painting(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_STYLE_DIR", str(tmp_path))
    shutil.copy(STYLES / "wave.jpg", tmp_path / "starry_night.jpg")  # a user's own starry_night.jpg
    assert styles.resolve("starry") == tmp_path / "starry_night.jpg"
    assert styles.resolve("wave") == styles.package_dir() / "wave.jpg"
    row = {r["name"]: r for r in styles.catalogue(str(tmp_path / "zoo"))}
    assert row["starry"]["painting"] == "style folder" and row["wave"]["painting"] == "shipped"


def _write_style(folder: Path, name: str, **fields) -> None:
    data = {"title": "Café Terrace at Night", "artist": "Vincent van Gogh", "year": "1888",
            "license": "Public domain", "file": f"{name}.jpg", **fields}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(data))


def test_style_folder_adds_a_style(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_STYLE_DIR", str(tmp_path))
    _write_style(tmp_path, "cafe")
    shutil.copy(STYLES / "cafe_terrace.jpg", tmp_path / "cafe.jpg")
    assert "cafe" in styles.names()
    assert styles.resolve("cafe") == tmp_path / "cafe.jpg"
    assert styles.get("cafe").artist == "Vincent van Gogh" and styles.recommended("cafe", "fast") == {}


def test_missing_painting_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_STYLE_DIR", str(tmp_path))
    _write_style(tmp_path, "cafe", url="https://example.org/cafe.jpg")
    with pytest.raises(styles.StyleNotFound) as e:
        styles.resolve("cafe")
    msg = str(e.value)
    assert "cafe.jpg" in msg and str(tmp_path) in msg and "https://example.org/cafe.jpg" in msg and "\n" not in msg


def test_bad_style_yaml_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_STYLE_DIR", str(tmp_path))
    (tmp_path / "odd.yaml").write_text("title: x\nartst: typo\nfile: odd.jpg\n")
    with pytest.raises(ConfigError) as e:
        styles.get("odd")
    msg = str(e.value)
    assert "odd.yaml" in msg and "artist" in msg and "artst" in msg and "\n" not in msg


def test_damaged_painting_beside_its_yaml_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_STYLE_DIR", str(tmp_path / "empty"))
    (tmp_path / "wave.jpg").write_bytes((STYLES / "wave.jpg").read_bytes()[:5000])
    good = styles.get("wave")
    damaged = styles.Style(**{**good.__dict__, "config": tmp_path / "wave.yaml"})
    with pytest.raises(styles.StyleNotFound, match="damaged"):
        styles.locate(damaged)


def test_zoo_styles_lists_provenance_and_builtin_models(fresh_home):
    r = CliRunner().invoke(app, ["styles"])
    assert r.exit_code == 0, r.output
    out = r.output
    for name in SHIPPED:
        assert name in out
    for text in ("The Starry Night", "Vincent van Gogh", "1889", "Public domain", "shipped",
                 "starry@4 (built-in)", "wave@5 (built-in)", "shipwreck@5 (built-in)", "jcjohnson/neural-style"):
        assert text in out, text
    assert str(fresh_home) in out  # where to add styles


def test_wheel_ships_the_paintings(tmp_path):
    """Build the wheel (as `pip install .` does): the paintings, style YAMLs and presets are package
    data of train (train/configs), and the only importable packages are zoo, train and lit_modules."""
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for d in ("zoo", "train", "lit_modules", "configs", "model_cards"):
        shutil.copytree(ROOT / d, src / d, ignore=ignore)
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                        "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in SHIPPED:
        s = styles.get(name)
        assert f"train/configs/styles/{name}.yaml" in names and f"train/configs/styles/{s.file}" in names
    assert "train/configs/train/quick.yaml" in names and "zoo/serve/static/index.html" in names
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"zoo", "train", "lit_modules"}
