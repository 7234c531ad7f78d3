"""TrainConfig: every setting of a fast-style training run. Torch-free so the CLI reads it fast.

Defaults live in one place: the dataclass below; ``configs/train/<preset>.yaml`` override some of
them, and CLI flags override the preset. The resolved config is written to ``<run>/config.yaml``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from lit_modules.errors import ConfigError
from lit_modules.hw import check_train_precision

LR_SCHEDULES = ("none", "cosine", "step")
LAST_STAGE_KEYS = ("at", "image_size", "style_size", "batch_size", "lr")
DEFAULT_HF_DATA = "hf:justram/COCO2014-Images"  # image-only COCO 2014 train (parquet), as in Johnson et al.



def significant(v: float, digits: int = 6) -> float:
    """``v`` to ``digits`` significant figures, for the weights a run derives (calibrated, at the
    end, the content limit's rate): a faint painting's weight is small (7e-4 for one at 5 % of its
    contrast), and decimal places would round it away."""
    return float(f"{v:.{digits}g}")

@dataclass
class TrainConfig:
    """Every setting of `zoo train`; presets and CLI flags override these fields."""

    # what to learn
    style: str | None = None  # a named style (configs/styles) ...
    style_image: str | None = None  # ... or a style image file
    style_size: int = 512  # long side of the style image when its Gram targets are computed, px
    # data
    data: str = DEFAULT_HF_DATA  # "hf:<dataset>" or a local folder of images
    streaming: bool = False  # hf: stream instead of downloading the whole dataset
    image_size: int = 256  # training crop, px
    photo_size: int | None = None  # photos' short side before the crop, px (None: image_size, the whole photo)
    batch_size: int = 4  # per device
    num_workers: int = -1  # -1: 0 on CPU, a few per GPU
    preview_count: int = 4  # fixed photos whose stylised grid is logged (held out of training)
    # network
    width: float = 1.0
    num_residual: int = 5
    init: str | None = None  # start from a trained network: a zoo model NAME[@N] or a run checkpoint
    # loss
    backbone: str = "caffe"
    pooling: str = "max"
    content_layers: dict = field(default_factory=lambda: {"relu2_2": 1.0})
    style_layers: dict = field(default_factory=lambda: {"relu1_2": 1.0, "relu2_2": 1.0, "relu3_3": 1.0, "relu4_3": 1.0})
    content_weight: float | None = None  # None: the named style's recommendation (else 1.0)
    style_weight: float | list | None = None  # a list: one weight per style (--style a,b,c)
    tv_weight: float | None = None
    # a painting nobody tuned: style weight = gain x K / S0 (train.calibrate); a warm-started run
    # keeps more of the photo than one from scratch, so the own preset paints harder (bench/own_style.py)
    calibration_gain: float = 1.0
    # lower the style term during the run while the content term (over its weight: the loss's relative
    # distance, MSE / mean|F|^2) runs above this on the training crops (FastStyle.control): a guard
    # against a calibrated weight that paints the photo away. Only for a calibrated weight (train.run):
    # a weight given (--style-weight) or tuned for a named style is kept.
    content_limit: float | None = None
    # optimisation
    lr: float = 1e-3
    lr_schedule: str = "none"  # none | cosine | step (x0.1 at 2/3 of the run)
    max_steps: int = 40000
    max_time: str | None = None  # "DD:HH:MM:SS"; stops early, checkpoint kept
    minutes: float | None = None  # time budget: the schedule is fitted to it (max_steps is then only a cap)
    # a second stage: {at: fraction of the run, image_size, style_size, batch_size, lr} (unset keys: the first's)
    last_stage: dict | None = None
    seed: int = 0
    # hardware
    accelerator: str = "auto"  # auto | cpu | gpu
    devices: str = "auto"  # auto | N | "0,1"
    num_nodes: int = 1
    strategy: str = "auto"  # auto (DDP when > 1 device) | ddp | ddp_spawn | ...
    precision: str = "auto"  # auto (bf16-mixed where fast, else 32-true) | fp32 | bf16 | 16-mixed
    channels_last: bool = False
    compile: bool = False
    # bookkeeping
    log_every: int = 10  # steps between loss logs
    image_every: int = 200  # steps between logged preview grids
    checkpoint_every: int = 500  # steps between kept checkpoints (last.ckpt is always kept)
    out: str = "runs"
    run_id: str | None = None  # default: <style>-<timestamp>
    preset: str | None = None

    @classmethod
    def fields(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    def update(self, **overrides) -> "TrainConfig":
        unknown = set(overrides) - self.fields()
        if unknown:
            raise ConfigError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def check(self) -> None:
        if (self.style is None) == (self.style_image is None):
            raise ConfigError("give exactly one of --style NAME or --style-image PATH")
        if self.image_size < 16:
            raise ConfigError(f"image size must be >= 16 px, got {self.image_size}")
        if self.photo_size is not None and self.photo_size < self.image_size:
            raise ConfigError(f"photo size ({self.photo_size} px) must be >= the crop (image size {self.image_size} px)")
        if self.style_size < 16:
            raise ConfigError(f"style size must be >= 16 px, got {self.style_size}")
        if self.batch_size < 1:
            raise ConfigError(f"batch size must be >= 1, got {self.batch_size}")
        if self.max_steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.max_steps}")
        if self.width <= 0 or self.num_residual < 0:
            raise ConfigError("width must be > 0 and num_residual >= 0")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"unknown lr schedule {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}")
        check_train_precision(self.precision)
        if not (0 < self.calibration_gain <= 100):
            raise ConfigError(f"calibration gain must be > 0 (and at most 100), got {self.calibration_gain}")
        if self.content_limit is not None and not (0 < self.content_limit <= 100):
            raise ConfigError(f"content limit must be > 0 (and at most 100), got {self.content_limit}")
        if self.minutes is not None and not (0 < self.minutes <= 60 * 24 * 30):
            raise ConfigError(f"minutes must be > 0 (and at most 30 days), got {self.minutes}")
        if self.last_stage:
            self.check_last_stage()
        for name in ("content_weight", "style_weight", "tv_weight"):
            v = getattr(self, name)
            if v is not None and min(v if isinstance(v, list) else [v]) < 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be >= 0, got {v}")
        if self.num_nodes < 1:
            raise ConfigError(f"num nodes must be >= 1, got {self.num_nodes}")
        if min(self.log_every, self.image_every, self.checkpoint_every) < 1:
            raise ConfigError("log_every, image_every and checkpoint_every must be >= 1")

    def check_last_stage(self) -> None:
        s = self.last_stage
        unknown = set(s) - set(LAST_STAGE_KEYS)
        if unknown or "at" not in s:
            raise ConfigError(f"last_stage needs 'at' and takes only {', '.join(LAST_STAGE_KEYS)}; got {', '.join(sorted(s))}")
        if not 0 < s["at"] < 1:
            raise ConfigError(f"last_stage at must be a fraction of the run between 0 and 1, got {s['at']}")
        for k in ("image_size", "style_size"):
            if k in s and (s[k] != int(s[k]) or s[k] < 16):
                raise ConfigError(f"last_stage {k} must be a whole number >= 16 px, got {s[k]}")
        if "batch_size" in s and (s["batch_size"] != int(s["batch_size"]) or s["batch_size"] < 1):
            raise ConfigError(f"last_stage batch_size must be a whole number >= 1, got {s['batch_size']}")
        if "lr" in s and not s["lr"] > 0:
            raise ConfigError(f"last_stage lr must be > 0, got {s['lr']}")

    def painting_size(self) -> int:
        """The long side the painting is read at: the largest of its stages' sizes."""
        return max(int(self.style_size), int((self.last_stage or {}).get("style_size", 0)))

    def style_names(self) -> list[str]:
        """``--style a,b,c`` trains one conditional network for several named styles."""
        return [n.strip() for n in str(self.style).split(",") if n.strip()] if self.style else []

    def to_dict(self) -> dict:
        return asdict(self)


def configs_dir() -> Path:
    """The ``configs`` folder (presets in ``train/``, named styles in ``styles/``): package data of
    ``train`` in an installed wheel, the repository's own folder in a source checkout."""
    here = Path(__file__).resolve().parent
    shipped = here / "configs"
    return shipped if shipped.is_dir() else here.parent / "configs"


_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "dict": (dict,), "list": (list,), "None": (type(None),)}


def check_types(data: object, source: str) -> dict:
    """A mapping read from a file (a preset, a run's config.yaml) -> the same mapping, each known
    setting of TrainConfig's type; anything else -> one ConfigError line naming the setting."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: not a mapping of settings (got {type(data).__name__})")
    for f in dataclasses.fields(TrainConfig):
        if f.name not in data:
            continue
        v, kinds = data[f.name], [k.strip() for k in str(f.type).split("|")]
        ok = any(isinstance(v, _TYPES[k]) and not (isinstance(v, bool) and k in ("int", "float")) for k in kinds)
        if ok and isinstance(v, float) and not math.isfinite(v):
            ok = False
        if ok and isinstance(v, list):  # one style weight per style
            ok = all(isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) for w in v)
        if ok and isinstance(v, dict):  # {vgg layer: weight}
            ok = all(isinstance(k, str) and isinstance(w, (int, float)) and not isinstance(w, bool) for k, w in v.items())
        if not ok:
            raise ConfigError(f"{source}: {f.name} must be {' or '.join(kinds)}, got {v!r:.60}")
    return data


def presets() -> list[str]:
    return sorted(p.stem for p in (configs_dir() / "train").glob("*.yaml"))


def load_preset(name: str, _seen: tuple[str, ...] = ()) -> dict:
    """The overrides a preset yaml makes to TrainConfig's defaults. ``extends: OTHER`` starts from
    another preset's settings (a variant states only what it changes, so a retuned setting of the
    recipe it shares is written once)."""
    if name not in presets():
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(presets())}")
    if name in _seen:
        raise ConfigError(f"preset {name!r} extends itself ({' -> '.join((*_seen, name))})")
    raw = yaml.safe_load((configs_dir() / "train" / f"{name}.yaml").read_text()) or {}
    base = raw.pop("extends", None) if isinstance(raw, dict) else None
    data = check_types(raw, f"preset {name}")
    unknown = set(data) - TrainConfig.fields()
    if unknown:
        raise ConfigError(f"preset {name!r} has unknown setting(s): {', '.join(sorted(unknown))}")
    return data if base is None else {**load_preset(str(base), (*_seen, name)), **data}


def build_config(preset: str | None = "quick", **overrides) -> TrainConfig:
    """Dataclass defaults <- preset yaml <- non-None overrides."""
    cfg = TrainConfig()
    if preset:
        cfg = cfg.update(**load_preset(preset), preset=preset)
    return cfg.update(**overrides)


def load_run_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a training run directory (no config.yaml)")
    try:
        data = yaml.safe_load(path.read_text(errors="replace"))
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        raise ConfigError(f"{path}: not valid YAML{f' (line {where.line + 1})' if where else ''}; "
                          "fix it or start a new run") from None
    data = check_types({} if data is None else data, str(path))
    try:
        cfg = TrainConfig().update(**{k: v for k, v in data.items() if k in TrainConfig.fields()})
        cfg.check()
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return cfg


def parse_floats(text: str | None, option: str) -> list[float] | None:
    """'5,4,2' -> [5.0, 4.0, 2.0] (a CLI option's comma-separated numbers); a bad one -> ConfigError."""
    if text is None:
        return None
    try:
        return [float(v) for v in str(text).split(",")]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: not a number or a comma-separated list of numbers") from None


# Used when neither the CLI nor the named style's recommendation gives a weight.
FALLBACK_WEIGHTS = {"content_weight": 1.0, "style_weight": 100.0, "tv_weight": 1.0}


def resolve_weights(cfg: TrainConfig, recommended: dict | None) -> TrainConfig:
    """Fill unset loss weights: the style's recommendation, else FALLBACK_WEIGHTS."""
    recommended = recommended or {}
    fill = {}
    for name, fallback in FALLBACK_WEIGHTS.items():
        if getattr(cfg, name) is None:
            value = recommended.get(name, fallback)
            fill[name] = [float(v) for v in value] if isinstance(value, list) else float(value)
    return cfg.update(**fill)
