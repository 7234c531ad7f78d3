"""``zoo train --init``: start a run from a trained network instead of random weights.

The source is a zoo model (``starry@2``) or a run checkpoint (``runs/x/checkpoints/last.ckpt``, or
the run directory). Each style of the new run takes, by name, the instance-norm scale/shift that
the source learned for it: a zoo model brings its whole family (the styles trained with it in one
conditional network), a checkpoint all of its styles. A style the source does not know starts from
the named model's own (or the checkpoint's first style's) norm parameters. The convolutions are
shared, so the architecture (width, residual blocks) is the source's.
"""
from __future__ import annotations

from pathlib import Path

import torch

from lit_modules.errors import ConfigError


def _from_checkpoint(path: Path) -> tuple[dict[str, dict], str, dict, dict]:
    from zoo.publish import read_run, run_styles, select_style

    run = read_run(path)
    names = run_styles(run)
    per = {n: (select_style(run, n) if isinstance(run["style"], list) else run)["weights"] for n in names}
    return per, names[0], run["config"], {"from": run["checkpoint"], **_cost(run["training"])}


def _from_zoo(ref: str) -> tuple[dict[str, dict], str, dict, dict]:
    from zoo.apply import net_from_bytes
    from zoo.index import ZooStack

    stack = ZooStack()
    entry = stack.resolve(ref)
    members = [entry]
    if entry.family:  # the other styles of the same conditional network (one training run: one version each)
        members += [e for e, _ in stack.entries(all_versions=True)
                    if e.family == entry.family and e.name != entry.name]

    def style_name(e) -> str:
        return (e.info.get("style") or {}).get("name") or e.name

    per = {style_name(e): {k: v.float() for k, v in net_from_bytes(e.read_weights(), e.config).state_dict().items()}
           for e in reversed(members)}  # the named model wins a clash
    return per, style_name(entry), entry.config, {"from": entry.ref, **_cost(entry.info.get("training") or {})}


def _cost(training: dict) -> dict:
    """What the source had cost, its own warm start included (wave@4 from wave@3 from starry@2)."""
    own = {k: training[k] for k in ("steps", "images_seen", "wall_seconds", "hardware") if training.get(k) is not None}
    before = training.get("init") or {}
    for k in ("steps", "images_seen", "wall_seconds"):
        if k in own and before.get(k) is not None:
            own[k] += before[k]
    return own


def init_state(init: str, styles: list[str]) -> tuple[dict, dict, dict]:
    """(state dict of a TransformerNet for ``styles``, its architecture {width, num_residual}, a
    record for the run's summary and card: where it came from, what it had cost, which style took
    which norm parameters)."""
    path = Path(init).expanduser()
    if path.suffix == ".ckpt" or path.is_dir():
        if not path.exists():
            raise ConfigError(f"--init {init}: no such checkpoint or run directory")
        per, default, config, record = _from_checkpoint(path)
    else:
        per, default, config, record = _from_zoo(init)
    from lit_modules.transformer_net import norm_keys

    base = per[default]
    norms = norm_keys(base)
    taken = {s: (s if s in per else default) for s in styles}
    if len(styles) == 1:
        state = dict(per[taken[styles[0]]])
    else:  # conditional norms: row i is style i's scale/shift, shape (S, C)
        state = {k: (torch.stack([per[taken[s]][k] for s in styles]) if k in norms else v) for k, v in base.items()}
    arch = {"width": float(config.get("width", 1.0)), "num_residual": int(config.get("num_residual", 5))}
    return state, arch, {**record, "styles": taken}
