"""``zoo train --init``: start a run from a trained network instead of random weights.

The source is a run checkpoint (``runs/x/checkpoints/last.ckpt``, or the run directory; read here)
or a zoo model (``starry@2``; ``zoo.registry`` reads it into the same ``WarmSource``). Each style
of the new run takes, by name, the instance-norm scale/shift that the source learned for it: a zoo
model brings its whole family (the styles trained with it in one conditional network), a checkpoint
all of its styles. A style the source does not know starts from the source's default style (the
named model, or the checkpoint's first style). The convolutions are shared, so the architecture
(width, residual blocks) is the source's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from lit_modules.errors import ConfigError
from lit_modules.transformer_net import nonfinite_key, norm_keys

from .runs import read_run, run_styles, select_style


@dataclass(frozen=True)
class WarmSource:
    """A trained network, one plain state dict per style it knows."""

    states: dict[str, dict[str, torch.Tensor]]  # style name -> plain TransformerNet state dict
    default: str  # the style whose parameters a style unknown to the source starts from
    config: dict  # the source's network config (width, num_residual, ...)
    record: dict  # where it came from and what it had cost (for the run's summary and card)


def cost(training: dict) -> dict:
    """What a source had cost, its own warm start included (wave@4 from wave@3 from starry@2)."""
    own = {k: training[k] for k in ("steps", "images_seen", "wall_seconds", "hardware") if training.get(k) is not None}
    before = training.get("init") or {}
    for k in ("steps", "images_seen", "wall_seconds"):
        if k in own and before.get(k) is not None:
            own[k] += before[k]
    return own


def from_checkpoint(path: Path) -> WarmSource:
    run = read_run(path)
    names = run_styles(run)
    states = {n: (select_style(run, n) if isinstance(run["style"], list) else run)["weights"] for n in names}
    return WarmSource(states, names[0], run["config"], {"from": run["checkpoint"], **cost(run["training"])})


def is_checkpoint(init: str) -> bool:
    """``--init`` names a checkpoint or run directory (else a zoo model)."""
    path = Path(init).expanduser()
    return path.suffix == ".ckpt" or path.is_dir()


def init_state(init: str, styles: list[str], from_model: Callable[[str], WarmSource] | None = None) -> tuple[dict, dict, dict]:
    """(state dict of a TransformerNet for ``styles``, its architecture {width, num_residual}, a
    record for the run's summary and card: where it came from, what it had cost, which style took
    which norm parameters). ``from_model`` reads a zoo model ``NAME[@N]`` (zoo.registry supplies it)."""
    if is_checkpoint(init):
        path = Path(init).expanduser()
        if not path.exists():
            raise ConfigError(f"--init {init}: no such checkpoint or run directory")
        src = from_checkpoint(path)
    elif from_model is None:
        raise ConfigError(f"--init {init}: no such checkpoint or run directory")
    else:
        src = from_model(init)
    base = src.states[src.default]
    bad = next((f"{s}: {k}" for s, st in src.states.items() if (k := nonfinite_key(st)) is not None), None)
    if bad is not None:  # a diverged run's checkpoint: every step from it would be NaN
        raise ConfigError(f"--init {init}: its weights hold NaN or infinite values ({bad}); start from an earlier checkpoint")
    norms = norm_keys(base)
    taken = {s: (s if s in src.states else src.default) for s in styles}
    if len(styles) == 1:
        state = dict(src.states[taken[styles[0]]])
    else:  # conditional norms: row i is style i's scale/shift, shape (S, C)
        state = {k: (torch.stack([src.states[taken[s]][k] for s in styles]) if k in norms else v) for k, v in base.items()}
    arch = {"width": float(src.config.get("width", 1.0)), "num_residual": int(src.config.get("num_residual", 5))}
    return state, arch, {**src.record, "styles": taken}
