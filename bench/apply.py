"""Benchmark `zoo apply`: whole-process wall time and peak RSS per photo size, ms per megapixel,
and the network's forward pass alone. Never run by the test suite.

    .venv/bin/python bench/apply.py                 # a random-init width-1.0 network (speed does not depend on weights)
    .venv/bin/python bench/apply.py --model starry  # a model from your zoo / the built-in layer

Sizes: 1080x1080, 1920x1080, 3840x2160 (crops of the 27 MP photo, resized) and
../shared/assets/photos/figures_5184x3456.jpg itself. Each apply runs in a fresh process
(`python -m zoo.cli apply ...`); its peak RSS comes from wait4()'s rusage of that process.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIG = (ROOT / ".." / "shared" / "assets" / "photos" / "figures_5184x3456.jpg").resolve()
SIZES = ((1080, 1080), (1920, 1080), (3840, 2160))


def make_inputs(folder: Path) -> list[Path]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    big = Image.open(BIG).convert("RGB")
    out = []
    for w, h in SIZES:
        # centre crop to the aspect ratio, then resize
        bw, bh = big.size
        scale = min(bw / w, bh / h)
        cw, ch = int(w * scale), int(h * scale)
        box = ((bw - cw) // 2, (bh - ch) // 2, (bw - cw) // 2 + cw, (bh - ch) // 2 + ch)
        p = folder / f"photo_{w}x{h}.jpg"
        big.crop(box).resize((w, h), Image.Resampling.LANCZOS).save(p, quality=92)
        out.append(p)
    return out + [BIG]


def random_model_zoo(folder: Path, width: float) -> str:
    import torch
    from safetensors.torch import save

    from lit_modules.transformer_net import TransformerNet
    from zoo.registry.store import Zoo

    torch.manual_seed(0)
    net = TransformerNet(width)
    data = save({k: v.half().contiguous() for k, v in net.state_dict().items()})
    Zoo(folder).add("bench", data, {"config": net.config(), "style": {"name": "random"}, "metrics": {}})
    return "bench"


def run_apply(args: list[str]) -> tuple[float, float, str]:
    t = time.perf_counter()
    p = subprocess.Popen([sys.executable, "-m", "zoo.cli", "apply", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    out = p.stdout.read().decode().strip()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"apply failed: {out}")
    return wall, usage.ru_maxrss / 1024, out  # MB (Linux reports KiB)


def forward_seconds(width: float, h: int, w: int) -> float:
    import torch

    from lit_modules.transformer_net import TransformerNet

    net = TransformerNet(width).eval()
    x = torch.rand(1, 3, h, w)
    with torch.inference_mode():
        net(x[:, :, :128, :128])
        t = time.perf_counter()
        net(x)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="zoo model to apply [default: a random-init network in a temp zoo]")
    ap.add_argument("--zoo", help="zoo URL for --model")
    ap.add_argument("--width", type=float, default=1.0, help="width of the random-init network")
    ap.add_argument("--skip-big", action="store_true", help="skip the 27 MP photo")
    ap.add_argument("--only", help="only photos whose file name contains this")
    ap.add_argument("--scale", default="1", help="zoo apply --scale [default: 1, the network at full size; auto: see bench/scale.py]")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        inputs = make_inputs(tmp)
        if a.skip_big:
            inputs = inputs[:-1]
        if a.only:
            inputs = [p for p in inputs if a.only in p.name]
        zoo_args = []
        if a.model:
            ref = a.model
            if a.zoo:
                zoo_args = ["--zoo", a.zoo]
        else:
            ref = random_model_zoo(tmp / "zoo", a.width)
            zoo_args = ["--zoo", str(tmp / "zoo")]
        import torch

        print(f"# zoo apply {ref} --scale {a.scale} (width {a.width if not a.model else 'model'}), {os.cpu_count()} CPUs, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads")
        print(f"{'photo':>28} {'MP':>6} {'wall s':>7} {'peak RSS MB':>11} {'ms/MP':>7}  apply's own line")
        for p in inputs:
            from PIL import Image

            Image.MAX_IMAGE_PIXELS = None
            w, h = Image.open(p).size
            wall, rss, line = run_apply([ref, str(p), "-o", str(tmp / f"out_{p.stem}.jpg"), "-q", "--scale", a.scale, *zoo_args])
            mp = w * h / 1e6
            print(f"{p.name:>28} {mp:6.2f} {wall:7.2f} {rss:11.0f} {wall * 1e3 / mp:7.0f}  {line}", flush=True)
        if not a.model:
            f = forward_seconds(a.width, 1080, 1080)
            print(f"forward pass alone, 1080x1080, fp32, inference_mode: {f:.2f} s ({f * 1e3 / 1.1664:.0f} ms/MP)")


if __name__ == "__main__":
    main()
