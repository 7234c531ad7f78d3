"""A new user, offline, right after the install: fresh $HOME, no style folder, no network.

Runs the real `zoo` command in a subprocess (a new process, as a user would), with
``STYLE_ZOO_STYLE_DIR`` unset so the named styles come from the package itself.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PHOTOS, ROOT


@pytest.fixture()
def new_user(tmp_path) -> tuple[dict, Path]:
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("STYLE_ZOO_STYLE_DIR", "STYLE_ZOO_HOME", "XDG_CACHE_HOME", "HF_HOME", "HF_DATASETS_CACHE",
                        "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    # STYLE_ZOO_OFFLINE=1 (conftest) stays: a painting that is not shipped cannot be downloaded here
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), NO_COLOR="1")
    work = tmp_path / "work"
    work.mkdir()
    return env, work


def zoo(args: list[str], env: dict, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "zoo.cli", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_stylize_with_a_named_style_works_right_after_install(new_user):
    env, work = new_user
    out = work / "out.jpg"
    r = zoo(["stylize", str(PHOTOS / "tubingen.jpg"), "--style", "starry", "--size", "64", "--min-size", "64",
             "--steps", "3", "--quiet", "--device", "cpu", "-o", str(out)], env, work, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert out.is_file() and "wrote" in r.stdout
    assert list((work.parent / "home").iterdir()) == []  # nothing downloaded or cached


def test_train_without_data_offline_fails_at_once_in_one_line(new_user):
    env, work = new_user
    env = {**env, "HF_HUB_OFFLINE": "1"}
    t0 = time.monotonic()
    r = zoo(["train", "--style", "starry"], env, work, timeout=10)  # never the ~40 s of retries
    seconds = time.monotonic() - t0
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "--data FOLDER" in lines[0] and "hf:justram/COCO2014-Images" in lines[0] and "HF_HUB_OFFLINE" in lines[0]
    assert seconds < 10
    assert list(work.iterdir()) == []  # no run directory left behind


def test_apply_in_a_new_process_writes_reports_and_exits_cleanly(new_user):
    """`zoo apply` ends its process with os._exit once the output is written (skipping ~0.4 s of
    interpreter teardown): its report must still reach a pipe, the file must be whole, and a
    failure must keep its exit code and one-line error."""
    env, work = new_user
    out = work / "out.png"
    r = zoo(["apply", "starry", str(PHOTOS / "tubingen.jpg"), "--size", "96", "-q", "-o", str(out)], env, work, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("starry@") and "wrote" in r.stdout and str(out) in r.stdout
    from PIL import Image

    with Image.open(out) as im:
        im.load()  # a complete file
        assert max(im.size) == 96
    assert sorted(p.name for p in work.iterdir()) == ["out.png"]  # no temp file left
    r = zoo(["apply", "starry", str(work / "missing.jpg"), "-o", str(work / "x.jpg")], env, work, timeout=120)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "missing.jpg" in r.stderr


def test_every_command_says_what_it_does_in_one_line_of_zoo_help():
    """`zoo --help` lists each command beside its docstring's first paragraph; rich help keeps that
    paragraph's line breaks, so one written over several source lines breaks the table mid-sentence."""
    import typer

    from zoo.cli import app

    for info in app.registered_commands:
        name = info.name or info.callback.__name__
        summary = (info.callback.__doc__ or "").strip().split("\n\n")[0]
        assert summary, f"zoo {name}: no help"
        assert "\n" not in summary, f"zoo {name}: first paragraph of its help spans lines: {summary!r}"
    root = typer.main.get_command(app)
    assert set(root.commands) >= {"train", "list", "apply", "stylize", "evaluate", "publish", "pull"}
