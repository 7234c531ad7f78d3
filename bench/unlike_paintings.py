"""Four paintings unlike the ones the `own` preset was tuned on, made from the public-domain paintings
in ../shared/assets/styles (so nothing new is shipped): a monochrome drawing, a mosaic, flat planes
between black lines, a dark painting. Not a test; it writes the JPEGs for bench/own_style.py.

    python bench/unlike_paintings.py /tmp/unlike
    ONEDNN_MAX_CPU_ISA=AVX2 python bench/own_style.py --paintings /tmp/unlike/ink.jpg,/tmp/unlike/mosaic.jpg \\
        --minutes 5 --keep out/unlike
    ONEDNN_MAX_CPU_ISA=AVX2 python bench/own_style.py --paintings /tmp/unlike/mondrian.jpg,/tmp/unlike/dark.jpg --keep out/unlike

Measured in docs/models.md ("Paintings unlike any it was tuned on").
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import ASSETS  # noqa: E402


def ink(src: Path) -> Image.Image:
    """wheat_field in greys, contrast stretched (2 % clipped each end): a monochrome drawing."""
    return ImageOps.autocontrast(Image.open(src / "wheat_field.jpg").convert("L"), cutoff=2).convert("RGB")


def mosaic(src: Path, tile: int = 28) -> Image.Image:
    """tahiti in flat ``tile`` px squares."""
    im = Image.open(src / "tahiti.jpg").convert("RGB")
    w, h = im.size
    return im.resize((w // tile, h // tile), Image.BOX).resize((w, h), Image.NEAREST)


def mondrian(side: int = 900, seed: int = 3) -> Image.Image:
    """A grid of flat red, blue, yellow and cream planes between 14 px black lines (generated)."""
    rng = random.Random(seed)
    im = Image.new("RGB", (side, side), (240, 236, 225))
    d = ImageDraw.Draw(im)
    xs, ys = sorted(rng.sample(range(80, side - 80), 5)), sorted(rng.sample(range(80, side - 80), 5))
    colours = [(200, 30, 30), (20, 50, 160), (240, 200, 20), (240, 236, 225), (240, 236, 225)]
    gx, gy = [0, *xs, side], [0, *ys, side]
    for i in range(len(gx) - 1):
        for j in range(len(gy) - 1):
            d.rectangle([gx[i], gy[j], gx[i + 1], gy[j + 1]], fill=rng.choice(colours))
    for x in xs:
        d.rectangle([x - 7, 0, x + 7, side], fill=(15, 15, 15))
    for y in ys:
        d.rectangle([0, y - 7, side, y + 7], fill=(15, 15, 15))
    return im


def dark(src: Path, brightness: float = 0.4) -> Image.Image:
    """shipwreck at 40 % of its brightness."""
    return ImageEnhance.Brightness(Image.open(src / "shipwreck.jpg").convert("RGB")).enhance(brightness)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/unlike")
    out.mkdir(parents=True, exist_ok=True)
    src = ASSETS / "styles"
    for name, im in (("ink", ink(src)), ("mosaic", mosaic(src)), ("mondrian", mondrian()), ("dark", dark(src))):
        im.save(out / f"{name}.jpg", quality=92)
        print(out / f"{name}.jpg", im.size)


if __name__ == "__main__":
    main()
