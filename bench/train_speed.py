"""Fast-style training throughput: images/s of the full training step (TransformerNet forward,
VGG-19 content pass cut at the content layer, VGG-19 pass of the output, loss, backward, Adam)
at 256 px, batch 4, for fp32 / channels_last / bf16 / torch.compile. One line per configuration.

    .venv/bin/python bench/train_speed.py                  # the default (paper) preset's layers
    .venv/bin/python bench/train_speed.py --preset quick    # the CPU preset's layers and width
    .venv/bin/python bench/train_speed.py --configs fp32,bf16 --steps 5

Figures taken while other processes share the CPU are lower than on an idle machine; the
hardware string and the load average are printed with each line.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


import torch

from lit_modules.fast_style import FastStyle
from lit_modules.hw import bf16_fast, hardware_name
from train.config import build_config

CONFIGS = ("fp32", "fp32+cl", "bf16+cl", "fp32+compile", "bf16+cl+compile")


def make(cfg, conf: str, device: str) -> tuple[FastStyle, torch.optim.Optimizer]:
    torch.manual_seed(0)
    m = FastStyle(style={"name": "bench"}, width=cfg.width, num_residual=cfg.num_residual, backbone=cfg.backbone,
                  pooling=cfg.pooling, content_layers=cfg.content_layers, style_layers=cfg.style_layers,
                  style_image=torch.rand(1, 3, cfg.style_size, cfg.style_size), channels_last="cl" in conf)
    m = m.to(device)
    if "bf16" in conf:
        m.loss.vgg.body.to(torch.bfloat16)
    if "cl" in conf:
        m.net.to(memory_format=torch.channels_last)
        m.loss.vgg.body.to(memory_format=torch.channels_last)
    if "compile" in conf:
        m.net.compile()
    return m, torch.optim.Adam(m.net.parameters(), lr=1e-3)


def step(m: FastStyle, opt, x: torch.Tensor, bf16: bool) -> None:
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        terms = m.terms(x)
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="default")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4, help="timed steps (after warm-up)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    cfg = build_config(args.preset)
    hw = hardware_name(args.device)
    print(f"# {hw}; bf16 fast here: {bf16_fast(args.device)}; preset {args.preset} (width {cfg.width}, style "
          f"{','.join(cfg.style_layers)}, content {','.join(cfg.content_layers)}); {args.size} px, batch {args.batch}", flush=True)
    x = torch.rand(args.batch, 3, args.size, args.size, device=args.device)
    for conf in args.configs.split(","):
        try:
            m, opt = make(cfg, conf, args.device)
            bf16 = "bf16" in conf
            t0 = time.perf_counter()
            for _ in range(args.warmup):
                step(m, opt, x, bf16)
            warm = time.perf_counter() - t0
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step(m, opt, x, bf16)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            print(f"{conf:18s} {args.batch * args.steps / dt:7.2f} images/s  ({dt / args.steps:.2f} s/step, "
                  f"warm-up {warm:.1f} s, load avg {load:.1f})", flush=True)
        except Exception as e:  # one failing configuration (e.g. compile without a compiler) is a line, not a crash
            print(f"{conf:18s} failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}", flush=True)


if __name__ == "__main__":
    main()
