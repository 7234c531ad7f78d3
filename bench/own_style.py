"""Your own painting, as a new user would: `zoo train --style-image P --data D` (no other flag) then
`zoo publish`, timed, and the published model against `zoo stylize --style-image P` (Gatys, its
defaults) on the same demo photos at 512 px. Not a test: it prints a table (and a figure).

    ONEDNN_MAX_CPU_ISA=AVX2 python bench/own_style.py                  # cafe_terrace, tahiti, woman_with_hat
    python bench/own_style.py --paintings tahiti --figure docs/own-style.jpg
    python bench/own_style.py --keep out/own                           # runs and zoo kept there (resumable)
    python bench/own_style.py --paintings woman_with_hat --minutes 30  # what a longer budget buys
    python bench/own_style.py --paintings cafe_terrace --init wave@5   # what another warm start buys
    python bench/own_style.py --keep GPU_OUT/own                       # models bench/gpu_own.sh trained on a GPU
    python bench/own_style.py --paintings /tmp/unlike/mondrian.jpg     # any image file (bench/unlike_paintings.py)

Paintings: ``../shared/assets/styles/<name>.jpg``, none of them a built-in's. Photos: the demo photos
(``../shared/assets/photos``), none in ``photos-1k``. Each train and publish runs in a fresh process,
as the user's would; Gatys results are cached on disk (minutes a photo; see ``quality.gatys_fn``).
Goals (issue 22): train + publish <= 15 min; style d <= 1.3x Gatys', content d <= 1.1x Gatys',
layout SSIM >= 0.6, black <= 0.1 %.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import ASSETS, gatys_fn, held_out_photos  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAINTINGS = ("cafe_terrace", "tahiti", "woman_with_hat")


def zoo(*args: str) -> float:
    """Run the `zoo` CLI in a fresh process (as a user would); its wall seconds."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "zoo.cli", *args], cwd=ROOT, check=True)
    return time.perf_counter() - t0


def train_and_publish(painting: Path, work: Path, data: str, minutes: float | None = None, init: str | None = None,
                      preset: str | None = None) -> dict:
    name = painting.stem + ("" if minutes is None else f"-{minutes:g}min") + ("" if init is None else f"-from-{init.replace('@', '')}")
    name += "" if preset is None else f"-{preset}"
    run, store = work / "runs" / name, work / "zoo"
    done = work / f"{name}.json"
    if done.is_file():  # measured already (--keep): reuse
        return json.loads(done.read_text())
    budget = () if minutes is None else ("--minutes", str(minutes))
    budget += () if init is None else ("--init", init)
    budget += () if preset is None else ("--preset", preset)
    train_s = zoo("train", "--style-image", str(painting), "--data", data, *budget, "--out", str(run.parent), "--run-id", name)
    publish_s = zoo("publish", str(run), "--name", name.replace("_", "-"), "--zoo", str(store), "--no-sample")
    out = {"train_s": train_s, "publish_s": publish_s, "ref": f"{name.replace('_', '-')}@1", "zoo": str(store)}
    done.write_text(json.dumps(out))
    return out


def collect(fn):
    """``fn`` that also keeps every output (for the figure)."""
    outs = []

    def run(x):
        y = fn(x)
        outs.append(y)
        return y

    return run, outs


def palette_distance(outputs: list[torch.Tensor], painting: torch.Tensor, directions: int = 64) -> float:
    """How far the outputs' colours are from the painting's: the sliced Wasserstein-1 distance between
    their RGB pixel distributions (``directions`` random unit vectors, 256 quantiles each), averaged
    over the outputs. The Gram terms hold colour only mixed with edges; this asks the eye's question
    (are these the painting's colours, in its proportions?) directly. (1, 3, H, W) tensors in [0, 1]."""
    dirs = torch.nn.functional.normalize(torch.randn(directions, 3, generator=torch.Generator().manual_seed(0)), dim=1)
    q = torch.linspace(0, 1, 256)

    def quantiles(t: torch.Tensor) -> torch.Tensor:  # (1, 3, H, W) -> (256, directions)
        proj = (t[0].float().clamp(0, 1).reshape(3, -1).T @ dirs.T).sort(0).values  # (HW, directions)
        return proj[(q * (len(proj) - 1)).long()]

    target = quantiles(painting)
    return sum(float((quantiles(y) - target).abs().mean()) for y in outputs) / len(outputs)


def row_images(tensors, h: int) -> list[Image.Image]:
    ims = [Image.fromarray(t[0].float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()) for t in tensors]
    return [im.resize((round(im.width * h / im.height), h), Image.LANCZOS) for im in ims]


def figure(path: Path, rows: list[tuple[Path, torch.Tensor, torch.Tensor, torch.Tensor]], h: int = 256) -> None:
    """One row per painting: painting | photo | 15-min model | Gatys."""
    from zoo.media.images import load_image

    lines = [row_images([load_image(p, 512), x, ours, gat], h) for p, x, ours, gat in rows]
    width = max(sum(im.width for im in line) + 8 * (len(line) - 1) for line in lines)
    fig = Image.new("RGB", (width, len(lines) * (h + 8) - 8), "white")
    for r, line in enumerate(lines):
        x = 0
        for im in line:
            fig.paste(im, (x, r * (h + 8)))
            x += im.width + 8
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.save(path, quality=88)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--paintings", default=",".join(PAINTINGS), help="names in ../shared/assets/styles, or image files")
    ap.add_argument("--data", default=str(ASSETS / "photos-1k" / "train"))
    ap.add_argument("--photos", type=int, default=6, help="demo photos to measure on")
    ap.add_argument("--minutes", type=float, help="train with this budget instead of the default (what more time buys)")
    ap.add_argument("--init", help="warm start from this zoo model instead of the preset's choice (what the start buys)")
    ap.add_argument("--preset", help="train with this preset (configs/train) instead of the CPU default (a variant of the recipe)")
    ap.add_argument("--keep", type=Path, help="keep runs and zoo here (a rerun reuses what is measured)")
    ap.add_argument("--figure", type=Path, help="painting | photo | model | Gatys, one row a painting (JPEG)")
    ap.add_argument("--figure-photo", default="chicago", help="the demo photo the figure shows")
    args = ap.parse_args()

    import zoo as zoo_api
    from zoo.evaluation.metrics import metrics_for
    from zoo.media.images import load_image

    work = args.keep or Path(tempfile.mkdtemp(prefix="own-style-"))
    work.mkdir(parents=True, exist_ok=True)
    photos = held_out_photos(None, args.photos)
    table, fig_rows = [], []
    for item in args.paintings.split(","):
        painting = Path(item) if Path(item).suffix else ASSETS / "styles" / f"{item}.jpg"  # a file, or an asset's name
        name = painting.stem
        t = train_and_publish(painting, work, args.data, args.minutes, args.init, args.preset)
        store = work / t["zoo"] if (work / t["zoo"]).is_dir() else Path(t["zoo"])  # bench/gpu_own.sh's: beside its json
        ours_fn, ours = collect(zoo_api.load(t["ref"], zoo=store).tensor)
        gat_fn, gat = collect(gatys_fn(None, painting, 512, label=name))
        m = metrics_for(ours_fn, photos, painting, size=512, per_photo=True)
        g = metrics_for(gat_fn, photos, painting, size=512, per_photo=True)
        art = load_image(painting, 512)
        m["palette"], g["palette"] = palette_distance(ours, art), palette_distance(gat, art)
        table.append((name, t, m, g))
        i = next((k for k, p in enumerate(photos) if p.stem == args.figure_photo), 0)
        fig_rows.append((painting, load_image(photos[i], 512), ours[i], gat[i]))
        print(f"{name}: train {t['train_s']:.0f} s + publish {t['publish_s']:.0f} s; ours {m['style_distance']:.3f} / "
              f"{m['content_distance']:.3f}, Gatys {g['style_distance']:.3f} / {g['content_distance']:.3f}", flush=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"\n{len(photos)} demo photos at 512 px; {cpu}, {torch.get_num_threads()} threads\n")
    print("| painting | train + publish | style d (x Gatys) | content d (x Gatys) | layout SSIM (Gatys) | palette d (Gatys) | black max |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, t, m, g in table:
        total = t["train_s"] + t["publish_s"]
        print(f"| {name} | {total / 60:.1f} min ({t['train_s']:.0f} + {t['publish_s']:.0f} s) "
              f"| {m['style_distance']:.3f} ({m['style_distance'] / g['style_distance']:.2f}x) "
              f"| {m['content_distance']:.3f} ({m['content_distance'] / g['content_distance']:.2f}x) "
              f"| {m['layout_ssim']:.2f} ({g['layout_ssim']:.2f}) | {m['palette']:.3f} ({g['palette']:.3f}) | {100 * m['black_max']:.3f} % |")
    if args.figure:
        figure(args.figure, fig_rows)
        print(f"\nfigure: {args.figure} (painting | photo | zoo train model | Gatys)")


if __name__ == "__main__":
    main()
