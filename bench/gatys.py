"""Gatys benchmark: wall time and final loss terms per (size, precision). Not a test.

    python bench/gatys.py                       # 256 and 512 px, fp32 and bf16
    python bench/gatys.py --sizes 512 --precisions fp32

For each configuration it first times one VGG-19 forward+backward per scale (s/iter; on slow
paths only the coarsest scale, scaled by area for the others);
a full run whose projected time exceeds --max-seconds is reported as projected, not run (bf16
without AMX/avx512_bf16 hardware is 5-200x slower than fp32 and would take hours).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lit_modules.gatys import build_loss, fit_size, scale_sizes, stage_steps, stylize  # noqa: E402
from lit_modules.gatys_config import GatysConfig  # noqa: E402
from lit_modules.hw import bf16_fast, hardware_name  # noqa: E402
from zoo.images import load_image  # noqa: E402

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"


def seconds_per_iter(cfg: GatysConfig, content: torch.Tensor, style: torch.Tensor, size: int) -> float:
    loss = build_loss(cfg)
    if cfg.precision == "bf16":
        loss.vgg.to(dtype=torch.bfloat16, memory_format=torch.channels_last)
    x = fit_size(content, size)
    loss.set_style([fit_size(style, size)])
    loss.set_content(x)
    x = x.clone().requires_grad_(True)
    loss(x)["total"].backward()  # warm-up
    t = time.perf_counter()
    loss(x)["total"].backward()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", default=str(ASSETS / "photos" / "tubingen.jpg"))
    ap.add_argument("--style", default=str(ASSETS / "styles" / "starry_night.jpg"))
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--max-seconds", type=float, default=240.0)
    args = ap.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    content, style = load_image(args.content), load_image(args.style)
    print(f"# {hardware_name('cpu')}; bf16 fast here: {bf16_fast('cpu')}; defaults {GatysConfig()}", flush=True)
    for size in [int(s) for s in args.sizes.split(",")]:
        for precision in args.precisions.split(","):
            cfg = replace(GatysConfig(), size=size, precision=precision)
            sizes = scale_sizes(cfg.size, cfg.min_size, cfg.scale_factor)
            fast = precision == "fp32" or bf16_fast("cpu")
            # Slow paths (bf16 without AMX) are timed at the coarsest scale only and scaled by area.
            per_iter = {s: seconds_per_iter(cfg, content, style, s) for s in (sizes if fast else sizes[:1])}
            for s in sizes[1:] if not fast else []:
                per_iter[s] = per_iter[sizes[0]] * (s / sizes[0]) ** 2
            projected = sum(per_iter[s] * stage_steps(cfg, sizes, s) for s in sizes)
            its = " ".join(f"{s}px:{per_iter[s]:.3f}s/it" for s in sizes)
            if projected > args.max_seconds:
                print(f"size={size} precision={precision} {its} projected={projected:.0f}s (not run: > --max-seconds)", flush=True)
                continue
            out, rep = stylize(content, [style], cfg, progress=False)
            t = rep["terms"]
            print(f"size={size} precision={precision} {its} wall={rep['seconds']:.1f}s total={t['total']:.4g} "
                  f"content={t['content']:.4g} style={t['style']:.4g} tv={t['tv']:.4g}", flush=True)


if __name__ == "__main__":
    main()
