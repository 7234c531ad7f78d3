"""hf: data sources without network: no request when offline is declared, one bounded probe
otherwise, one line naming --data FOLDER and hf:NAME when the dataset is neither cached nor
reachable, and a cached dataset read with no retries."""
from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import PHOTOS_1K, ROOT
from train.data import check_source
from train.hf_offline import DatasetUnavailable, check_hf_dataset, is_cached

NAME = "someone/TinyPhotos"


@pytest.fixture()
def hub(monkeypatch):
    """A local HTTP server standing in for the Hub endpoint; ``hub.requests`` counts what reached it."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802
            server.requests += 1
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.requests = 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    yield server
    server.shutdown()


@pytest.fixture()
def online(monkeypatch, tmp_path):
    """No offline variable set, and an empty datasets cache."""
    from huggingface_hub import constants

    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "STYLE_ZOO_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: CI exports it, and an earlier test may
    # have imported the hub with it set
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def _one_line_with_both_ways(e) -> str:
    msg = str(e.value)
    assert "\n" not in msg and "--data FOLDER" in msg and f"hf:{NAME}" in msg
    return msg


def test_offline_declared_makes_no_request_and_names_both_ways(hub, online, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DatasetUnavailable) as e:
        check_source(f"hf:{NAME}")
    assert "HF_HUB_OFFLINE=1" in _one_line_with_both_ways(e)
    assert hub.requests == 0


def test_reachable_hub_lets_the_download_go_ahead(hub, online):
    check_hf_dataset(NAME)  # the real download happens later, in load_dataset
    assert hub.requests == 1


def test_unreachable_hub_fails_in_one_line(online, monkeypatch):
    import socket

    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(DatasetUnavailable) as e:
        check_hf_dataset(NAME)
    assert "cannot be reached" in _one_line_with_both_ways(e)


def test_local_dataset_folder_needs_no_hub(hub, online, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    check_hf_dataset(str(PHOTOS_1K))
    assert hub.requests == 0


@pytest.fixture()
def cached_dataset(tmp_path) -> Path:
    """A real ``datasets`` cache holding someone/TinyPhotos, laid out as a Hub download leaves it.

    Built by preparing 6 photos with the imagefolder builder, then moved where ``load_dataset``
    looks for a Hub dataset in offline mode (``<namespace>___<snake name>/default/<version>/<hash>``).
    """
    import datasets

    photos = tmp_path / "photos" / "train"
    photos.mkdir(parents=True)
    for f in sorted((PHOTOS_1K / "train").glob("*.jpg"))[:6]:
        shutil.copy(f, photos / f.name)
    build = tmp_path / "build"
    datasets.load_dataset("imagefolder", data_dir=str(photos.parent), cache_dir=str(build), split="train")
    (prepared,) = (build / "imagefolder").glob("*/*/*/imagefolder-train.arrow")
    cache = tmp_path / "hf-cache"
    target = cache / "someone___tiny_photos" / "default" / prepared.parent.parent.name / prepared.parent.name
    shutil.copytree(prepared.parent, target)
    (target / "imagefolder-train.arrow").rename(target / "tiny_photos-train.arrow")
    return cache


def test_cached_dataset_is_found(cached_dataset, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cached_dataset))
    assert is_cached(NAME) and not is_cached("someone/OtherPhotos")


def test_cached_dataset_trains_without_network_and_without_retries(cached_dataset, tmp_path):
    """Hub unreachable (refused), dataset cached: the data module reads the cache at once."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "STYLE_ZOO_OFFLINE")}
    env.update(HF_DATASETS_CACHE=str(cached_dataset), HF_ENDPOINT="http://127.0.0.1:9", PYTHONPATH=str(ROOT))
    script = ("from train.data import ContentDataModule\n"
              f"dm = ContentDataModule('hf:{NAME}', image_size=32, batch_size=2, total_steps=2, preview_count=1)\n"
              "x, _ = next(iter(dm.train_dataloader()))\n"
              "print('batch', tuple(x.shape), tuple(dm.preview_batch().shape))\n")
    r = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "batch (2, 3, 32, 32) (1, 3, 32, 32)" in r.stdout
    assert "Retrying" not in r.stderr


@pytest.mark.parametrize("name", ["COCO2014-Images", "TinyPhotos", "ImageNet1K", "HTTPServer_v2", "coco"])
def test_cache_names_follow_datasets_own_rule(name):
    from datasets.naming import camelcase_to_snakecase

    from train.hf_offline import _snake

    assert _snake(name) == camelcase_to_snakecase(name)
