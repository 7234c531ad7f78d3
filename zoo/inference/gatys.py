"""``zoo stylize``: a photo optimised through VGG-19 (Gatys et al.): files in, file out.

All validation happens before any work; Lightning is imported only once the inputs are known good."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from lit_modules.errors import ConfigError
from lit_modules.gatys_config import GatysConfig
from train.config import parse_floats
from zoo.media import images
from zoo.registry import styles


def parse_weights(text: str | None, n: int) -> list[float] | None:
    weights = parse_floats(text, "--style-weights")
    if weights is not None and len(weights) != n:
        raise ConfigError(f"--style-weights has {len(weights)} values for {n} style image(s)")
    return weights


def gatys_config(style: str | None, overrides: dict) -> GatysConfig:
    """Defaults <- the named style's recommended Gatys weights <- explicit overrides (None = unset)."""
    cfg = GatysConfig()
    if style is not None:
        cfg = replace(cfg, **styles.recommended(style, "gatys"))
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    cfg.check()
    return cfg


def run_stylize(
    content: Path,
    output: Path,
    style: str | None = None,
    style_images: list[Path] = (),
    style_weights: str | None = None,
    overrides: dict | None = None,
    init: str = "content",
    device: str = "cpu",
    overwrite_input: bool = False,
    progress: bool = True,
    on_stage: Callable | None = None,
    on_step: Callable | None = None,
    notice: Callable[[str], None] | None = None,
) -> dict:
    """Stylise ``content`` into ``output``; returns the report of ``lit_modules.gatys.stylize``.
    ``notice`` hears of a style image smaller than the run reads it."""
    cfg = gatys_config(style, dict(overrides or {}))
    content_t = images.load_image(content)  # the user's own file first: its error is the likeliest
    style_paths = [styles.resolve(style)] if style is not None else [Path(p) for p in style_images]
    weights = parse_weights(style_weights, len(style_paths))
    init_path = None if init in ("content", "noise") else Path(init)
    images.check_output_path(output, inputs=[content, *style_paths, *( [init_path] if init_path else [])], overwrite_input=overwrite_input)

    style_ts = [images.load_image(p) for p in style_paths]
    for p, t in zip(style_paths, style_ts):
        images.check_not_flat(t, f"the style image {p.name}")
        own = max(t.shape[-2:])  # the painting's long side in its file
        note = images.enlargement_note(f"the style image {p.name}", (t.shape[-1], t.shape[-2]),
                                       max(16, round(cfg.style_scale * cfg.size)), "the last scale",
                                       f", or --style-scale {own / cfg.size:.2g} reads it at its own size")
        if note and notice:
            notice(note)
    init_t = images.load_image(init_path) if init_path else None
    cfg = replace(cfg, init="content" if init_path else init)

    from lit_modules.gatys import stylize  # lightning import: only once the inputs are known good

    out, report = stylize(content_t, style_ts, cfg, style_weights=weights, init_image=init_t, device=device,
                          progress=progress, on_stage=on_stage, on_step=on_step)
    images.save_image(out, output)
    report["output"] = str(output)
    return report
