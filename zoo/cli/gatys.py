"""`zoo stylize`: Gatys et al.'s optimisation of a photo's pixels."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lit_modules.gatys_config import GatysConfig  # torch-free; the defaults' one source

from .common import errors_as_exit, fail

_G = GatysConfig()


def stylize(
    content: Annotated[Path, typer.Argument(help="Photo to stylise.")],
    style: Annotated[Optional[str], typer.Option("--style", "-s", help="Named style (see configs/styles).")] = None,
    style_image: Annotated[Optional[list[Path]], typer.Option("--style-image", help="Style image file; repeat to blend several.")] = None,
    style_weights: Annotated[Optional[str], typer.Option(help="Comma-separated blend weights, one per style image.")] = None,
    size: Annotated[int, typer.Option(help="Long side of the output, px.")] = _G.size,
    steps: Annotated[int, typer.Option(help="Iterations at the coarsest scale; finer scales get fewer (equal time per scale).")] = _G.steps,
    min_steps: Annotated[int, typer.Option(help="...but at least this many at each finer scale up to 512 px (a quarter per doubling above).")] = _G.min_steps,
    min_size: Annotated[int, typer.Option(help="Coarse-to-fine starts at this long side, doubling up to --size.")] = _G.min_size,
    optimizer: Annotated[str, typer.Option(help="lbfgs or adam.")] = _G.optimizer,
    content_weight: Annotated[Optional[float], typer.Option(help="Content weight (default: the style's recommendation).")] = None,
    style_weight: Annotated[Optional[float], typer.Option(help="Style weight (default: the style's recommendation).")] = None,
    tv_weight: Annotated[Optional[float], typer.Option(help="Total-variation weight (default: the style's recommendation).")] = None,
    layout_weight: Annotated[Optional[float], typer.Option(help="Weight of the shallow content term that holds the photo's layout at every scale but the last (0: off; default: the style's recommendation).")] = None,
    style_scale: Annotated[float, typer.Option(help="Style image size relative to the output.")] = _G.style_scale,
    preserve_color: Annotated[bool, typer.Option("--preserve-color", help="Keep the photo's colours; transfer luminance only.")] = False,
    init: Annotated[str, typer.Option(help="content, noise, or an image path.")] = _G.init,
    seed: Annotated[int, typer.Option(help="Random seed.")] = _G.seed,
    precision: Annotated[str, typer.Option(help="auto (bf16 where fast), bf16 or fp32.")] = _G.precision,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file (default: CONTENT_stylized.jpg).")] = None,
    overwrite_input: Annotated[bool, typer.Option("--overwrite-input", help="Allow -o to be the content file.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Stylise a photo by optimising its pixels (Gatys et al.), coarse to fine, on the VGG-19 loss."""
    from lit_modules.hw import resolve_device
    from lit_modules.logs import quiet_lightning
    from zoo.inference.gatys import run_stylize

    if (style is None) == (not style_image):
        fail("give exactly one of --style NAME or --style-image PATH", 2)
    output = output or content.with_name(f"{content.stem}_stylized.jpg")
    with errors_as_exit():
        quiet_lightning()
        report = run_stylize(
            content=content, output=output, style=style, style_images=style_image or [], style_weights=style_weights,
            overrides=dict(size=size, steps=steps, min_steps=min_steps, min_size=min_size, optimizer=optimizer, content_weight=content_weight,
                           style_weight=style_weight, tv_weight=tv_weight, layout_weight=layout_weight, style_scale=style_scale, preserve_color=preserve_color,
                           seed=seed, precision=precision),
            init=init, device=resolve_device(device), overwrite_input=overwrite_input, progress=not quiet,
            on_stage=None if quiet else lambda i, n, h, w: typer.echo(f"scale {i}/{n}: {w}x{h}", err=True),
            notice=lambda m: typer.echo(m, err=True),
        )
    t = report["terms"]
    typer.echo(f"wrote {output} ({report['shape'][1]}x{report['shape'][0]}) in {report['seconds']:.1f} s; "
               f"loss {t.get('total', 0):.4g} (content {t.get('content', 0):.4g}, style {t.get('style', 0):.4g}, tv {t.get('tv', 0):.4g})")
