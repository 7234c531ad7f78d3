"""``zoo train``: resolve the config (preset or resumed run + overrides), check every input, then
``train.trainer.fit``.

What a run needs from outside ``train/`` comes in as two functions, so this package never imports
``zoo``: ``style_inputs(cfg)`` reads the painting(s) (named styles live in ``zoo.registry``), and
``from_model(ref)`` reads a zoo model for ``--init NAME[@N]``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

import torch

from lit_modules.errors import ConfigError

from .config import TrainConfig, build_config, load_run_config, parse_floats, resolve_weights, significant
from .schedule import resize_painting, scaled_to_painting
from .warmstart import WarmSource, init_state

# cfg -> (style metadata, style image (1, 3, H, W), recommended weights); lists of the first two
# for several styles (--style a,b,c)
StyleInputs = Callable[[TrainConfig], tuple]


def calibrate(cfg: TrainConfig, painting, references) -> dict:
    """train.calibrate on the run's own loss and its held-out preview photos, times the preset's gain."""
    from lit_modules.losses import PerceptualLoss

    from .calibrate import calibrated_style_weight
    from .data import ContentDataModule

    photos = ContentDataModule(cfg.data, image_size=cfg.image_size, preview_count=cfg.preview_count,
                               streaming=cfg.streaming).preview_batch()
    if photos is None:  # a folder too small to hold photos out: its first ones
        data = ContentDataModule(cfg.data, image_size=cfg.image_size, preview_count=0)
        data.setup()
        photos = torch.stack([data.train_set[i][0] for i in range(min(4, len(data.train_set)))])
    loss = PerceptualLoss(content=cfg.content_layers, style=cfg.style_layers, backbone=cfg.backbone, pooling=cfg.pooling)
    found = calibrated_style_weight(loss, photos, painting, references)
    if cfg.calibration_gain == 1.0:
        return found
    return {**found, "gain": cfg.calibration_gain, "style_weight": significant(found["style_weight"] * cfg.calibration_gain)}


def one_painting(style: str | None, style_image: str | None) -> bool:
    """A painting of your own or one named style (not several): what --init nearest and the own recipe learn."""
    return bool(style_image) or (isinstance(style, str) and "," not in style)


def auto_preset(style: str | None, style_image: str | None, gpu: bool) -> str:
    """``--preset auto``: one painting (your own or one named style) learns from the nearest zoo model,
    ``own-gpu`` on a GPU (a fixed number of photos: about a minute on a data-centre GPU), ``own`` on a
    CPU (a 13-minute budget); several styles at once train one network from scratch, with the
    paper's recipe on a GPU, ``quick`` on a CPU."""
    if one_painting(style, style_image):
        return "own-gpu" if gpu else "own"
    return "default" if gpu else "quick"


def run_train(overrides: dict, style_inputs: StyleInputs, preset: str | None = None, resume: str | Path | None = None,
              progress: bool = True, before_fit: Callable[[], None] | None = None,
              from_model: Callable[[str], WarmSource] | None = None, notice: Callable[[str], None] = print,
              nearest: Callable[[str | None, str | None], tuple[str, float]] | None = None) -> dict:
    """Train a new run (preset + overrides) or continue ``resume`` (its config.yaml + overrides).

    ``before_fit`` runs once data, style and config are checked, before Lightning is imported
    (slow): bad arguments fail in about a second, and the CLI quiets Lightning's logging there.
    ``nearest(painting file, None)`` or ``nearest(None, named style)`` -> (zoo model, style
    distance) resolves ``--init nearest``; a named style's own models are passed over.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    restart = False
    if isinstance(overrides.get("style_weight"), str):  # the CLI's '5' or '5,4,2' (one per style)
        sw = parse_floats(overrides["style_weight"], "--style-weight")
        overrides["style_weight"] = sw[0] if len(sw) == 1 else sw
    if resume is not None:
        run_dir = Path(resume).expanduser()
        cfg = load_run_config(run_dir)
        from .runs import latest_checkpoint  # torch: only for --resume

        if latest_checkpoint(run_dir) is None:  # stopped before its first checkpoint: start it again, same id
            notice(f"{run_dir} has no checkpoint yet; starting it again from step 0")
            restart = True
        changed = {k for k in ("style", "style_image") if k in overrides and overrides[k] != getattr(cfg, k)}
        if changed:
            raise ConfigError(f"--resume continues {run_dir} with its own style; do not pass --{'/--'.join(sorted(changed)).replace('_', '-')}")
        cfg = cfg.update(**overrides, out=str(run_dir.parent), run_id=run_dir.name)
    else:
        gpu = torch.cuda.is_available() and overrides.get("accelerator") != "cpu"  # --accelerator cpu on a GPU machine
        if preset in (None, "auto"):
            preset = auto_preset(overrides.get("style"), overrides.get("style_image"), gpu)
        cfg = build_config(preset, **overrides)
        if preset == "own-gpu" and not gpu:
            notice(f"own-gpu is sized for a GPU ({cfg.max_steps:,} steps of {cfg.batch_size} photos at {cfg.image_size} px); "
                   f"on this CPU its {cfg.minutes:g}-minute limit ends it long before: --preset own is the CPU recipe")
    cfg.check()
    if cfg.data.startswith("hf:") and cfg.data[3:].strip():
        from .hf_offline import check_hf_dataset

        check_hf_dataset(cfg.data[3:].strip())  # offline and not cached: fail before the slow imports
    from .data import check_source

    check_source(cfg.data)  # the user's own --data first: its error is the likeliest
    meta, image, recommended = style_inputs(cfg)
    if isinstance(image, torch.Tensor):  # a painting smaller than the run reads paintings at comes at its own size
        cfg = scaled_to_painting(cfg, max(image.shape[-2:]))
    recommended = dict(recommended or {})
    references = recommended.pop("calibrate", None)
    if cfg.style_weight is None and references:  # a painting nobody tuned: the named styles' balance
        found = calibrate(cfg, resize_painting(image, cfg.style_size), references)  # at the first stage's size
        recommended = {**recommended, "style_weight": found["style_weight"]}
        meta = {**meta, "calibration": found}  # kept in config.yaml and the card
        notice(f"style weight {found['style_weight']:g} for this painting (calibrated: {found.get('gain', 1):g} x K {found['k']:g} / S0 {found['s0']:g}; "
               "--style-weight sets it)")
    calibrated = "calibration" in (meta if isinstance(meta, dict) else {})
    if resume is None and cfg.content_limit is not None and not calibrated:  # a weight given or tuned by hand is kept
        cfg = dataclasses.replace(cfg, content_limit=None)
    cfg = resolve_weights(cfg, recommended)
    names = [m["name"] for m in meta] if isinstance(meta, list) else [meta["name"]]
    if isinstance(cfg.style_weight, list) and len(cfg.style_weight) != len(names):
        raise ConfigError(f"{len(cfg.style_weight)} style weights for {len(names)} style(s) ({', '.join(names)}): give one, or one per style")
    init = None
    resuming = resume is not None and not restart
    from_nearest = cfg.init == "nearest"
    if from_nearest and not resuming:
        if not one_painting(cfg.style, cfg.style_image) or nearest is None:
            raise ConfigError("--init nearest needs --style-image or one --style (the painting to find the nearest zoo model for)")
        ref, d = nearest(cfg.style_image, None) if cfg.style_image else nearest(None, cfg.style)
        notice(f"warm start from {ref} (its painting's style distance to yours: {d:.3f})")
        cfg = cfg.update(init=ref)
    if cfg.init and not resuming:
        state, arch, record = init_state(cfg.init, names, from_model)
        clash = [k for k, v in arch.items() if k in overrides and float(overrides[k]) != v]
        if clash:
            raise ConfigError(f"--init {cfg.init} has {', '.join(f'{k} {arch[k]:g}' for k in clash)}; "
                              f"drop --{'/--'.join(k.replace('_', '-') for k in clash)} (a warm start keeps the network's shape)"
                              + (", or train from scratch with --preset quick" if from_nearest else ""))
        cfg, init = cfg.update(**arch), {"state": state, "record": record}
    if before_fit is not None:
        before_fit()
    from .trainer import fit  # lightning import: only once arguments are valid

    return fit(cfg, meta, image, resume=resuming, progress=progress, init=init)
