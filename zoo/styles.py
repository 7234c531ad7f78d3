"""Named styles: ``configs/styles/<name>.yaml`` -> painting metadata + a local image file.

The image is looked up in the style cache directory (``$STYLE_ZOO_STYLE_DIR``, else
``$XDG_CACHE_HOME/style-zoo/styles``, else ``~/.cache/style-zoo/styles``). If it is not there
and downloads are allowed (``STYLE_ZOO_OFFLINE`` unset), it is fetched from the config's URL and
verified against its sha256; otherwise the error says exactly where to put the file.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import tempfile
import urllib.request
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from lit_modules.errors import ConfigError, StyleZooError

ENV_DIR = "STYLE_ZOO_STYLE_DIR"
ENV_OFFLINE = "STYLE_ZOO_OFFLINE"


class StyleNotFound(StyleZooError):
    """A style name or style image cannot be resolved."""


@dataclass(frozen=True)
class Style:
    name: str
    title: str
    artist: str
    year: str
    license: str
    file: str
    url: str
    sha256: str
    weights: dict = field(default_factory=dict)  # recommended {"gatys": {...}, "fast": {...}}

    def meta(self) -> dict:
        return {"name": self.name, "title": self.title, "artist": self.artist, "year": self.year, "license": self.license}


def style_dir() -> Path:
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "style-zoo" / "styles"


def _configs() -> dict[str, Path]:
    root = resources.files("configs").joinpath("styles")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def names() -> list[str]:
    return sorted(_configs())


def get(name: str) -> Style:
    """The frozen config of a named style; unknown names list the valid ones."""
    configs = _configs()
    if name not in configs:
        close = difflib.get_close_matches(name, configs, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise StyleNotFound(f"unknown style {name!r}; {hint}valid styles: {', '.join(sorted(configs))}")
    data = yaml.safe_load(configs[name].read_text())
    return Style(name=name, **{k: (str(v) if k not in ("weights",) else v) for k, v in data.items()})


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _download(style: Style, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(style.url, timeout=20) as r:
            while block := r.read(1 << 20):
                f.write(block)
        got = sha256_file(tmp)
        if got != style.sha256:
            raise StyleNotFound(f"downloaded {style.url} but its sha256 is {got[:12]}..., expected {style.sha256[:12]}...")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def resolve(name: str) -> Path:
    """The local image file of a named style (downloading it once if allowed)."""
    style = get(name)
    path = style_dir() / style.file
    if path.is_file():
        return path
    if not os.environ.get(ENV_OFFLINE):
        try:
            _download(style, path)
            return path
        except StyleNotFound:
            raise
        except Exception:
            pass  # no network: fall through to the instructions
    raise StyleNotFound(
        f"style {name!r} needs {style.file}: put it in {style_dir()} (or point {ENV_DIR} at its folder), "
        f"or download it from {style.url}"
    )


def recommended(name: str, kind: str) -> dict:
    """Recommended loss weights of a style for ``kind`` ("gatys" or "fast"), {} if none."""
    weights = get(name).weights or {}
    if kind not in ("gatys", "fast"):
        raise ConfigError(f"unknown weight kind {kind!r}")
    return dict(weights.get(kind, {}))
