"""Style Zoo: train, version, apply and serve neural style transfer models.

From Python::

    import zoo
    stylize = zoo.load("starry")                 # sha256-verified, loaded once: a Stylizer
    out = stylize(PIL.Image.open("photo.jpg"))   # PIL in, PIL out; a (1, 3, H, W) tensor in, tensor out
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.inference.stylizer import Stylizer

# The size quality is judged at (zoo evaluate, bench/quality.py): the size people apply at. Smaller
# sizes hide how far a network's strokes are from the painting's. Torch-free, so the CLI reads it.
EVAL_SIZE = 512


def load(ref: str, zoo: str | None = None, device: str = "cpu", precision: str = "auto", **options) -> "Stylizer":
    """A zoo model (``name``, ``name@N`` or a blend ``a:0.7+b:0.3``) as a Stylizer. ``options``:
    ``tile`` ("auto", None or px), ``strength`` (0..1), ``preserve_color``, ``scale`` (1, as
    trained, unless given; "auto" paints a big photo like its 512 px preview, as ``zoo apply`` does)."""
    from zoo.inference.stylizer import Stylizer

    return Stylizer.load(ref, zoo, device, precision, **options)
