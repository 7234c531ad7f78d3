"""Offline-aware check of an ``hf:NAME`` data source, before any slow download attempt.

Without it, ``datasets.load_dataset`` on a machine with no network retries for tens of seconds
and then fails with a message that does not say what to do. Here:

- offline declared (``HF_HUB_OFFLINE``, ``HF_DATASETS_OFFLINE`` or ``STYLE_ZOO_OFFLINE`` true): no
  request at all; the dataset must be in the local ``datasets`` cache;
- otherwise one bounded probe of the Hub endpoint (``PROBE_SECONDS``, DNS included); if the Hub
  cannot be reached, the same rule as offline, and a cached dataset is then read in offline mode
  (no retries);
- a dataset neither cached nor reachable fails at once with one line naming both ways forward:
  ``--data FOLDER``, or network access for ``hf:NAME``.
"""
from __future__ import annotations

import os
import re
import threading
import urllib.error
import urllib.request
from functools import lru_cache
from pathlib import Path

from lit_modules.errors import StyleZooError

OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "STYLE_ZOO_OFFLINE")
PROBE_SECONDS = 3.0


class DatasetUnavailable(StyleZooError):
    """An hf: dataset is neither in the local cache nor downloadable now."""


def _true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def offline_reason() -> str | None:
    """The variable that declares this process offline, or None."""
    for var in OFFLINE_VARS:
        if _true(os.environ.get(var)):
            return var
    return None


def datasets_cache() -> Path:
    """``datasets``' cache folder, by its own rule (HF_DATASETS_CACHE, else HF_HOME/datasets), without importing it."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    from huggingface_hub import constants  # light import; HF_HOME resolved as datasets does

    return Path(os.path.expanduser(os.environ.get("HF_HOME") or constants.HF_HOME)) / "datasets"


def _snake(name: str) -> str:
    # datasets.naming.camelcase_to_snakecase (importing datasets costs ~2 s)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z\d])([A-Z])", r"\1_\2", name).lower()


def is_cached(name: str) -> bool:
    """Whether ``load_dataset(name)`` can be served from the local cache (datasets' offline fallback).

    Mirrors ``datasets.load.CachedDatasetModuleFactory``: ``<cache>/<namespace>___<snake name>/*/*/*``.
    """
    parts = name.split("/")
    parts[-1] = _snake(parts[-1])
    root = datasets_cache() / "___".join(parts)
    return root.is_dir() and any(p.is_dir() for p in root.glob("*/*/*"))


@lru_cache(maxsize=4)
def hub_reachable(endpoint: str, timeout: float = PROBE_SECONDS) -> bool:
    """One HEAD request to the Hub endpoint, bounded by ``timeout`` in all (a thread: DNS has no timeout)."""
    answer: list[bool] = []

    def probe() -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout).close()
            answer.append(True)
        except urllib.error.HTTPError:
            answer.append(True)  # it answered: the network is there
        except Exception:
            answer.append(False)

    t = threading.Thread(target=probe, name="hf-probe", daemon=True)
    t.start()
    t.join(timeout)
    return bool(answer and answer[0])


def go_offline() -> None:
    """Make this process (and its DDP children) read the Hub cache only: no retries against a dead network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    import sys

    if "datasets" in sys.modules:  # already imported: its config copied the value at import time
        sys.modules["datasets"].config.HF_HUB_OFFLINE = True


def check_hf_dataset(name: str) -> None:
    """Fail fast, in one line, if ``hf:name`` can neither be read from the cache nor downloaded now."""
    if Path(name).expanduser().exists():
        return  # a local dataset folder: datasets reads it without the Hub
    reason = offline_reason()
    if reason is None:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            reason = "HF_HUB_OFFLINE"
        elif hub_reachable((os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")):
            return
    cached = is_cached(name)
    if cached:
        go_offline()
        return
    why = f"{reason}=1 forbids downloads" if reason else "the Hub cannot be reached (no network?)"
    raise DatasetUnavailable(
        f"hf:{name} is not in the local dataset cache ({datasets_cache()}) and {why}: "
        f"train on your own photos with --data FOLDER, or run with network access so hf:{name} can be downloaded"
    )
