"""Gatys benchmark: time, loss terms and the quality yardstick of `zoo stylize`. Not a test.

    python bench/gatys.py --all-styles               # every named style x photos, 512 px, recommended weights
    python bench/gatys.py --vs-pastiche              # ours vs pastiche (100 L-BFGS steps) on the same pairs
    python bench/gatys.py --memory --sizes 1024,2048 # peak RSS and time per size (one subprocess each)
    python bench/gatys.py --style starry --photos tubingen.jpg --set steps=120 --set style_weight=5

Every row: wall and CPU seconds (the CPU is often shared: CPU seconds compare better), the final
loss terms, style d / content d by `zoo evaluate`'s yardstick (``zoo.evaluation.metrics.metrics_for``:
relative Gram distance over relu1_1..relu5_1 to the painting at the output size, relative feature
distance at relu4_2 to the photo), the photo's own style d, and SSIM of luminance at a 128 px long
side (``zoo.evaluation.metrics.layout_ssim``: does the subject survive?). ``--save DIR`` writes the outputs.
pastiche runs once per (photo, painting, size, steps); its output and times are cached in --cache.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
# Named styles' paintings from the shared assets unless the user points elsewhere.
os.environ.setdefault("STYLE_ZOO_STYLE_DIR", str(ROOT.parent / "shared" / "assets" / "styles"))
from lit_modules.gatys import stylize
from zoo.registry import styles
from zoo.evaluation.metrics import layout_ssim, metrics_for
from zoo.media.images import load_image, save_image
from zoo.inference.gatys import gatys_config as build_config

ASSETS = ROOT.parent / "shared" / "assets"
PHOTOS = "photos/tubingen.jpg,photos/golden_gate.jpg,photos-1k/val/coco_000000001296.jpg"
PAIRS = "photos/tubingen.jpg:starry,photos-1k/val/coco_000000001296.jpg:udnie"
CACHE = Path.home() / ".cache" / "style-zoo" / "bench"


def _photo(p: str) -> Path:
    return Path(p) if Path(p).is_file() else ASSETS / p


def measure(photo: Path, painting: Path, run, size: int, save: Path | None, label: str) -> dict:
    """Yardstick figures of ``run`` (RGB [0,1] photo -> output) on one (photo, painting) pair."""
    got = {}
    x = load_image(photo, size)  # as metrics_for loads it
    t, c = time.perf_counter(), time.process_time()
    got["y"], got["report"] = run(x)
    got["wall"], got["cpu"] = time.perf_counter() - t, time.process_time() - c
    m = metrics_for(lambda _: got["y"], [photo], painting, size=size, style_size=size)  # (inference mode inside)
    own = metrics_for(lambda t: t, [photo], painting, size=size, style_size=size)["style_distance"]
    wall, cpu = got["report"].get("wall_s", got["wall"]), got["report"].get("cpu_s", got["cpu"])
    row = {"photo": photo.name, "painting": painting.name, "run": label, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
           "style_d": round(m["style_distance"], 4), "content_d": round(m["content_distance"], 4),
           "photo_style_d": round(own, 3), "ssim_luma128": round(layout_ssim(got["y"], x), 3)}
    terms = got["report"].get("terms") or {}
    row.update({k: round(v, 4) for k, v in terms.items()})
    if "scales" in got["report"]:
        row["scales"] = [(s["long_side"], s["steps"], s["evals"], s["recoveries"]) for s in got["report"]["scales"]]
    if save:
        save.mkdir(parents=True, exist_ok=True)
        save_image(got["y"], save / f"{photo.stem}__{painting.stem}__{label}.png")
    print(json.dumps(row), flush=True)
    return row


def ours(style: str | None, overrides: dict, size: int):
    cfg = build_config(style, {**overrides, "size": size})

    def run(x: torch.Tensor):
        return stylize(x, [load_image(painting_of(style))], cfg, progress=False)

    return run, cfg


def painting_of(style: str) -> Path:
    return styles.resolve(style)


def pastiche(photo: Path, painting: Path, size: int, steps: int, cache: Path):
    """Run pastiche once (cached): its CLI at its defaults apart from size and steps."""
    out = cache / "pastiche" / f"{photo.stem}__{painting.stem}__{size}px_{steps}.png"
    meta = out.with_suffix(".json")
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        before, t = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run(["pastiche", "--content", str(photo), "--styles", str(painting), "--output", str(out),
                        "--size", str(size), "--num-steps", str(steps), "--no-verbose"], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        meta.write_text(json.dumps({"wall_s": time.perf_counter() - t, "cpu_s": cpu, "peak_rss_mb": after.ru_maxrss / 1024}))
    info = json.loads(meta.read_text())

    def run(x: torch.Tensor):
        y = load_image(out)
        if y.shape[-2:] != x.shape[-2:]:  # pastiche rounds sizes its own way
            y = torch.nn.functional.interpolate(y, size=x.shape[-2:], mode="bilinear", antialias=True).clamp(0, 1)
        return y, info

    return run


def memory(args, overrides: dict) -> None:
    """One subprocess per size, so ru_maxrss is that run's peak alone."""
    for size in [int(s) for s in args.sizes.split(",")]:
        code = (f"import sys, json, resource, time, torch; sys.path.insert(0, {str(ROOT)!r}); from bench.gatys import ours, _photo; "
                f"torch.set_num_threads({args.threads or torch.get_num_threads()}); "
                f"from zoo.media.images import load_image; import logging; logging.getLogger('lightning.pytorch').setLevel(40); "
                f"run, cfg = ours({args.style!r}, {overrides!r}, {size}); c = time.process_time(); "
                f"y, rep = run(load_image(_photo({args.photos.split(',')[0]!r}))); "
                f"print(json.dumps({{'size': {size}, 'shape': list(y.shape[-2:]), 'wall_s': round(rep['seconds'], 1), "
                f"'cpu_s': round(time.process_time() - c, 1), 'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "
                f"'scales': [(s['long_side'], s['steps'], s['evals'], s['seconds']) for s in rep['scales']], 'loss': round(rep['terms']['total'], 4)}}))")
        subprocess.run([sys.executable, "-c", code], check=True)


def _override(text: str) -> tuple[str, object]:
    """KEY=VALUE -> (key, value typed like GatysConfig's default)."""
    key, value = text.split("=", 1)
    default = getattr(build_config(None, {}), key)
    if isinstance(default, bool):
        return key, value.lower() in ("1", "true", "yes")
    return key, value if isinstance(default, str) else type(default if default is not None else 1.0)(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--all-styles", action="store_true", help="every named style x --photos")
    mode.add_argument("--vs-pastiche", action="store_true", help="ours (named style, defaults) vs pastiche on --pairs")
    mode.add_argument("--memory", action="store_true", help="peak RSS and time per --sizes (first of --photos)")
    ap.add_argument("--style", default="starry", help="named style(s), comma-separated (single runs; --memory takes one)")
    ap.add_argument("--photos", default=PHOTOS, help="comma-separated, relative to ../shared/assets or paths")
    ap.add_argument("--pairs", default=PAIRS, help="photo:style,... for --vs-pastiche")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--pastiche-steps", type=int, default=100)
    ap.add_argument("--set", action="append", default=[], help="GatysConfig override KEY=VALUE (repeatable)")
    ap.add_argument("--save", type=Path, default=None, help="folder for the output PNGs")
    ap.add_argument("--cache", type=Path, default=CACHE)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (1 is far faster on a busy shared CPU)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    overrides = dict(_override(s) for s in args.set)
    if args.memory:
        return memory(args, overrides)
    if args.vs_pastiche:
        for pair in args.pairs.split(","):
            p, style = pair.rsplit(":", 1)
            photo, painting = _photo(p), painting_of(style)
            measure(photo, painting, pastiche(photo, painting, args.size, args.pastiche_steps, args.cache), args.size, args.save, "pastiche")
            measure(photo, painting, ours(style, overrides, args.size)[0], args.size, args.save, f"zoo-{style}")
        return
    names = styles.names() if args.all_styles else args.style.split(",")
    for style in names:
        for p in args.photos.split(","):
            label = f"zoo-{style}" + "".join(f"-{s}" for s in args.set)
            measure(_photo(p), painting_of(style), ours(style, overrides, args.size)[0], args.size, args.save, label)


if __name__ == "__main__":
    main()
