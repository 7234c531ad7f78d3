"""`zoo apply`: photos and videos through a zoo model."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo import EVAL_SIZE
from zoo.inference.scale import DEFAULT_SCALE  # torch-free, as is Temporal
from zoo.media.temporal import Temporal  # the video defaults' one source

from .common import FAST_EXIT, ZooOpt, errors_as_exit

_T = Temporal()


def apply(
    ref: Annotated[str, typer.Argument(help="Model: NAME or NAME@VERSION (see zoo list); a blend of styles trained together: starry+wave or starry:0.7+wave:0.3.")],
    inputs: Annotated[list[str], typer.Argument(help="Photos, videos (.mp4, .mov, .mkv, .webm, .avi), folders or globs.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file (one input only); else INPUT_MODEL.jpg (or .mp4) beside each input.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="Folder for the outputs (same file names).")] = None,
    size: Annotated[Optional[int], typer.Option(help="Resize the photo's long side to this first; else keep its size (videos keep theirs).")] = None,
    strength: Annotated[float, typer.Option(min=0.0, max=1.0, help="Blend with the photo: 0 = photo, 1 = fully stylised.")] = 1.0,
    preserve_color: Annotated[bool, typer.Option("--preserve-color", help="Keep the photo's colours (transfer luminance only).")] = False,
    scale: Annotated[str, typer.Option(help=f"Stroke size: auto (a photo of any size looks like its {EVAL_SIZE} px preview, only sharper), 1 (strokes in pixels, as trained: smaller on bigger photos) or a number (2 = twice as large as 1).")] = DEFAULT_SCALE,
    tile: Annotated[str, typer.Option(help="auto (from available memory) or a tile size in px.")] = "auto",
    shared_stats: Annotated[bool, typer.Option("--shared-stats/--no-shared-stats", help="Videos: normalise every frame with a running average of the frames' statistics (less flicker).")] = _T.shared_stats,
    blend: Annotated[float, typer.Option(min=0.0, max=0.95, help="Videos: weight of the previous output, warped by optical flow, in each frame; 0 = off (flickers more).")] = _T.blend,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option(help="auto (bf16 where fast: GPUs, AMX CPUs), fp32, bf16 or fp16.")] = "auto",
    overwrite_input: Annotated[bool, typer.Option("--overwrite-input", help="Allow an output to replace its input.")] = False,
    zoo: ZooOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Stylise photos and videos with a zoo model.

    Weights are sha256-verified safetensors; strokes are sized to the photo, big photos go in tiles; videos go frame by frame with shared statistics and flow-guided blending, audio copied."""  # one line: rich help keeps the docstring's line breaks
    import time

    from lit_modules.hw import resolve_device
    from zoo.inference.apply import apply_media

    bar, tasks = None, {}

    def progress(label: str, i: int, total: int) -> None:  # one bar per video (frames) or for the photos
        nonlocal bar
        if bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                           TimeRemainingColumn(), transient=True)
            bar.start()
        if label not in tasks:
            tasks[label] = (bar.add_task(f"{ref} {label}", total=total or None, rate=""), time.perf_counter(), i)
        task, t0, i0 = tasks[label]
        rate = (i - i0) / max(time.perf_counter() - t0, 1e-9)
        bar.update(task, completed=i, rate=f"{rate:.1f} {'photos' if label == 'photos' else 'frames'}/s" if i > i0 else "")

    with errors_as_exit():
        try:
            r = apply_media(ref, inputs, output=output, out_dir=out_dir, zoo=zoo, temporal=Temporal(shared_stats=shared_stats, blend=blend),
                            on_progress=None if quiet else progress, size=size, strength=strength, preserve_color=preserve_color,
                            scale=scale, tile=tile, device=resolve_device(device), precision=precision, overwrite_input=overwrite_input)
        finally:
            if bar is not None:
                bar.stop()
    FAST_EXIT.append(True)  # every output is written and closed: main() may skip the interpreter's teardown
    if r.outputs:
        where = str(r.outputs[0]) if len(r.outputs) == 1 else f"{len(r.outputs)} files"
        what = [f"{r.megapixels:.2f} MP{f', {r.tiled} tiled' if r.tiled else ''}"] if r.megapixels else []
        what += [f"{v.frames} frames {v.width}x{v.height} at {v.fps:.1f} frames/s" for v in r.videos]
        failed = f"; {len(r.failed)} failed" if r.failed else ""
        typer.echo(f"{r.ref}: wrote {where} ({'; '.join(what)}) in {r.seconds:.1f} s{failed}")
    for line in r.failed:  # the inputs that could not be done, after all the others were
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
    if r.failed:
        raise typer.Exit(1)
