"""``zoo publish``: a training run (or checkpoint) -> safetensors weights + config + model card.

Only the TransformerNet weights leave the checkpoint (``state_dict`` keys ``net.*``), on the
CPU, as fp16 (default) or fp32 safetensors named by their content hash. The checkpoint's
``hyper_parameters`` are the config; ``<run>/summary.json`` adds steps, wall time, hardware and
precision. The card gets a sample: a Kodak test photo (freely usable) stylised by the model.
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch

from lit_modules.errors import StyleZooError
from train.config import run_init_record
from zoo import cards
from zoo.index import Zoo, validate_name

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = (ROOT / ".." / "shared" / "assets" / "photos-1k" / "train" / "kodak_kodim23.jpg").resolve()
DTYPES = {"fp16": torch.float16, "fp32": torch.float32}


class PublishError(StyleZooError):
    """A run or checkpoint cannot be published."""


def find_checkpoint(source: str | os.PathLike) -> tuple[Path, Path | None]:
    """RUN_DIR or CHECKPOINT -> (checkpoint file, run dir or None)."""
    p = Path(source)
    if p.is_file():
        run = p.parent.parent if p.parent.name == "checkpoints" else None
        return p, run
    if p.is_dir():
        last = p / "checkpoints" / "last.ckpt"
        if last.is_file():
            return last, p
        ckpts = sorted((p / "checkpoints").glob("*.ckpt"), key=lambda q: q.stat().st_mtime) if (p / "checkpoints").is_dir() else []
        if ckpts:
            return ckpts[-1], p
        raise PublishError(f"{p}: no checkpoints/last.ckpt (or any checkpoints/*.ckpt) in this run folder")
    raise PublishError(f"{p}: no such run folder or checkpoint file")


def _plain(x):
    return json.loads(json.dumps(x, default=str))


def _style_meta(style: dict) -> dict:
    """A run's style record, completed from the named style's config (title, artist, licence...)."""
    style = dict(style)
    if style.get("name"):
        try:
            from zoo import styles

            meta = styles.get(style["name"])
            style = {**meta.meta(), "file": meta.file, "sha256": meta.sha256, **style}
        except StyleZooError:
            pass
    return style


def read_run(source: str | os.PathLike) -> dict:
    """{"weights": {name: tensor}, "config": dict, "style": dict, "training": dict, "checkpoint": path}."""
    ckpt_path, run = find_checkpoint(source)
    try:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise PublishError(f"{ckpt_path}: cannot read checkpoint ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    state = ckpt.get("state_dict") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise PublishError(f"{ckpt_path}: not a Lightning checkpoint (no state_dict)")
    weights = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
    if not weights:
        raise PublishError(f"{ckpt_path}: no TransformerNet weights (state_dict keys 'net.*'); is this a FastStyle checkpoint?")
    hp = _plain(dict(ckpt.get("hyper_parameters") or {}))
    if "config" in hp and isinstance(hp["config"], dict) and "width" not in hp:
        hp = hp["config"]  # a module that saved one config dict
    style = hp.pop("style", None) or {}
    style = [_style_meta(s) for s in style] if isinstance(style, list) else _style_meta(style)
    training = {"steps": ckpt.get("global_step"), "precision": hp.get("precision")}
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
    return {"weights": weights, "config": hp, "style": style, "training": _plain(training), "checkpoint": str(ckpt_path)}


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
            raise PublishError(f"this run learned one style ({run['style'].get('name')}), not {style!r}")
        return run
    names = run_styles(run)
    if not style:
        raise PublishError(f"this run's network holds {len(names)} styles; choose one with --style ({', '.join(names)}) or use --all-styles")
    if style not in names:
        raise PublishError(f"this run has no style {style!r}; its styles: {', '.join(names)}")
    from lit_modules.transformer_net import TransformerNet

    k = names.index(style)
    cfg = run["config"]
    net = TransformerNet(width=float(cfg.get("width", 1.0)), num_residual=int(cfg.get("num_residual", 5)), styles=len(names))
    try:
        net.load_state_dict(run["weights"])
    except RuntimeError as e:
        raise PublishError(f"checkpoint weights do not fit a {len(names)}-style TransformerNet: {str(e).splitlines()[0][:160]}") from None
    weights = net.specialize(k).state_dict()
    sw = cfg.get("style_weight")
    config = {**cfg, "style_weight": sw[k] if isinstance(sw, list) else sw,
              "family": {"styles": names, "index": k, "shared_sha256": shared_hash(weights)}}
    return {**run, "weights": weights, "style": run["style"][k], "config": config}


def shared_hash(weights: dict[str, torch.Tensor]) -> str:
    """sha256 of the convolutions (fp16, sorted keys): equal for the styles of one conditional network."""
    import hashlib

    from lit_modules.transformer_net import norm_keys

    h = hashlib.sha256()
    for k in sorted(set(weights) - norm_keys(weights)):
        h.update(k.encode())
        h.update(weights[k].detach().to("cpu", torch.float16).contiguous().numpy().tobytes())
    return h.hexdigest()


def weights_bytes(weights: dict[str, torch.Tensor], config: dict, dtype: str) -> tuple[bytes, int]:
    """Check the weights load into TransformerNet, then serialise them as safetensors."""
    from safetensors.torch import save

    from lit_modules.transformer_net import TransformerNet

    if dtype not in DTYPES:
        raise PublishError(f"unknown dtype {dtype!r}; use {' or '.join(DTYPES)}")
    net = TransformerNet(width=float(config.get("width", 1.0)), num_residual=int(config.get("num_residual", 5)))
    try:
        net.load_state_dict(weights)
    except RuntimeError as e:
        raise PublishError(f"checkpoint weights do not fit TransformerNet(width={net.width}): {str(e).splitlines()[0][:160]}") from None
    state = {k: v.detach().to("cpu", DTYPES[dtype]).contiguous() for k, v in net.state_dict().items()}
    params = sum(v.numel() for v in state.values())
    return save(state, metadata={"format": "pt", "style_zoo": json.dumps(net.config())}), params


def sample_jpeg(data: bytes, config: dict, photo: Path) -> bytes:
    from zoo.apply import net_from_bytes, stylize_tensor, to_pil_inplace
    from zoo.images import load_image

    net = net_from_bytes(data, config)
    y = stylize_tensor(net, load_image(photo, 512))
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
    sample: str | os.PathLike | None = DEFAULT_SAMPLE,
    license: str | None = None,
    style: str | None = None,
    run: dict | None = None,
) -> dict:
    """Publish the next version of ``name`` (for a run of several styles: its ``style``).
    Returns a summary dict (ref, file, sha256, bytes, card...)."""
    validate_name(name)
    z = Zoo(zoo)
    run = select_style(run or read_run(source), style)
    data, params = weights_bytes(run["weights"], run["config"], dtype)
    sample_path = Path(sample) if sample else None
    if sample_path is not None and not sample_path.is_file():
        if Path(sample) != DEFAULT_SAMPLE:
            raise PublishError(f"{sample_path}: sample photo not found")
        sample_path = None
    record = {"style": run["style"], "config": run["config"], "training": run["training"], "dtype": dtype,
              "parameters": params, "metrics": {}, "source": run["checkpoint"]}
    if license:
        record["license"] = license
    import hashlib

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
        out["card_copy"] = str(write_card_copy(entry, card_dir))
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
    run = read_run(source)
    return [publish(source, name, style=name, run=run, **kw) for name in run_styles(run)]


def write_card_copy(entry, card_dir: str | os.PathLike) -> Path:
    """The latest card of a model as ``<card_dir>/<name>.md`` (+ ``<name>.jpg`` sample)."""
    d = Path(card_dir)
    d.mkdir(parents=True, exist_ok=True)
    sample = entry.info.get("sample")
    if sample:
        (d / f"{entry.name}.jpg").write_bytes(entry.zoo.read_bytes(sample))
    text = cards.render(entry.name, entry.info, f"{entry.name}.jpg" if sample else None)
    path = d / f"{entry.name}.md"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
