"""``zoo publish``: a training run (or checkpoint) -> safetensors weights + config + model card.

Only the TransformerNet weights leave the checkpoint (``train.runs`` reads it), on the CPU, as
fp16 (default) or fp32 safetensors named by their content hash. The checkpoint's
``hyper_parameters`` are the config; ``<run>/summary.json`` adds steps, wall time, hardware and
precision. With ``sample``, the card gets that photo stylised by the model.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import torch

from lit_modules.errors import StyleZooError, one_line
from lit_modules.transformer_net import TransformerNet, nonfinite_key
from train.runs import RunError, read_run, run_styles, select_style
from zoo.inference.stylizer import Stylizer
from zoo.media.images import load_image, to_pil_inplace
from zoo.registry import cards, styles
from zoo.registry.refs import validate_name
from zoo.registry.store import Zoo, canonical_safetensors

DTYPES = {"fp16": torch.float16, "fp32": torch.float32}


class PublishError(RunError):
    """A run or checkpoint cannot be published."""


def style_record(style: dict) -> dict:
    """A run's style record, completed from the named style's config (title, artist, licence...)."""
    style = dict(style)
    if style.get("name"):
        try:
            meta = styles.get(style["name"])
            style = {**meta.meta(), "file": meta.file, "sha256": meta.sha256, **style}
        except StyleZooError:
            pass
    return style


def read_publishable(source: str | os.PathLike) -> dict:
    """``train.runs.read_run`` with each style's record completed from the named styles."""
    run = read_run(source)
    st = run["style"]
    return {**run, "style": [style_record(s) for s in st] if isinstance(st, list) else style_record(st)}


def weights_bytes(weights: dict[str, torch.Tensor], config: dict, dtype: str) -> tuple[bytes, int]:
    """Check the weights load into TransformerNet, then serialise them as safetensors, byte for byte
    the same for the same weights (``canonical_safetensors``)."""
    from safetensors.torch import save

    if dtype not in DTYPES:
        raise PublishError(f"unknown dtype {dtype!r}; use {' or '.join(DTYPES)}")
    net = TransformerNet.from_config(config)
    try:
        net.load_state_dict(weights)
    except RuntimeError as e:
        raise PublishError(f"checkpoint weights do not fit TransformerNet(width={net.width}): {one_line(e, 160)}") from None
    state = {k: v.detach().to("cpu", DTYPES[dtype]).contiguous() for k, v in net.state_dict().items()}
    bad = nonfinite_key(state)
    if bad is not None:  # no zoo loads such weights: say why here, not at the user's first apply
        finite = bad in weights and nonfinite_key({bad: weights[bad]}) is None
        raise PublishError(f"tensor {bad} holds NaN or infinite values" + (f" in {dtype} (too large for it; publish with --dtype fp32)"
                           if finite else " (the run diverged; publish an earlier checkpoint)"))
    params = sum(v.numel() for v in state.values())
    data = save(state, metadata={"format": "pt", "style_zoo": json.dumps(net.config(), sort_keys=True)})
    return canonical_safetensors(data), params  # same weights, same bytes: the zoo's files are content-addressed


def sample_jpeg(data: bytes, config: dict, photo: Path) -> bytes:
    """``photo`` (long side 512 px) through the weights being published, as JPEG bytes."""
    y = Stylizer.from_bytes(data, config, tile=None).tensor(load_image(photo, 512))  # (1, 3, H, W)
    buf = io.BytesIO()
    to_pil_inplace(y).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def publish(
    source: str | os.PathLike,
    name: str,
    zoo: str | None = None,
    dtype: str = "fp16",
    dry_run: bool = False,
    card_dir: str | os.PathLike | None = None,
    sample: str | os.PathLike | None = None,
    license: str | None = None,
    style: str | None = None,
    run: dict | None = None,
) -> dict:
    """Publish the next version of ``name`` (for a run of several styles: its ``style``).
    Returns a summary dict (ref, file, sha256, bytes, card...)."""
    validate_name(name)
    z = Zoo(zoo)
    run = select_style(run or read_publishable(source), style)
    data, params = weights_bytes(run["weights"], run["config"], dtype)
    sample_path = Path(sample) if sample else None
    if sample_path is not None and not sample_path.is_file():
        raise PublishError(f"{sample_path}: sample photo not found")
    record = {"style": run["style"], "config": run["config"], "training": run["training"], "dtype": dtype,
              "parameters": params, "metrics": {}, "source": run["checkpoint"]}
    if license:
        record["license"] = license
    sha = hashlib.sha256(data).hexdigest()
    if dry_run:
        nxt = max((v["version"] for v in z.versions(name)), default=0) + 1
        return {"ref": f"{name}@{nxt}", "dry_run": True, "file": f"models/{name}/{sha[:12]}.safetensors", "sha256": sha,
                "bytes": len(data), "zoo": z.url, "config": run["config"]}
    jpg = sample_jpeg(data, run["config"], sample_path) if sample_path else None

    entry = z.add(name, data, record, card_files(name, record, sha, len(data), jpg))
    out = {"ref": entry.ref, "dry_run": False, "file": entry.info["file"], "sha256": sha, "bytes": len(data),
           "zoo": z.url, "card": entry.info.get("card")}
    if card_dir is not None:
        out["card_copy"] = str(cards.write_card_copy(entry, card_dir))
    return out


def card_files(name: str, record: dict, sha: str, nbytes: int, jpg: bytes | None):
    """``Zoo.add``'s extra files for version N of ``name``: its card (and sample picture)."""

    def extra(version: int) -> dict[str, bytes]:
        info = {**record, "version": version, "file": f"models/{name}/{sha[:12]}.safetensors", "sha256": sha, "bytes": nbytes}
        files = {}
        if jpg:
            files[f"cards/{name}@{version}.jpg"] = jpg
            info["sample"] = f"cards/{name}@{version}.jpg"
        files[f"cards/{name}@{version}.md"] = cards.render(name, info, f"{name}@{version}.jpg" if jpg else None).encode()
        return files

    return extra


def publish_all(source: str | os.PathLike, **kw) -> list[dict]:
    """Publish every style of a conditional network's run under its own name (starry, wave...)."""
    run = read_publishable(source)
    return [publish(source, name, style=name, run=run, **kw) for name in run_styles(run)]
