"""Named styles: ``<name>.yaml`` -> painting metadata + a local image file.

Styles are described by ``configs/styles/<name>.yaml`` (shipped; the public-domain painting
ships beside it as package data) and by ``<style folder>/<name>.yaml`` (yours: adds a style, or
replaces a shipped one's description). The style folder is ``$STYLE_ZOO_STYLE_DIR``, else
``$XDG_CACHE_HOME/style-zoo/styles``, else ``~/.cache/style-zoo/styles``.

A style's image is looked up, in order: the style folder (an override: used as it is), then the
painting beside the style's YAML (a shipped one must match its sha256), then the YAML's URL
(downloaded into the style folder and verified, unless ``STYLE_ZOO_OFFLINE`` is set). If none
works, the error says exactly where to put the file.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import statistics
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import yaml

from lit_modules.errors import ConfigError, StyleZooError, one_line
from train.config import TrainConfig, configs_dir
from zoo.media.files import mkstemp_beside

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
    file: str  # the painting's file name (beside the YAML, or in the style folder)
    url: str = ""  # where the painting comes from (its source); downloaded from if no local copy
    sha256: str = ""  # of the shipped / downloaded painting
    weights: dict = field(default_factory=dict)  # recommended {"gatys": {...}, "fast": {...}}
    config: Path | None = field(default=None, compare=False)  # the YAML this came from

    def meta(self) -> dict:
        return {"name": self.name, "title": self.title, "artist": self.artist, "year": self.year, "license": self.license}


REQUIRED = ("title", "artist", "year", "license", "file")
OPTIONAL = ("url", "sha256", "weights")


def style_dir() -> Path:
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "style-zoo" / "styles"


def package_dir() -> Path:
    """Where the shipped style YAMLs and their paintings live (``configs/styles``, package data)."""
    return configs_dir() / "styles"


def _configs() -> dict[str, Path]:
    """name -> YAML; the style folder's YAMLs add styles and replace shipped ones of the same name."""
    found = {p.stem: p for p in sorted(package_dir().glob("*.yaml"))}
    user = style_dir()
    if user.is_dir():
        found.update({p.stem: p for p in sorted(user.glob("*.yaml")) if p.is_file()})
    return found


def names() -> list[str]:
    return sorted(_configs())


def get(name: str) -> Style:
    """The frozen config of a named style; unknown names list the valid ones."""
    configs = _configs()
    if name not in configs:
        close = difflib.get_close_matches(name, configs, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise StyleNotFound(f"unknown style {name!r}; {hint}valid styles: {', '.join(sorted(configs))}")
    path = configs[name]
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read this style ({one_line(e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a style YAML must be a mapping with {', '.join(REQUIRED)}")
    missing = [k for k in REQUIRED if not data.get(k)]
    unknown = sorted(set(data) - set(REQUIRED) - set(OPTIONAL))
    if missing or unknown:
        what = "; ".join(x for x in (f"missing {', '.join(missing)}" if missing else "",
                                     f"unknown keys {', '.join(unknown)}" if unknown else "") if x)
        raise ConfigError(f"{path}: {what} (a style needs {', '.join(REQUIRED)}; may give {', '.join(OPTIONAL)})")
    values = {k: str(v) for k, v in data.items() if k != "weights"}
    return Style(name=name, weights=data.get("weights") or {}, config=path, **values)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=64)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def _verified(style: Style, path: Path) -> Path:
    """A shipped painting, after its sha256 check (once per process and file version)."""
    st = path.stat()
    got = _sha256_cached(str(path), st.st_size, st.st_mtime_ns)
    if style.sha256 and got != style.sha256:
        raise StyleNotFound(f"{path} is damaged (sha256 {got[:12]}..., expected {style.sha256[:12]}...): "
                            f"reinstall style-zoo, or put a good {style.file} in {style_dir()}")
    return path


def locate(style: Style) -> tuple[Path | None, str]:
    """(local image file or None, where it is: "style folder", "shipped", "download" or "missing"); no network."""
    user = style_dir() / style.file
    if user.is_file():
        return user, "style folder"
    beside = style.config.parent / style.file if style.config is not None else None
    if beside is not None and beside.is_file():
        return _verified(style, beside), ("shipped" if style.config.parent == package_dir() else "style folder")
    return None, ("download" if style.url and not os.environ.get(ENV_OFFLINE) else "missing")


def _download(style: Style, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = mkstemp_beside(dest, suffix="")
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(style.url, timeout=20) as r:
            while block := r.read(1 << 20):
                f.write(block)
        got = sha256_file(tmp)
        if style.sha256 and got != style.sha256:
            raise StyleNotFound(f"downloaded {style.url} but its sha256 is {got[:12]}..., expected {style.sha256[:12]}...")
        os.replace(tmp, dest)
    finally:
        Path(tmp).unlink(missing_ok=True)


def resolve(name: str) -> Path:
    """The local image file of a named style: style folder, then shipped, then downloaded once if allowed."""
    style = get(name)
    path, where = locate(style)
    if path is not None:
        return path
    dest = style_dir() / style.file
    if where == "download":
        try:
            _download(style, dest)
            return dest
        except StyleNotFound:
            raise
        except Exception:
            pass  # no network: fall through to the instructions
    source = f", or download it from {style.url}" if style.url else ""
    raise StyleNotFound(f"style {name!r} needs {style.file}: put it in {style_dir()} (or point {ENV_DIR} at its folder){source}")


def recommended(name: str, kind: str) -> dict:
    """Recommended loss weights of a style for ``kind`` ("gatys" or "fast"), {} if none."""
    weights = get(name).weights or {}
    if kind not in ("gatys", "fast"):
        raise ConfigError(f"unknown weight kind {kind!r}")
    return dict(weights.get(kind, {}))


def catalogue(zoo: str | None = None) -> list[dict]:
    """Every named style: its painting's provenance, where its image comes from, and the models trained on it.

    ``models`` lists ``(ref, layer)`` for the latest version of each zoo model (the user's zoo
    ``zoo``, then the built-in layer) whose style is this one. Reads only local files.
    """
    from .summary import model_rows

    by_style: dict[str, list[tuple[str, str]]] = {}
    for row in model_rows(zoo):
        if row.style:
            by_style.setdefault(row.style, []).append((row.ref, row.layer))
    rows = []
    for name in names():
        style = get(name)
        try:
            path, where = locate(style)
        except StyleNotFound:
            path, where = None, "damaged"
        row = {k: v for k, v in dataclasses.asdict(style).items() if k not in ("weights", "config")}
        rows.append({**row, "painting": where, "path": str(path) if path else "", "models": by_style.get(name, [])})
    return rows


# ------------------------------------------------------------------------------------------------
# the paintings a training run learns (train.run.run_train's style_inputs)
# ------------------------------------------------------------------------------------------------
def _one_style(cfg: TrainConfig, name: str | None, notice: Callable[[str], None] = print):
    from lit_modules.vgg import check_side
    from train.schedule import painting_read_size, scaled_to_painting, stages
    from zoo.media.images import ENLARGED, check_not_flat, enlargement_note, pil_to_tensor, read_image, resize_long_side

    path = resolve(name) if name else Path(cfg.style_image).expanduser()
    img = read_image(path)
    wanted = cfg.painting_size()
    read = painting_read_size(max(img.size), wanted)  # its own size if smaller: run_train scales the stages to it
    scaled = scaled_to_painting(cfg, read)
    if name:
        s = get(name)
        meta = {"name": s.name, "title": s.title, "artist": s.artist, "file": s.file, "sha256": sha256_file(path)}
        recs = recommended(name, "fast")
    else:
        meta = {"name": path.stem, "title": path.stem, "artist": "", "file": path.name, "sha256": sha256_file(path)}
        recs = untuned_weights(scaled.style_size)  # the calibration's references at the first stage's size
    smallest = min(s.style_size for s in stages(scaled))  # the size the run reads it at, least of its stages
    check_side(f"the painting {path.name}", (img.height, img.width), smallest, cfg.style_layers)
    note = enlargement_note(f"the painting {path.name}", img.size, read, "the run")
    if note:
        notice(note)
    elif read * ENLARGED < wanted:
        notice(f"the painting {path.name} is {img.width}x{img.height} px, under the {wanted} px the run reads paintings at: "
               f"it is read at its own size, every stage's painting scaled by {read / wanted:.2f} (strokes that much smaller, "
               f"not soft); a copy {wanted} px or more paints at the usual scale")
    x = pil_to_tensor(resize_long_side(img, read))  # (1, 3, H, W)
    check_not_flat(x, f"the painting {path.name}")
    return meta, x, recs


def untuned_weights(style_size: int) -> dict:
    """Weights for a painting with no recommendation: the named styles' median content and TV
    weights, and their paintings with their tuned style weights, from which ``train.calibrate``
    derives this painting's style weight (a named style whose painting is missing is left out)."""
    from zoo.media.images import load_image

    tuned = {n: recommended(n, "fast") for n in names()}
    refs = []
    for n, w in tuned.items():
        try:
            path, _ = locate(get(n))
        except StyleNotFound:
            path = None
        if path is not None and "style_weight" in w:
            refs.append((load_image(path, style_size), float(w["style_weight"])))
    out = {k: statistics.median(float(w[k]) for w in tuned.values() if k in w) for k in ("content_weight", "tv_weight")
           if any(k in w for w in tuned.values())}
    return {**out, "calibrate": refs} if refs else out


def training_inputs(cfg: TrainConfig, notice: Callable[[str], None] = print):
    """(style metadata, style image (1, 3, H, W), recommended weights) -- for several named styles
    (``--style a,b,c``), lists of metadata and images, and the recommendations with a per-style
    ``style_weight`` list. ``notice`` hears of a painting too small for the run."""
    names = cfg.style_names()
    if len(names) <= 1:
        return _one_style(cfg, names[0] if names else None, notice)
    if len(set(names)) != len(names):
        raise ConfigError(f"--style lists a style twice: {cfg.style}")
    per = [_one_style(cfg, n, notice) for n in names]
    recs = [r for _, _, r in per]

    def mean(key: str, fallback: float) -> float:
        vals = [float(r[key]) for r in recs if key in r]
        return sum(vals) / len(vals) if vals else fallback

    recommended_weights = {"content_weight": mean("content_weight", 1.0), "tv_weight": mean("tv_weight", 1.0),
                           "style_weight": [float(r.get("style_weight", 1.0)) for r in recs]}
    return [m for m, _, _ in per], [i for _, i, _ in per], recommended_weights
