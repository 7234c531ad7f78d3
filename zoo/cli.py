"""`zoo`: train, publish, list, apply, evaluate and export neural style transfer models.

Every command validates its arguments, calls one library function and prints the result.
Library errors (``StyleZooError``) become one red line on stderr and exit code 1; bad usage
exits 2 (Typer's own convention). Heavy imports (torch, lightning) happen inside commands so
``zoo --help`` is instant.
"""
from __future__ import annotations

import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from lit_modules.errors import StyleZooError

app = typer.Typer(
    name="zoo",
    help="Style Zoo: neural style transfer you can train, version and apply.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Style Zoo: neural style transfer you can train, version and apply."""


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def errors_as_exit():
    """Turn library errors (and Ctrl-C) into one line and a non-zero exit."""
    try:
        yield
    except StyleZooError as e:
        fail(str(e))
    except KeyboardInterrupt:
        fail("interrupted", 130)


def quiet_lightning() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(f"device {device!r} requested but CUDA is not available; use --device cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        fail(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


# ---------------------------------------------------------------------------------------------
# zoo stylize (Gatys)
# ---------------------------------------------------------------------------------------------
from lit_modules.gatys_config import GatysConfig  # noqa: E402  (torch-free; the defaults' one source)

_G = GatysConfig()


@app.command()
def stylize(
    content: Annotated[Path, typer.Argument(help="Photo to stylise.")],
    style: Annotated[Optional[str], typer.Option("--style", "-s", help="Named style (see configs/styles).")] = None,
    style_image: Annotated[Optional[list[Path]], typer.Option("--style-image", help="Style image file; repeat to blend several.")] = None,
    style_weights: Annotated[Optional[str], typer.Option(help="Comma-separated blend weights, one per style image.")] = None,
    size: Annotated[int, typer.Option(help="Long side of the output, px.")] = _G.size,
    steps: Annotated[int, typer.Option(help="Iterations at the final size.")] = _G.steps,
    coarse_steps: Annotated[int, typer.Option(help="Iterations at each coarser size.")] = _G.coarse_steps,
    optimizer: Annotated[str, typer.Option(help="lbfgs or adam.")] = _G.optimizer,
    content_weight: Annotated[Optional[float], typer.Option(help="Content weight [default: the style's recommendation].")] = None,
    style_weight: Annotated[Optional[float], typer.Option(help="Style weight [default: the style's recommendation].")] = None,
    tv_weight: Annotated[Optional[float], typer.Option(help="Total-variation weight [default: the style's recommendation].")] = None,
    style_scale: Annotated[float, typer.Option(help="Style image size relative to the output.")] = _G.style_scale,
    preserve_color: Annotated[bool, typer.Option("--preserve-color", help="Keep the photo's colours; transfer luminance only.")] = False,
    init: Annotated[str, typer.Option(help="content, noise, or an image path.")] = _G.init,
    seed: Annotated[int, typer.Option(help="Random seed.")] = _G.seed,
    precision: Annotated[str, typer.Option(help="auto (bf16 where fast), bf16 or fp32.")] = _G.precision,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file [default: CONTENT_stylized.jpg].")] = None,
    overwrite_input: Annotated[bool, typer.Option("--overwrite-input", help="Allow -o to be the content file.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Stylise a photo by optimising its pixels (Gatys et al.), coarse to fine, on the VGG-19 loss."""
    from zoo.stylize import run_stylize

    if (style is None) == (not style_image):
        fail("give exactly one of --style NAME or --style-image PATH", 2)
    output = output or content.with_name(f"{content.stem}_stylized.jpg")
    with errors_as_exit():
        quiet_lightning()
        report = run_stylize(
            content=content, output=output, style=style, style_images=style_image or [], style_weights=style_weights,
            overrides=dict(size=size, steps=steps, coarse_steps=coarse_steps, optimizer=optimizer, content_weight=content_weight,
                           style_weight=style_weight, tv_weight=tv_weight, style_scale=style_scale, preserve_color=preserve_color,
                           seed=seed, precision=precision),
            init=init, device=resolve_device(device), overwrite_input=overwrite_input, progress=not quiet,
            on_stage=None if quiet else lambda i, n, h, w: typer.echo(f"scale {i}/{n}: {w}x{h}", err=True),
        )
    t = report["terms"]
    typer.echo(f"wrote {output} ({report['shape'][1]}x{report['shape'][0]}) in {report['seconds']:.1f} s; "
               f"loss {t.get('total', 0):.4g} (content {t.get('content', 0):.4g}, style {t.get('style', 0):.4g}, tv {t.get('tv', 0):.4g})")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
