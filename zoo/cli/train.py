"""`zoo train`: a fast feed-forward network for one style, or several in one network."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import errors_as_exit, fail


def _nearest(painting: str | None, style: str | None = None) -> tuple[str, float]:
    """The nearest zoo model to a painting file, or to a named style's painting (not its own models)."""
    from zoo.evaluation.nearest import nearest_model
    from zoo.registry import styles

    return nearest_model(painting or styles.resolve(style), exclude=style)


def train(
    style: Annotated[Optional[str], typer.Option("--style", "-s", help="Named style (see configs/styles).")] = None,
    style_image: Annotated[Optional[Path], typer.Option("--style-image", help="Style image file.")] = None,
    data: Annotated[Optional[str], typer.Option(help="Folder of photos, or hf:DATASET (default: the preset's).")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Training crop, px (default: the preset's).")] = None,
    style_size: Annotated[Optional[int], typer.Option(help="Style image long side for its Gram targets, px (default: the preset's); a smaller painting is read at its own size, every stage scaled with it.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Photos per step per device (default: the preset's).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Training steps (default: the preset's).")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option(
        help="Steps between checkpoints (default: the preset's); a run stopped before its first one starts again with --resume.")] = None,
    max_time: Annotated[Optional[str], typer.Option(help="Stop after DD:HH:MM:SS (checkpoint kept).")] = None,
    minutes: Annotated[Optional[float], typer.Option(
        help="Time budget: the learning rate, crop stages and content limit are fitted to it and the run ends with a checkpoint "
             "within it (default: the preset's). With --steps, whichever ends first ends the run.")] = None,
    content_weight: Annotated[Optional[float], typer.Option(help="Content weight (default: the style's recommendation).")] = None,
    style_weight: Annotated[Optional[str], typer.Option(
        help="Style weight (default: the style's recommendation); with --style a,b,c one for all or one per style, e.g. 5,4,2.")] = None,
    tv_weight: Annotated[Optional[float], typer.Option(help="Total-variation weight (default: the style's recommendation).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate (default: the preset's).")] = None,
    width: Annotated[Optional[float], typer.Option(help="Network width multiplier (default: the preset's).")] = None,
    init: Annotated[Optional[str], typer.Option(
        help="Start from a trained network, not random weights: a zoo model NAME[@N] (its family's styles fill "
             "the styles of the same name), a run checkpoint, or 'nearest' (the zoo model whose painting is nearest "
             "--style-image's, or nearest one --style's among the other styles' models).")] = None,
    photo_size: Annotated[Optional[int], typer.Option(
        help="Resize photos' short side to this before the random crop, px (default: the crop size, the whole "
             "photo; larger trains on parts of photos, which did worse for the built-ins: see docs/models.md).")] = None,
    devices: Annotated[Optional[str], typer.Option(help="auto, N, or a list like 0,1 (default: auto).")] = None,
    num_nodes: Annotated[Optional[int], typer.Option(help="Nodes (multi-node DDP, e.g. under SLURM or torchrun).")] = None,
    strategy: Annotated[Optional[str], typer.Option(help="auto (DDP for >1 device), ddp, ddp_spawn, ...")] = None,
    accelerator: Annotated[Optional[str], typer.Option(help="auto, cpu or gpu.")] = None,
    precision: Annotated[Optional[str], typer.Option(help="auto (bf16 where fast, else fp32), fp32, bf16, 16-mixed.")] = None,
    channels_last: Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last", help="NHWC memory layout.")] = None,
    compile: Annotated[Optional[bool], typer.Option("--compile/--no-compile", help="torch.compile the network.")] = None,
    streaming: Annotated[Optional[bool], typer.Option("--streaming/--no-streaming", help="Stream an hf: dataset instead of downloading it.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Random seed (default: the preset's).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Folder of run directories (default: runs).")] = None,
    run_id: Annotated[Optional[str], typer.Option(help="Run directory name (default: STYLE-TIMESTAMP).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this directory from its last checkpoint.")] = None,
    preset: Annotated[str, typer.Option(help="own (CPU, a painting of your own: warm start from the nearest zoo model, "
                                              "a time budget), own-gpu (the same on a GPU: 256 px crops, a budget in photos), quick (CPU, "
                                              "minutes, from scratch), default (paper recipe, GPU, from scratch), builtin (the built-in "
                                              "models' CPU recipe: six styles, long, resumable), finetune (their second stage: one style "
                                              "at 256 px from --init NAME), or auto (--style-image or one --style: own-gpu on a GPU, own "
                                              "on a CPU; several styles: default on a GPU, quick on a CPU).")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a fast feed-forward network for one style (Johnson et al.) into a run directory."""
    from lit_modules.logs import quiet_lightning
    from train.run import one_painting, run_train
    from zoo.registry.family import warm_source
    from zoo.registry.styles import training_inputs

    if resume is None and (style is None) == (style_image is None):
        fail("give exactly one of --style NAME or --style-image PATH (or --resume RUN_DIR)", 2)
    if init == "nearest" and not one_painting(style, None if style_image is None else str(style_image)) and resume is None:
        fail("--init nearest needs --style-image or one --style (the painting to find the nearest zoo model for)", 2)

    def say(message: str) -> None:
        typer.echo(message, err=True)

    with errors_as_exit():
        if style is not None:  # a mistyped name before the data check: without --data that is the preset's Hub dataset
            from train.config import TrainConfig
            from zoo.registry.styles import get

            for name in TrainConfig(style=style).style_names():
                get(name)
        summary = run_train(
            dict(style=style, style_image=None if style_image is None else str(style_image), data=data, image_size=image_size, style_size=style_size,
                 photo_size=photo_size, init=init, batch_size=batch_size, max_steps=steps, checkpoint_every=checkpoint_every, max_time=max_time, minutes=minutes, content_weight=content_weight,
                 style_weight=style_weight, tv_weight=tv_weight, lr=lr, width=width, devices=devices, num_nodes=num_nodes,
                 strategy=strategy, accelerator=accelerator, precision=precision, channels_last=channels_last, compile=compile,
                 streaming=streaming, seed=seed, out=None if out is None else str(out), run_id=run_id),
            style_inputs=lambda cfg: training_inputs(cfg, notice=say), from_model=warm_source, nearest=_nearest,
            preset=preset, resume=resume, progress=not quiet, before_fit=quiet_lightning, notice=say,
        )
    if summary.get("rank", 0) == 0:
        t = summary["final_loss"]
        typer.echo(f"trained {summary['run_dir']}: {summary['steps']} steps in {summary['wall_seconds']:.0f} s "
                   f"({summary['images_per_s']:.2f} images/s, {summary['precision']}); loss {t.get('total', 0):.4g} "
                   f"(content {t.get('content', 0):.4g}, style {t.get('style', 0):.4g}, tv {t.get('tv', 0):.4g})")
        if "style_weight" in summary:  # a run with a content limit
            w, w0 = summary["style_weight"], summary.get("style_weight_at_start", summary["style_weight"])
            if w < w0:
                typer.echo(f"style weight {w:g} at the end, from {w0:g} (lowered while the photo's content was going)")
            else:
                typer.echo(f"style weight {w:g}, kept (the photo's content stayed within the limit)")
        if summary.get("preview"):
            typer.echo(f"preview: {summary['preview']} (held-out photos, then the trained network's results)")
        typer.echo(f"publish: zoo publish {summary['run_dir']} --name NAME")
