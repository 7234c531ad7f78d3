"""Side by side with pytorch/examples' fast_neural_style, on this machine, one run each. Not a test.

    python bench/peer.py train --size 256 --batch 4 --steps 12   # images/s of a training step
    python bench/peer.py apply --size 1080                       # whole-process wall time of one photo

The peer's code is run from a checkout of pytorch/examples (``--examples DIR``, default
``~/.cache/style-zoo/bench/pytorch-examples``; ``--mirror GIT_DIR`` exports one there from a git
mirror); nothing of it is copied into this project. Its VGG-16 ImageNet weights are a download that
is unreachable offline and training speed does not depend on weight values, so its VGG-16 is built
with random weights (a ``sitecustomize`` on its PYTHONPATH): the figures are throughput only.

``train`` gives both tools the same photos (the first ``steps x batch`` of photos-1k/train), crop
and batch; ``zoo train`` runs its CPU preset (half width, VGG-19 to relu4_1) and, with ``--width
1``, the peer's full width. ``apply`` runs one photo at ``--size`` px square through each tool in
a fresh process, with a random-init network of the same width (1.0, the peer's only width).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT.parent / "shared" / "assets"
DEFAULT_EXAMPLES = Path.home() / ".cache" / "style-zoo" / "bench" / "pytorch-examples"
# torchvision would download VGG-16's ImageNet weights; offline, build it with random ones.
SITECUSTOMIZE = """
import torchvision.models as _m
_vgg16 = _m.vgg16
_m.vgg16 = lambda *a, weights=None, **k: _vgg16(*a, weights=None, **k)
"""


def peer_dir(examples: Path, mirror: str | None) -> Path:
    src = examples / "fast_neural_style" / "neural_style"
    if not src.is_dir() and mirror:
        examples.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "--git-dir", mirror, "archive", "HEAD", "fast_neural_style"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(examples)], input=archive, check=True)
    if not src.is_dir():
        raise SystemExit(f"{src}: not found; pass --examples DIR (a pytorch/examples checkout) or --mirror GIT_DIR")
    return src


def peer_env(tmp: Path, src: Path) -> dict:
    (tmp / "site").mkdir(exist_ok=True)
    (tmp / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp / "site"), str(src)]), "PYTHONUNBUFFERED": "1"}


def photos_folder(tmp: Path, n: int) -> Path:
    """The first ``n`` training photos, as an ImageFolder (one class) for the peer and a folder for us."""
    folder = tmp / "data" / "photos"
    folder.mkdir(parents=True)
    for p in sorted((ASSETS / "photos-1k" / "train").glob("*.jpg"))[:n]:
        (folder / p.name).symlink_to(p)
    return folder


def peer_train(src: Path, env: dict, data: Path, tmp: Path, size: int, batch: int, steps: int) -> float:
    """Images/s of the peer's training loop, timed between its per-step log lines (first 2 steps warm-up)."""
    cmd = [sys.executable, str(src / "neural_style.py"), "train", "--dataset", str(data.parent), "--style-image",
           str(ROOT / "configs" / "styles" / "starry_night.jpg"), "--save-model-dir", str(tmp / "peer-out"), "--epochs", "1",
           "--batch-size", str(batch), "--image-size", str(size), "--log-interval", "1"]
    stamps = []
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as p:
        for line in p.stdout:
            if "Epoch 1:" in line:
                stamps.append(time.perf_counter())
    if p.returncode != 0 or len(stamps) < 4:
        raise SystemExit(f"pytorch/examples training failed (exit {p.returncode}, {len(stamps)} steps logged)")
    return (len(stamps) - 2) * batch / (stamps[-1] - stamps[1])


def ours_train(data: Path, tmp: Path, size: int, batch: int, steps: int, width: float | None, precision: str) -> float:
    cmd = [sys.executable, "-m", "zoo.cli", "train", "--style", "starry", "--preset", "quick", "--data", str(data),
           "--image-size", str(size), "--batch-size", str(batch), "--steps", str(steps), "--out", str(tmp / "runs"),
           "--run-id", f"w{width}", "--precision", precision, "-q"] + (["--width", str(width)] if width else [])
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"zoo train failed: {r.stdout[-500:]}{r.stderr[-500:]}")
    return json.loads((tmp / "runs" / f"w{width}" / "summary.json").read_text())["images_per_s"]


def wall(cmd: list[str], **kw) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed: {r.stdout[-400:]}{r.stderr[-400:]}")
    return time.perf_counter() - t


def apply_both(src: Path, env: dict, tmp: Path, size: int, repeats: int, precisions: list[str]) -> None:
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from bench.apply import random_model_zoo

    photo = tmp / f"photo_{size}.jpg"
    Image.open(ASSETS / "photos" / "tubingen.jpg").convert("RGB").resize((size, size), Image.Resampling.LANCZOS).save(photo, quality=92)
    sys.path.insert(0, str(src))
    from transformer_net import TransformerNet as PeerNet  # the peer's network class, from its checkout

    torch.manual_seed(0)
    torch.save(PeerNet().state_dict(), tmp / "peer.pth")
    ref = random_model_zoo(tmp / "zoo", 1.0)
    peer = [sys.executable, str(src / "neural_style.py"), "eval", "--content-image", str(photo), "--model", str(tmp / "peer.pth"),
            "--output-image", str(tmp / "peer.jpg")]
    ours = [sys.executable, "-m", "zoo.cli", "apply", ref, str(photo), "-o", str(tmp / "ours.jpg"), "-q", "--zoo", str(tmp / "zoo")]
    for _ in range(repeats):
        tp = wall(peer, env=env)  # the peer runs fp32 (it has no other precision on a CPU)
        runs = ", ".join(f"zoo apply --precision {p} {(to := wall(ours + ['--precision', p], cwd=ROOT)):.2f} s ({tp / to:.2f}x)" for p in precisions)
        print(f"{size}x{size}, width 1.0, whole process: pytorch/examples eval {tp:.2f} s, {runs}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=("train", "apply"))
    ap.add_argument("--examples", type=Path, default=DEFAULT_EXAMPLES, help="a pytorch/examples checkout")
    ap.add_argument("--mirror", default=None, help="git dir of a pytorch/examples mirror to export --examples from")
    ap.add_argument("--size", type=int, default=None, help="train: crop px (256); apply: photo side px (1080)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=2, help="apply: runs of each tool, alternating")
    ap.add_argument("--precision", default=None,
                    help="zoo's precisions, comma-separated (apply: each one; default auto,fp32; train: the first; "
                         "default auto). auto is bf16 where the CPU has AMX/avx512_bf16, else fp32: what an AVX2-only CPU runs")
    a = ap.parse_args()
    src = peer_dir(a.examples, a.mirror)
    import torch

    print(f"# {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = peer_env(tmp, src)
        if a.what == "apply":
            apply_both(src, env, tmp, a.size or 1080, a.repeats, (a.precision or "auto,fp32").split(","))
            return
        size = a.size or 256
        data = photos_folder(tmp, a.steps * a.batch)
        print(f"{size} px crops, batch {a.batch}, {a.steps} steps (first 2 warm-up), images/s:", flush=True)
        print(f"  pytorch/examples (full width, VGG-16 to relu4_3): {peer_train(src, env, data, tmp, size, a.batch, a.steps):.2f}", flush=True)
        prec = (a.precision or "auto").split(",")[0]
        print(f"  zoo train --preset quick --precision {prec} (half width, VGG-19 to relu4_1): "
              f"{ours_train(data, tmp, size, a.batch, a.steps, None, prec):.2f}", flush=True)
        print(f"  zoo train --preset quick --precision {prec} --width 1: {ours_train(data, tmp, size, a.batch, a.steps, 1.0, prec):.2f}", flush=True)


if __name__ == "__main__":
    main()
