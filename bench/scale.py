"""Benchmark ``zoo apply --scale``: does a big photo at ``auto`` look like its 512 px preview, keep the
photo's edges, and cost no more than today's full-size apply (``--scale 1``)? Prints the table
(Markdown); never run by the test suite.

    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python bench/scale.py               # starry, wave, udnie
    .venv/bin/python bench/scale.py --models starry --figure docs/scale.jpg

Photos: the 17.9 MP demo photo, the same upscaled to 27 MP, and two demo photos upscaled to
12 MP and 9.7 MP. For each model, photo and scale, one fresh process stylises the full-size photo
(wall time of the Stylizer call, peak RSS of the whole process). Then, on this side:

- **style d** (bench/quality.py's: Gram distance to the painting at 512 px, caffe VGG-19) of the
  result shrunk to 512 px (Lanczos), and its ratio to the 512 px preview's;
- **layout SSIM to the preview** (``zoo.evaluation.metrics.layout_ssim``) of the shrunk result;
- **edges**: correlation of the luminance gradient magnitude of the full-size result with the
  photo's (how much of the photo's edge map survives at full size).
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = (ROOT / ".." / "shared" / "assets" / "photos").resolve()
# (label, source photo, long side or None = as is)
INPUTS = (("figures 17.9 MP", "figures_5184x3456.jpg", None), ("figures 27 MP", "figures_5184x3456.jpg", 6372),
          ("tubingen 12 MP", "tubingen.jpg", 4000), ("golden_gate 9.7 MP", "golden_gate.jpg", 3600))


def one(model: str, photo: str, scale: str, out: str) -> None:
    """In a fresh process: stylise ``photo`` at ``scale``, write ``out`` (PNG), print seconds and peak MB."""
    from zoo.inference.stylizer import Stylizer
    from zoo.media.images import read_image

    s = Stylizer.load(model, scale=scale)
    img = read_image(photo)
    t = time.perf_counter()
    y = s(img)
    sec = time.perf_counter() - t
    y.save(out, compress_level=1)
    print(f"{sec:.3f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}")


def make_inputs(folder: Path) -> list[tuple[str, Path]]:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    out = []
    for label, name, side in INPUTS:
        if side is None:
            out.append((label, PHOTOS / name))
            continue
        img = Image.open(PHOTOS / name).convert("RGB")
        k = side / max(img.size)
        p = folder / f"{Path(name).stem}_{side}.jpg"
        img.resize((round(img.width * k), round(img.height * k)), Image.Resampling.LANCZOS).save(p, quality=95)
        out.append((label, p))
    return out


def edge_corr(y, x) -> float:
    """Correlation of luminance gradient magnitudes (numpy (H, W, 3) uint8), in row bands."""
    import numpy as np

    sums = np.zeros(5)
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    for r0 in range(0, x.shape[0] - 1, 512):
        r1 = min(x.shape[0], r0 + 513)
        g = []
        for a in (y, x):
            lum = a[r0:r1].astype(np.float32) @ luma / 255
            g.append(np.hypot(lum[1:, :-1] - lum[:-1, :-1], lum[:-1, 1:] - lum[:-1, :-1]).ravel().astype(np.float64))
        sums += [g[0].sum(), g[1].sum(), (g[0] * g[1]).sum(), (g[0] ** 2).sum(), (g[1] ** 2).sum()]
    n = sum((min(x.shape[0], r0 + 513) - r0 - 1) * (x.shape[1] - 1) for r0 in range(0, x.shape[0] - 1, 512))
    sy, sx, sxy, syy, sxx = sums
    return float((sxy - sy * sx / n) / np.sqrt((syy - sy * sy / n) * (sxx - sx * sx / n)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["starry", "wave", "udnie"])
    ap.add_argument("--photos", type=int, default=len(INPUTS), help="the first N of the photos")
    ap.add_argument("--figure", type=Path, help="save preview | full size at 1 (crop) | at auto (same crop) for the first model")
    args = ap.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from lit_modules.vgg import VGG19Features
    from zoo import EVAL_SIZE
    from zoo.evaluation.metrics import STYLE_LAYERS, layout_ssim, style_distance, style_image_of, style_targets
    from zoo.inference.stylizer import Stylizer
    from zoo.media.images import pil_to_tensor, read_image, resize_long_side

    Image.MAX_IMAGE_PIXELS = None
    torch.set_grad_enabled(False)
    vgg = VGG19Features(layers=STYLE_LAYERS, backbone="caffe")
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "native")
    print(f"oneDNN ISA: {isa}; {os.cpu_count()} cores; torch {torch.__version__}\n")
    print("| model | photo | preview style d | scale | seconds | peak MB | style d (x preview) | layout SSIM to preview | edges |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = make_inputs(Path(tmp))[: args.photos]
        for model in args.models:
            S = Stylizer.load(model)
            target = style_targets(vgg, style_image_of(S.source), EVAL_SIZE)
            for label, photo in inputs:
                img = read_image(photo)
                preview = pil_to_tensor(S(resize_long_side(img, EVAL_SIZE)))
                d0 = style_distance(vgg(preview), target)
                x = np.asarray(img)
                outs = {}
                for scale in ("1", "auto"):
                    out = Path(tmp) / f"{model}_{scale}.png"
                    r = subprocess.run([sys.executable, __file__, "--one", model, str(photo), scale, str(out)],
                                       capture_output=True, text=True, check=True)
                    sec, mb = r.stdout.split()[-2:]
                    y = read_image(out)
                    shrunk = pil_to_tensor(resize_long_side(y, EVAL_SIZE))
                    d = style_distance(vgg(shrunk), target)
                    print(f"| {model} | {label} | {d0:.3f} | {scale} | {float(sec):.1f} | {mb} | {d:.3f} ({d / d0:.2f}) | "
                          f"{layout_ssim(shrunk, preview):.3f} | {edge_corr(np.asarray(y), x):.3f} |", flush=True)
                    outs[scale] = y
                if args.figure and model == args.models[0] and label == inputs[0][0]:
                    figure(args.figure, resize_long_side(img, EVAL_SIZE), to_pil(preview), outs)
                del img, x, outs


def to_pil(t):
    from zoo.media.images import tensor_to_pil

    return tensor_to_pil(t)


def figure(path: Path, photo_small, preview, outs) -> None:
    """preview (512 px) | full size at --scale 1, a 1:1 crop | --scale auto, the same crop; 512 px tall."""
    from PIL import Image, ImageDraw

    W, H = outs["1"].size
    c = 512
    box = (W * 65 // 100, H * 33 // 100, W * 65 // 100 + c, H * 33 // 100 + c)  # an eye of the right-hand robot on the demo photo
    k = c / preview.height
    pv = preview.resize((round(preview.width * k), c), Image.Resampling.LANCZOS)
    fig = Image.new("RGB", (pv.width + 2 * c + 16, c), "white")
    fig.paste(pv, (0, 0))
    ImageDraw.Draw(fig).rectangle([round(box[0] / W * pv.width), round(box[1] / H * c),
                                   round(box[2] / W * pv.width), round(box[3] / H * c)], outline="white", width=2)
    fig.paste(outs["1"].crop(box), (pv.width + 8, 0))
    fig.paste(outs["auto"].crop(box), (pv.width + c + 16, 0))
    fig.save(path, quality=88)
    print(f"\nfigure: {path}")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--one":
        one(*sys.argv[2:])
    else:
        main()
