"""The run-directory format: written by ``train.trainer.fit``, read here by ``zoo publish`` and
``zoo train --init``.

    <run>/config.yaml             the resolved TrainConfig (+ style_info, hardware, init_record)
    <run>/checkpoints/last.ckpt   Lightning checkpoints (+ stepNNNNNNN.ckpt kept every checkpoint_every)
    <run>/summary.json            written when the run ends: steps, wall time, images/s, hardware

A checkpoint's ``hyper_parameters`` are the network's config; only the TransformerNet weights
(``state_dict`` keys ``net.*``) are read, with ``weights_only`` loading (no unpickling of code).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import torch
import yaml

from lit_modules.errors import StyleZooError, as_url, one_line
from lit_modules.transformer_net import TransformerNet, norm_keys

from .config import significant


class RunError(StyleZooError):
    """A run directory or checkpoint cannot be read."""


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest of a run's ``last*.ckpt`` (Lightning names one ``last-v1.ckpt`` when ``last.ckpt``
    exists), else its newest ``*.ckpt``; None when the run has none yet."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return None
    by_time = lambda q: (q.stat().st_mtime_ns, q.name)  # noqa: E731
    for pattern in ("last*.ckpt", "*.ckpt"):
        found = sorted((q for q in folder.glob(pattern) if q.is_file()), key=by_time)
        if found:
            return found[-1]
    return None


def find_checkpoint(source: str | os.PathLike) -> tuple[Path, Path | None]:
    """RUN_DIR or CHECKPOINT -> (checkpoint file, run dir or None)."""
    p = Path(source)
    if p.is_file():
        run = p.parent.parent if p.parent.name == "checkpoints" else None
        return p, run
    if p.is_dir():
        if (ckpt := latest_checkpoint(p)) is not None:
            return ckpt, p
        raise RunError(f"{p}: no checkpoints/last.ckpt (or any checkpoints/*.ckpt) in this run folder")
    if as_url(source):  # a URL pasted where a local run goes: say so, in the form it was typed
        raise RunError(f"{as_url(source)}: a URL; give a local run folder or checkpoint file")
    raise RunError(f"{p}: no such run folder or checkpoint file")


def plain(x):
    """JSON-able copy (paths and other objects as strings)."""
    return json.loads(json.dumps(x, default=str))


def run_init_record(run_dir: Path) -> dict | None:
    """The warm start's record kept in a run's config.yaml (a resumed run reports it too, and so does
    a checkpoint of a run stopped before it wrote summary.json)."""
    try:
        return (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("init_record")
    except (OSError, yaml.YAMLError):
        return None


def read_run(source: str | os.PathLike) -> dict:
    """{"weights": {name: tensor}, "config": dict, "style": dict | list, "training": dict, "checkpoint": path}."""
    ckpt_path, run = find_checkpoint(source)
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RunError(f"{ckpt_path}: cannot read checkpoint ({type(e).__name__}: {one_line(e, 120)})") from None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise RunError(f"{ckpt_path}: not a Lightning checkpoint (no state_dict)")
    weights = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
    if not weights:
        raise RunError(f"{ckpt_path}: no TransformerNet weights (state_dict keys 'net.*'); is this a FastStyle checkpoint?")
    hp = plain(dict(ckpt.get("hyper_parameters") or {}))
    if "config" in hp and isinstance(hp["config"], dict) and "width" not in hp:
        hp = hp["config"]  # a module that saved one config dict
    style = hp.pop("style", None) or {}
    training = {"steps": ckpt.get("global_step"), "precision": hp.get("precision")}
    scale = state.get("style_log_scale")  # a content limit's controller (FastStyle.control): this checkpoint's weight
    if isinstance(scale, torch.Tensor) and scale.numel() == 1 and isinstance(hp.get("style_weight"), (int, float)):
        training["style_weight"] = significant(float(hp["style_weight"]) * math.exp(float(scale)))
    # the training time up to this checkpoint, all --resume legs (zoo train's Throughput callback state)
    timer = next((v for k, v in (ckpt.get("callbacks") or {}).items() if str(k).startswith("Throughput")), None)
    if isinstance(timer, dict) and isinstance(timer.get("wall_seconds"), (int, float)):
        training["wall_seconds"] = round(float(timer["wall_seconds"]), 2)
    if run is not None and (run / "summary.json").is_file():
        try:
            summary = json.loads((run / "summary.json").read_text())
        except ValueError:
            summary = {}
        if summary.get("steps") not in (None, training["steps"]):  # an earlier checkpoint of the run: its machine only
            summary = {k: summary[k] for k in ("hardware", "world_size", "init") if k in summary}
        training.update({k: v for k, v in summary.items() if v is not None and k not in training})
        for alias in ("wall_s", "seconds", "wall_time_s", "wall_time"):
            if alias in summary and "wall_seconds" not in training:
                training["wall_seconds"] = summary[alias]
    if run is not None and "init" not in training:  # a run stopped before its summary: the warm start is in config.yaml
        if record := run_init_record(run):
            training["init"] = record
    if training.get("steps") and "images_seen" not in training and hp.get("batch_size"):
        training["images_seen"] = int(training["steps"]) * int(hp["batch_size"]) * int(training.get("world_size", 1))
    return {"weights": weights, "config": hp, "style": style, "training": plain(training), "checkpoint": str(ckpt_path)}


def run_styles(run: dict) -> list[str]:
    """The style names a run's network holds (one for a plain network)."""
    st = run["style"]
    return [x.get("name", "") for x in st] if isinstance(st, list) else [st.get("name", "")]


def select_style(run: dict, style: str | None) -> dict:
    """A run whose network holds several styles (conditional instance norm) -> the plain network of
    one of them, with that style's record and a ``family`` (all styles, this one's index, and the
    hash of the shared convolutions, which ``zoo apply a+b`` checks before blending)."""
    if not isinstance(run["style"], list):
        if style and style != run["style"].get("name"):
            raise RunError(f"this run learned one style ({run['style'].get('name')}), not {style!r}")
        return run
    names = run_styles(run)
    if not style:
        raise RunError(f"this run's network holds {len(names)} styles; choose one with --style ({', '.join(names)}) or use --all-styles")
    if style not in names:
        raise RunError(f"this run has no style {style!r}; its styles: {', '.join(names)}")
    k = names.index(style)
    cfg = run["config"]
    net = TransformerNet.from_config(cfg, styles=len(names))
    try:
        net.load_state_dict(run["weights"])
    except RuntimeError as e:
        raise RunError(f"checkpoint weights do not fit a {len(names)}-style TransformerNet: {one_line(e, 160)}") from None
    weights = net.specialize(k).state_dict()
    sw = cfg.get("style_weight")
    config = {**cfg, "style_weight": sw[k] if isinstance(sw, list) else sw,
              "family": {"styles": names, "index": k, "shared_sha256": shared_hash(weights)}}
    return {**run, "weights": weights, "style": run["style"][k], "config": config}


def shared_hash(weights: dict[str, torch.Tensor]) -> str:
    """sha256 of the convolutions (fp16, sorted keys): equal for the styles of one conditional network."""
    h = hashlib.sha256()
    for k in sorted(set(weights) - norm_keys(weights)):
        h.update(k.encode())
        h.update(weights[k].detach().to("cpu", torch.float16).contiguous().numpy().tobytes())
    return h.hexdigest()
