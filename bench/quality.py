"""Quality yardstick: our built-in models against Engstrom's published networks (wave, udnie, scream,
shipwreck) and against Gatys optimisation (starry, composition_vii: no reference network). Not a test.

    python bench/quality.py                              # every built-in style, held-out photos, 512 px
    python bench/quality.py --styles wave,udnie --gatys  # also `zoo stylize` on every photo (slow)
    python bench/quality.py --gatys starry,composition_vii --figure fig.jpg
                                                         # Gatys as the reference where no network is
    python bench/quality.py --save-grid out/quality      # photo | ours | reference PNGs to look at
    python bench/quality.py --checkpoint runs/R/checkpoints/step0002000.ckpt --no-builtin
                                                         # a training checkpoint, before publishing it

Photos: ``../shared/assets/photos`` (demo photos none of the models trained on; the 27 MP one is
left out), or ``--data DIR``. For each style it stylises the same photos, at the size people apply
at (512 px), and prints `zoo evaluate`'s metrics (``zoo.evaluation.metrics.metrics_for``): style distance
to the painting (at the same size), content distance to the photo, layout SSIM (is the subject
still there?), the worst photo's black-clipped share, and forward ms/MP. Lower distances are better.

The reference format (``../shared/assets/reference/engstrom/<style>/``): ``manifest.json`` plus
raw little-endian float32 tensors ``Variable``, ``Variable_1``, ... in creation order: each conv
weight ``[kh, kw, in, out]`` (transposed convs ``[kh, kw, out, in]``) followed by its instance
norm's shift and scale. TensorFlow 'SAME' padding, no conv biases, RGB 0..255 in,
``tanh(x) * 150 + 127.5`` out.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zoo import EVAL_SIZE
from zoo.evaluation.metrics import metrics_for, photo_set, speed_ms_per_mp

ASSETS = Path(__file__).resolve().parents[2] / "shared" / "assets"
REFERENCES = {"wave": "wave", "udnie": "udnie", "scream": "scream", "shipwreck": "wreck"}  # our style -> engstrom/<dir>
BUILTIN_STYLES = ("starry", "wave", "scream", "udnie", "composition_vii", "shipwreck")


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


def held_out_photos(data: str | None, limit: int) -> list[Path]:
    if data:
        return photo_set(data, limit)
    photos = [p for p in photo_set(ASSETS / "photos", 100) if not p.name.startswith("figures_")]
    return photos[:limit]


def gatys_fn(style: str | None, style_path: Path, size: int, label: str | None = None):
    """`zoo stylize --style STYLE`'s optimisation (its defaults), as a photo -> image callable;
    ``style`` None: `--style-image style_path` (``label`` names its cache files)."""
    from lit_modules.gatys import stylize
    from zoo.media.images import load_image
    from zoo.inference.gatys import gatys_config as build_config

    cfg = build_config(style, {"size": size})
    painting = load_image(style_path)
    # Minutes per photo: each result is kept on disk, keyed by photo pixels, painting and settings,
    # so a later run (--save-cards, --figure) reuses it instead of optimising again.
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "style-zoo" / "bench" / "gatys"
    salt = hashlib.sha256(repr(cfg).encode() + painting.numpy().tobytes()).hexdigest()

    def fn(x: torch.Tensor) -> torch.Tensor:
        key = hashlib.sha256(salt.encode() + x.float().cpu().numpy().tobytes()).hexdigest()[:24]
        path = cache / f"{label or style}-{key}.pt"
        if path.is_file():
            return torch.load(path, weights_only=True)
        # metrics_for runs under inference_mode; the optimisation needs autograd on a normal tensor
        with torch.inference_mode(False), torch.enable_grad():
            y = stylize(x.clone(), [painting], cfg, progress=False)[0].detach()
        cache.mkdir(parents=True, exist_ok=True)
        torch.save(y, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
        return y

    return fn


def checkpoint_models(path: str) -> dict[str, torch.nn.Module]:
    """Style name -> plain network, for every style a training checkpoint learned (a multi-style
    checkpoint is specialised per style, as `zoo publish --all-styles` does)."""
    from lit_modules.fast_style import FastStyle

    hp = torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]
    metas = hp["style"] if isinstance(hp["style"], (list, tuple)) else [hp["style"]]
    net = FastStyle.network_from_checkpoint(path)
    return {m["name"]: net.specialize(i).eval() for i, m in enumerate(metas)}


def save_card_metrics(entry, results: dict, photos: list[Path], args) -> None:
    """Our model's metrics, plus the reference's (Engstrom's network, else Gatys) on the same photos,
    into the zoo's index record and card, as `zoo evaluate` stores them."""
    from lit_modules.hw import hardware_name
    from zoo.evaluation.metrics import save_metrics

    keys = ("style_distance", "content_distance", "ssim", "layout_ssim", "black_max")
    ours = results[entry.ref]
    m = {k: round(float(ours[k]), 6) for k in keys if k in ours}
    m.update({"tool": "bench/quality.py", "images": len(photos), "data": "../shared/assets/photos (held out: " + ", ".join(p.stem for p in photos) + ")",
              "size": args.size, "style_size": args.size, "backbone": "caffe",
              "speed": {"ms_per_mp": round(ours["speed"], 1), "device": hardware_name("cpu"), "precision": "float32"}})
    ref = next(((label, r) for label, r in results.items() if label.startswith(("engstrom/", "gatys"))), None)
    if ref:
        label, r = ref
        name = (f"Engstrom's published fast-style-transfer network ({label.split('/')[1]})" if label.startswith("engstrom/")
                else "Gatys optimisation (`zoo stylize`, its defaults)")
        m["reference"] = {"name": name, **{k: round(float(r[k]), 6) for k in keys if k in r}}
    else:  # not measured in this run (Gatys takes minutes a photo): an earlier version's, if on the same photos and size
        m.update(_earlier_reference(entry, m))
    save_metrics(entry, m, args.save_cards)


def _earlier_reference(entry, m: dict) -> dict:
    """{"reference": ...} from the newest earlier version of ``entry`` measured on the same photos at
    the same size (named in ``measured_for``), else {}."""
    for v in sorted(entry.zoo.versions(entry.name), key=lambda v: -v["version"]):
        old = v.get("metrics") or {}
        if v["version"] < entry.version and old.get("reference") and all(old.get(k) == m.get(k) for k in ("data", "size", "images")):
            return {"reference": {**old["reference"], "measured_for": f"{entry.name}@{v['version']}"}}
    return {}


def write_markdown(path: Path, table: list[tuple[str, str, dict]], photos: list[Path], size: int) -> None:
    lines = [f"{len(photos)} held-out photos ({', '.join(p.stem for p in photos)}) at {size} px; lower distances are better.", "",
             "| style | model | style d | content d | layout SSIM | black % (worst photo) |", "| --- | --- | --- | --- | --- | --- |"]
    for style, label, m in table:
        lines.append(f"| {style} | {label} | {m['style_distance']:.3f} | {m['content_distance']:.3f} | {m['layout_ssim']:.2f} | "
                     f"{100 * m['black_max']:.3f} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default=",".join(BUILTIN_STYLES))
    ap.add_argument("--data", default=None, help="photo folder (default: ../shared/assets/photos, held out of training)")
    ap.add_argument("--limit", type=int, default=6, help="photos from --data (sorted by name)")
    ap.add_argument("--size", type=int, default=EVAL_SIZE, help="photo long side, px (the painting too)")
    ap.add_argument("--zoo", default=None, help="zoo holding our models (default: yours + built-in)")
    ap.add_argument("--versions", default="", help="compare these refs too, e.g. wave@1,udnie@1")
    ap.add_argument("--checkpoint", default=None, help="also measure a training checkpoint (.ckpt), each of its styles")
    ap.add_argument("--no-builtin", action="store_true", help="skip the zoo's current models")
    ap.add_argument("--no-reference", action="store_true", help="skip the reference networks")
    ap.add_argument("--gatys", nargs="?", const="all", default="", metavar="STYLES",
                    help="also run zoo stylize's optimisation (minutes per photo; kept on disk): on every style, or on these (a,b)")
    ap.add_argument("--save-grid", default=None, help="folder to write side-by-side PNGs (photo | ours | reference)")
    ap.add_argument("--figure", default=None, help="write one JPEG: a row per style (photo | ours | reference) for --figure-photo")
    ap.add_argument("--figure-photo", default="chicago", help="photo (file stem) shown in --figure")
    ap.add_argument("--markdown", default=None, metavar="FILE", help="also write the table as Markdown (for a README or a note)")
    ap.add_argument("--save-cards", default=None, metavar="CARD_DIR",
                    help="write our model's metrics and the reference's into the zoo (--zoo zoo/builtin) and CARD_DIR")
    args = ap.parse_args()

    from lit_modules.errors import StyleZooError
    from zoo.registry import styles
    from zoo.inference.stylizer import Stylizer
    from zoo.media.images import load_image, save_image

    photos = held_out_photos(args.data, args.limit)
    print(f"# {len(photos)} held-out photos ({', '.join(p.stem for p in photos)}) at {args.size} px; painting at "
          f"{args.size} px; lower distance = better; black = worst photo's share of non-dark pixels clipped to black")
    print(f"{'style':16} {'model':18} {'style_d':>8} {'content_d':>9} {'layout':>6} {'black%':>7} {'ms/MP':>7}")
    extra = [r for r in args.versions.split(",") if r]
    figure_rows = []
    table: list[tuple[str, str, dict]] = []
    trained = checkpoint_models(args.checkpoint) if args.checkpoint else {}
    ckpt_label = Path(args.checkpoint).stem if args.checkpoint else ""
    for style in args.styles.split(","):
        style_path = styles.resolve(style)
        models, ours, results = [], None, {}
        for ref in ([] if args.no_builtin else [style]) + [r for r in extra if r.split("@")[0] == style]:
            try:
                stylizer = Stylizer.load(ref, args.zoo, "cpu", "fp32", tile=None)
            except StyleZooError as e:
                print(f"{style:16} {ref:18} not measured: {e}", flush=True)
                continue
            entry = stylizer.source
            models.append((entry.ref, stylizer.tensor))
            ours = ours or entry
        if style in trained:
            models.append((ckpt_label, lambda x, net=trained[style]: net(x)))
        if style in REFERENCES and not args.no_reference:
            models.append((f"engstrom/{REFERENCES[style]}", EngstromNet(ASSETS / "reference" / "engstrom" / REFERENCES[style])))
        if args.gatys == "all" or style in args.gatys.split(","):
            models.append(("gatys (stylize)", gatys_fn(style, style_path, args.size)))
        for label, fn in models:
            m = metrics_for(fn, photos, style_path, size=args.size)
            speed = speed_ms_per_mp(fn, "cpu", side=256) if not label.startswith("gatys") else float("nan")
            results[label] = {**m, "speed": speed}
            table.append((style, label, results[label]))
            print(f"{style:16} {label:18} {m['style_distance']:8.4f} {m['content_distance']:9.4f} {m['layout_ssim']:6.3f} "
                  f"{100 * m['black_max']:7.3f} {speed:7.0f}", flush=True)
        if args.save_cards and ours is not None:
            save_card_metrics(ours, results, photos, args)
        for p in photos if (args.save_grid or args.figure) else []:
            if args.save_grid is None and p.stem != args.figure_photo:
                continue
            x = load_image(p, args.size)
            with torch.inference_mode():
                row = torch.cat([x] + [fn(x).float().clamp(0, 1) for label, fn in models], 3)
            if args.save_grid:
                Path(args.save_grid).mkdir(parents=True, exist_ok=True)
                save_image(row, Path(args.save_grid) / f"{style}_{p.stem}.png")
            if p.stem == args.figure_photo:
                figure_rows.append(row)
    if args.markdown:
        write_markdown(Path(args.markdown), table, photos, args.size)
    if args.figure and figure_rows:
        width = max(r.shape[-1] for r in figure_rows)  # styles without a reference get a blank last cell
        grid = torch.cat([F.pad(r, (0, width - r.shape[-1]), value=1.0) for r in figure_rows], 2)
        save_image(F.interpolate(grid, scale_factor=0.5, mode="area"), Path(args.figure))


if __name__ == "__main__":
    main()
