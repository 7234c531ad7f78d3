"""Shared fixtures: real assets from ../shared/assets (never copied into the repo)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ASSETS = (ROOT / ".." / "shared" / "assets").resolve()
STYLES = ASSETS / "styles"
PHOTOS = ASSETS / "photos"
PHOTOS_1K = ASSETS / "photos-1k"

# Named styles resolve from the shared folder; never try the network in tests.
os.environ.setdefault("STYLE_ZOO_STYLE_DIR", str(STYLES))
os.environ.setdefault("STYLE_ZOO_OFFLINE", "1")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def pytest_configure(config):
    if not ASSETS.is_dir():
        raise pytest.UsageError(f"shared assets not found at {ASSETS}: the tests need ../shared/assets beside the repo")


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS
