"""Quality yardstick: our built-in models against Engstrom's published networks. Not a test.

    python bench/quality.py                     # wave, udnie, scream on photos-1k/val
    python bench/quality.py --limit 64 --size 384

For each style it stylises the same photos with ours and with the reference and prints style
distance (to the painting) and content distance (to the photo), both measured by `zoo evaluate`'s
metrics (``zoo.evaluate.metrics_for``), plus SSIM and forward ms/MP. Lower distances are better.

The reference format (``../shared/assets/reference/engstrom/<style>/``): ``manifest.json`` plus
raw little-endian float32 tensors ``Variable``, ``Variable_1``, ... in creation order: each conv
weight ``[kh, kw, in, out]`` (transposed convs ``[kh, kw, out, in]``) followed by its instance
norm's shift and scale. TensorFlow 'SAME' padding, no conv biases, RGB 0..255 in,
``tanh(x) * 150 + 127.5`` out.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo.evaluate import metrics_for, photo_set, speed_ms_per_mp  # noqa: E402

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"
STYLE_FILES = {"wave": "wave.jpg", "udnie": "udnie.jpg", "scream": "the_scream.jpg"}


def load_variables(folder: Path) -> list[torch.Tensor]:
    manifest = json.loads((folder / "manifest.json").read_text())
    names = sorted(manifest, key=lambda k: int(k.rsplit("_", 1)[1]) if "_" in k else 0)
    return [torch.from_numpy(np.fromfile(folder / manifest[k]["filename"], dtype="<f4").reshape(manifest[k]["shape"]).copy())
            for k in names]


def _same_pad(x: torch.Tensor, k: int, s: int) -> torch.Tensor:
    """TensorFlow 'SAME' padding (the extra pixel goes bottom/right)."""
    h, w = x.shape[-2:]
    ph = max((-(-h // s) - 1) * s + k - h, 0)
    pw = max((-(-w // s) - 1) * s + k - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class EngstromNet(torch.nn.Module):
    """Engstrom's fast-style-transfer network rebuilt from its raw tensors; RGB [0,1] in and out."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        v = load_variables(folder)
        if len(v) != 48:
            raise ValueError(f"{folder}: expected 48 tensors (16 convs x weight/shift/scale), found {len(v)}")
        self.layers = [(v[i], v[i + 1], v[i + 2]) for i in range(0, 48, 3)]  # (weight, shift, scale)

    @staticmethod
    def _norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        var, mu = torch.var_mean(x, dim=(2, 3), keepdim=True, unbiased=False)
        return scale.view(1, -1, 1, 1) * (x - mu) / torch.sqrt(var + 1e-3) + shift.view(1, -1, 1, 1)

    def _conv(self, x: torch.Tensor, i: int, stride: int = 1, relu: bool = True) -> torch.Tensor:
        w, shift, scale = self.layers[i]
        k = w.shape[0]
        x = F.conv2d(_same_pad(x, k, stride), w.permute(3, 2, 0, 1), stride=stride)
        x = self._norm(x, shift, scale)
        return F.relu(x) if relu else x

    def _deconv(self, x: torch.Tensor, i: int) -> torch.Tensor:
        w, shift, scale = self.layers[i]
        h, wd = x.shape[-2:]
        # TF conv2d_transpose, stride 2, SAME: PyTorch's padding-0 transpose, cropped to 2x.
        x = F.conv_transpose2d(x, w.permute(3, 2, 0, 1), stride=2)[..., : 2 * h, : 2 * wd]
        return F.relu(self._norm(x, shift, scale))

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) RGB [0, 1]
        h, w = x.shape[-2:]
        x = self._conv(x * 255, 0)
        x = self._conv(x, 1, stride=2)
        x = self._conv(x, 2, stride=2)
        for r in range(5):
            x = x + self._conv(self._conv(x, 3 + 2 * r), 4 + 2 * r, relu=False)
        x = self._deconv(x, 13)
        x = self._deconv(x, 14)
        x = self._conv(x, 15, relu=False)
        y = torch.tanh(x) * 150 + 255 / 2
        return (y[..., :h, :w] / 255).clamp(0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default="wave,udnie,scream")
    ap.add_argument("--data", default=str(ASSETS / "photos-1k" / "val"))
    ap.add_argument("--limit", type=int, default=16, help="photos from --data (sorted by name)")
    ap.add_argument("--size", type=int, default=256, help="photo long side, px")
    ap.add_argument("--style-size", type=int, default=256, help="painting long side for the Gram targets, px (same for both)")
    ap.add_argument("--zoo", default=None, help="zoo holding our models (default: yours + built-in)")
    ap.add_argument("--save-grid", default=None, help="folder to write side-by-side PNGs (photo | ours | reference)")
    args = ap.parse_args()

    from zoo.apply import load_model
    from zoo.images import load_image, save_image

    photos = photo_set(args.data, args.limit)
    print(f"# {len(photos)} photos from {args.data} at {args.size} px; painting at {args.style_size} px; lower distance = better")
    print(f"{'style':8} {'model':10} {'style_dist':>10} {'content_dist':>12} {'ssim':>6} {'ms/MP':>8}")
    for style in args.styles.split(","):
        net, entry, dtype = load_model(style, args.zoo, "cpu", "fp32")
        ours = lambda x, net=net: net(x)  # noqa: E731
        ref = EngstromNet(ASSETS / "reference" / "engstrom" / style)
        style_path = ASSETS / "styles" / STYLE_FILES[style]
        for label, fn in ((entry.ref, ours), ("engstrom", ref)):
            m = metrics_for(fn, photos, style_path, size=args.size, style_size=args.style_size)
            print(f"{style:8} {label:10} {m['style_distance']:10.4f} {m['content_distance']:12.4f} {m['ssim']:6.3f} "
                  f"{speed_ms_per_mp(fn, 'cpu', side=256):8.0f}", flush=True)
        if args.save_grid:
            Path(args.save_grid).mkdir(parents=True, exist_ok=True)
            x = load_image(photos[0], args.size)
            with torch.inference_mode():
                save_image(torch.cat([x, ours(x), ref(x)], 3), Path(args.save_grid) / f"{style}.png")


if __name__ == "__main__":
    main()
