"""`zoo train`: resolve the style (named or a file) and the config, then run `train.trainer.fit`."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from lit_modules.errors import ConfigError
from train.config import TrainConfig, build_config, load_run_config, parse_floats, resolve_weights

from . import images, styles


def style_names(cfg: TrainConfig) -> list[str]:
    """``--style a,b,c`` trains one conditional network for several named styles."""
    return [n.strip() for n in str(cfg.style).split(",") if n.strip()] if cfg.style else []


def _one_style(cfg: TrainConfig, name: str | None):
    if name:
        path = styles.resolve(name)
        s = styles.get(name)
        meta = {"name": s.name, "title": s.title, "artist": s.artist, "file": s.file, "sha256": styles.sha256_file(path)}
        recommended = styles.recommended(name, "fast")
    else:
        path = Path(cfg.style_image).expanduser()
        meta = {"name": path.stem, "title": path.stem, "artist": "", "file": path.name,
                "sha256": styles.sha256_file(path) if path.is_file() else ""}
        recommended = {}
    return meta, images.load_image(path, cfg.style_size), recommended


def style_inputs(cfg: TrainConfig):
    """(style metadata, style image (1, 3, H, W), recommended weights) -- for several named styles,
    lists of metadata and images, and the recommendations with a per-style ``style_weight`` list."""
    names = style_names(cfg)
    if len(names) <= 1:
        return _one_style(cfg, names[0] if names else None)
    if len(set(names)) != len(names):
        raise ConfigError(f"--style lists a style twice: {cfg.style}")
    per = [_one_style(cfg, n) for n in names]
    recs = [r for _, _, r in per]

    def mean(key: str, fallback: float) -> float:
        vals = [float(r[key]) for r in recs if key in r]
        return sum(vals) / len(vals) if vals else fallback

    recommended = {"content_weight": mean("content_weight", 1.0), "tv_weight": mean("tv_weight", 1.0),
                   "style_weight": [float(r.get("style_weight", 1.0)) for r in recs]}
    return [m for m, _, _ in per], [i for _, i, _ in per], recommended


def run_train(overrides: dict, preset: str | None = None, resume: str | Path | None = None, progress: bool = True,
              before_fit: Callable[[], None] | None = None) -> dict:
    """Train a new run (preset + overrides) or continue ``resume`` (its config.yaml + overrides).

    ``before_fit`` runs once data, style and config are checked, before Lightning is imported
    (slow): bad arguments fail in about a second, and the CLI quiets Lightning's logging there.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if isinstance(overrides.get("style_weight"), str):  # the CLI's '5' or '5,4,2' (one per style)
        sw = parse_floats(overrides["style_weight"], "--style-weight")
        overrides["style_weight"] = sw[0] if len(sw) == 1 else sw
    if resume is not None:
        run_dir = Path(resume).expanduser()
        cfg = load_run_config(run_dir)
        changed = {k for k in ("style", "style_image") if k in overrides and overrides[k] != getattr(cfg, k)}
        if changed:
            raise ConfigError(f"--resume continues {run_dir} with its own style; do not pass --{'/--'.join(sorted(changed)).replace('_', '-')}")
        cfg = cfg.update(**overrides, out=str(run_dir.parent), run_id=run_dir.name)
    else:
        if preset in (None, "auto"):
            import torch

            preset = "default" if torch.cuda.is_available() else "quick"
        cfg = build_config(preset, **overrides)
    cfg.check()
    if cfg.data.startswith("hf:") and cfg.data[3:].strip():
        from train.hf_offline import check_hf_dataset

        check_hf_dataset(cfg.data[3:].strip())  # offline and not cached: fail before the slow imports
    from train.data import check_source

    check_source(cfg.data)  # the user's own --data first: its error is the likeliest
    meta, image, recommended = style_inputs(cfg)
    cfg = resolve_weights(cfg, recommended)
    names = [m["name"] for m in meta] if isinstance(meta, list) else [meta["name"]]
    if isinstance(cfg.style_weight, list) and len(cfg.style_weight) != len(names):
        raise ConfigError(f"{len(cfg.style_weight)} style weights for {len(names)} style(s) ({', '.join(names)}): give one, or one per style")
    init = None
    if cfg.init and resume is None:
        from zoo.warmstart import init_state

        state, arch, record = init_state(cfg.init, names)
        clash = [k for k, v in arch.items() if k in overrides and float(overrides[k]) != v]
        if clash:
            raise ConfigError(f"--init {cfg.init} has {', '.join(f'{k} {arch[k]:g}' for k in clash)}; "
                              f"drop --{'/--'.join(k.replace('_', '-') for k in clash)} (a warm start keeps the network's shape)")
        cfg, init = cfg.update(**arch), {"state": state, "record": record}
    if before_fit is not None:
        before_fit()
    from train.trainer import fit  # lightning import: only once arguments are valid

    return fit(cfg, meta, image, resume=resume is not None, progress=progress, init=init)
