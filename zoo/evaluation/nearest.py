"""The zoo model nearest a new painting: where ``zoo train --style-image P --init nearest`` starts."""
from __future__ import annotations

from zoo.registry import styles
from zoo.registry.errors import ZooError
from zoo.registry.summary import model_rows


def nearest_model(painting, zoo: str | None = None, size: int = 256, exclude: str | None = None) -> tuple[str, float]:
    """(ref, style distance) of the zoo model whose named style's painting is nearest ``painting``
    (a file) by ``zoo evaluate``'s style distance between the two paintings at ``size`` px: the
    warm start ``zoo train --style-image P --init nearest`` takes. Models of the named style
    ``exclude`` are passed over (``zoo train --style NAME --init nearest`` learns NAME afresh)."""
    import torch

    from lit_modules.vgg import VGG19Features
    from zoo.media.images import load_image

    from .metrics import STYLE_LAYERS, style_distance, style_targets

    vgg = VGG19Features(layers=STYLE_LAYERS, backbone="caffe")
    with torch.no_grad():
        target = style_targets(vgg, painting, size)
        best = None
        for row in model_rows(zoo):
            if not row.style or row.style not in styles.names() or row.style == exclude:
                continue
            path, _ = styles.locate(styles.get(row.style))
            if path is None:
                continue
            d = style_distance(vgg(load_image(path, size), STYLE_LAYERS), target)
            if best is None or d < best[1]:
                best = (row.ref, d)
    if best is None:
        other = f" other than {exclude}" if exclude else ""
        raise ZooError(f"--init nearest: no zoo model of a named style{other} whose painting is here")
    return best
