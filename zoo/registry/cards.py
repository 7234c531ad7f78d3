"""Model cards: Markdown with YAML front matter, generated from a zoo version record.

The record (``zoo.registry.record``) is the single source: ``zoo publish`` writes the first card,
``zoo evaluate`` rewrites it with metrics. Cards are never edited by hand.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from .record import VersionRecord
from .store import safe_rel

# Licence summary of the photos-1k training set, copied from its README: cards of models trained
# on it must carry this.
PHOTOS_1K_LICENSES = [
    "COCO 2017 (train2017/val2017 'coco128' subsets): per-image Flickr Creative Commons licences, many non-commercial.",
    "Kodak PhotoCD test suite (24), downsampled Wikimedia Commons photographs (49, mostly CC BY / BY-SA).",
    "BSDS500 (500, Berkeley; non-commercial research and education), Urban100, Sun-Hays 80, Set5, Set14 "
    "(super-resolution benchmarks, Flickr-sourced).",
]
DEFAULT_MODEL_LICENSE = (
    "Weights for research and non-commercial use: they inherit the most restrictive licence of the "
    "training photos (see training_data); the code that made them is MIT."
)
NORMALISATION = {
    "caffe": "original Caffe VGG-19 weights; input BGR, 0..255, mean pixel (103.939, 116.779, 123.68) subtracted",
    "torchvision": "torchvision IMAGENET1K_V1 VGG-19 weights; input RGB, ImageNet mean/std",
}


def limit_note(w: dict) -> str:
    """What a content limit did to the style weight (a run without one: nothing)."""
    if "content_limit" not in w:
        return ""
    if isinstance(w.get("style"), (int, float)) and isinstance(w.get("style_at_start"), (int, float)) and w["style"] < w["style_at_start"]:
        return f" (style {w['style_at_start']} at the start, lowered while the content distance ran above {w['content_limit']})"
    return f" (kept: the content distance stayed under the limit, {w['content_limit']})"


def training_data(source: str | None) -> dict:
    source = source or "unknown"
    if "photos-1k" in source:
        return {"source": source, "description": "photos-1k: 958 training photographs, short side 320 px, JPEG q90",
                "licenses": PHOTOS_1K_LICENSES}
    return {"source": source, "licenses": ["not recorded: check the licences of the training images before sharing"]}


def front_matter(name: str, info: dict) -> dict:
    """The card's YAML fields, from a version record."""
    rec = VersionRecord(info)
    cfg, style, train = rec.config, rec.style, rec.training
    backbone = cfg.get("backbone", "caffe")
    return {
        "name": name,
        "version": info.get("version"),
        "ref": f"{name}@{info.get('version')}",
        "created": info.get("created"),
        "license": info.get("license", DEFAULT_MODEL_LICENSE),
        "model": {
            "architecture": "TransformerNet (Johnson et al. 2016; instance norm, upsample + conv, reflection padding)",
            "width": cfg.get("width"),
            "num_residual": cfg.get("num_residual"),
            "parameters": info.get("parameters"),
            "dtype": info.get("dtype"),
            "file": info.get("file"),
            "sha256": info.get("sha256"),
            "bytes": info.get("bytes"),
        },
        "painting": {k: style.get(k) for k in ("name", "title", "artist", "year", "license", "file", "sha256") if style.get(k) is not None},
        "training_data": training_data(cfg.get("data")),
        "loss_network": {"name": "VGG-19", "backbone": backbone, "pooling": cfg.get("pooling", "max"),
                         "normalisation": NORMALISATION.get(backbone, backbone)},
        "layers": {"content": cfg.get("content_layers"), "style": cfg.get("style_layers")},
        # a run with a content limit may end at a lower style weight than it started with: the card gives both
        "loss_weights": {"content": cfg.get("content_weight"), "style": train.get("style_weight", cfg.get("style_weight")),
                         "tv": cfg.get("tv_weight"),
                         **({"style_at_start": cfg.get("style_weight"), "content_limit": cfg["content_limit"]}
                            if cfg.get("content_limit") is not None else {})},
        "image_size": cfg.get("image_size"),
        "style_size": cfg.get("style_size"),
        # the stroke size the network paints, in px (zoo apply --scale auto keeps the look at any photo size)
        "stroke_scale": {"trained_crop": cfg.get("image_size"), "style_size": cfg.get("style_size")},
        "batch_size": cfg.get("batch_size"),
        "lr": cfg.get("lr"),
        **({"schedule": cfg["schedule"]} if cfg.get("schedule") else {}),
        "steps": train.get("steps", cfg.get("max_steps")),
        "images_seen": train.get("images_seen"),
        "family": cfg.get("family"),
        "seed": cfg.get("seed"),
        "precision": train.get("precision", cfg.get("precision")),
        "hardware": train.get("hardware"),
        "wall_time_s": train.get("wall_seconds"),
        **({"init": train["init"]} if train.get("init") else {}),
        "metrics": rec.metrics,
        "speed": rec.speed,
        **({"origin": rec.origin} if rec.origin else {}),
    }


def render(name: str, info: dict, sample_file: str | None = None) -> str:
    """Markdown card with YAML front matter; ``sample_file`` is the sample image's name beside the card."""
    fm = front_matter(name, info)
    if sample_file:
        fm["sample"] = sample_file
    style = fm["painting"]
    m = fm["metrics"]
    lines = [
        "---",
        yaml.safe_dump(fm, sort_keys=False, allow_unicode=True, width=120).rstrip(),
        "---",
        "",
        f"# {fm['ref']}: {style.get('title', 'style')}{', ' + style['artist'] if style.get('artist') else ''}",
        "",
        f"A fast style-transfer network (one forward pass per photo) trained to paint photos in the style of "
        f"*{style.get('title', '?')}*. Apply it with `zoo apply {fm['ref']} photo.jpg -o out.jpg`.",
        "",
    ]
    if fm.get("origin"):
        o = fm["origin"]
        lines += [f"Pulled from `{o.get('source')}` (revision {o.get('revision')}"
                  + (f", commit {str(o['commit'])[:12]}" if o.get("commit") else "") + f"), where it was {o.get('ref')}.", ""]
    if sample_file:
        lines += [f"![sample: a Kodak test photo stylised by {fm['ref']}]({sample_file})", ""]
    lines += [
        "## Training",
        "",
        f"- Data: `{fm['training_data']['source']}`",
        *[f"  - {lic}" for lic in fm["training_data"]["licenses"]],
        f"- Loss network: VGG-19 ({fm['loss_network']['normalisation']}; {fm['loss_network']['pooling']} pooling)",
        f"- Content layers: {fm['layers']['content']}; style layers: {fm['layers']['style']}",
        f"- Weights: content {fm['loss_weights']['content']}, style {fm['loss_weights']['style']}, TV {fm['loss_weights']['tv']}"
        + limit_note(fm["loss_weights"]),
        f"- Image size {fm['image_size']}, style size {fm['style_size']}, batch {fm['batch_size']}, "
        f"{fm['steps']} steps, {fm['precision']} on {fm['hardware']}"
        + (f", {fm['wall_time_s'] / 60:.1f} min" if isinstance(fm["wall_time_s"], (int, float)) else ""),
        *([f"- Stages: {fm['schedule']}"] if fm.get("schedule") else []),
    ]
    fam = fm.get("family")
    if fam:
        others = [n for n in fam.get("styles", []) if n != name]
        lines += [f"- One conditional-instance-norm network for {len(fam.get('styles', []))} styles (Dumoulin et al. 2017), "
                  f"this is style {fam.get('index')}; trained together with {', '.join(others)}, so they blend: "
                  f"`zoo apply {name}:0.7+{others[0] if others else name}:0.3 photo.jpg`"]
    if fm.get("images_seen"):
        per = fm["images_seen"] // max(1, len((fam or {}).get("styles", [])) or 1)
        lines += [f"- Training images seen: {fm['images_seen']:,}" + (f" (about {per:,} for this style)" if fam else "")]
    if fm.get("init"):
        ws = fm["init"]
        cost = ", ".join(x for x in (f"{ws['images_seen']:,} images" if ws.get("images_seen") else "",
                                     f"{ws['wall_seconds'] / 60:.0f} min" if ws.get("wall_seconds") else "") if x)
        lines += [f"- Warm start: from {ws.get('from')}" + (f" ({cost} of training before this run)" if cost else "")]
    lines += [
        "",
        "## Stroke scale",
        "",
        f"Trained on {fm['image_size']} px crops with the painting at {fm['style_size']} px: the strokes look as intended "
        f"on photos of the size the metrics below are measured at. "
        f"`zoo apply --scale auto` keeps that look at any photo size; `--scale 1` paints the strokes at their "
        f"trained size in pixels (smaller and busier on a bigger photo).",
        "",
        "## Metrics",
        "",
    ]
    if m:
        lines += [
            f"Measured by `{m.get('tool', 'zoo evaluate')}` on {m.get('images', '?')} photos of `{m.get('data', '?')}` at {m.get('size', '?')} px:",
            "",
            "| style distance (Gram, VGG-19) | content distance (VGG-19 features) | SSIM to the photo | layout SSIM | "
            "black-clipped (worst photo) | ms / MP |",
            "| --- | --- | --- | --- | --- | --- |",
            f"| {m.get('style_distance', float('nan')):.4g} | {m.get('content_distance', float('nan')):.4g} | "
            f"{m.get('ssim', float('nan')):.3f} | {m.get('layout_ssim', float('nan')):.3f} | "
            f"{100 * m.get('black_max', float('nan')):.3f} % | {m.get('speed', {}).get('ms_per_mp', float('nan')):.0f} "
            f"({m.get('speed', {}).get('device', '?')}) |",
        ]
        ref = m.get("reference")
        if ref:
            lines += ["", f"The same photos through {ref.get('name', 'the reference network')}: style distance "
                          f"{ref.get('style_distance', float('nan')):.4g}, content distance {ref.get('content_distance', float('nan')):.4g}"
                          + (f", layout SSIM {ref['layout_ssim']:.3f}" if "layout_ssim" in ref else "")
                          + (f", black-clipped {100 * ref['black_max']:.3f} %" if "black_max" in ref else "")
                          + (f" (measured for {ref['measured_for']}'s card)" if ref.get("measured_for") else "") + "."]
    else:
        lines += [f"Not evaluated yet: run `zoo evaluate {fm['ref']}`."]
    lines += ["", f"Licence: {fm['license']}", ""]
    return "\n".join(lines)


def parse(text: str) -> dict:
    """The front matter of a card (for tests and tools)."""
    if not text.startswith("---\n"):
        return {}
    return yaml.safe_load(text[4 : text.index("\n---", 4)]) or {}


def write_card_copy(entry, card_dir: str | os.PathLike) -> Path:
    """The latest card of a model as ``<card_dir>/<name>.md`` (+ ``<name>.jpg`` sample)."""
    d = Path(card_dir)
    d.mkdir(parents=True, exist_ok=True)
    sample = entry.record.sample
    if sample:
        (d / f"{entry.name}.jpg").write_bytes(entry.zoo.read_bytes(safe_rel(sample)))
    text = render(entry.name, entry.info, f"{entry.name}.jpg" if sample else None)
    path = d / f"{entry.name}.md"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path
