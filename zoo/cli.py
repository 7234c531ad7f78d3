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
from zoo import EVAL_SIZE

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
    """Silence Lightning's banners and known-harmless warnings (our own progress is shown instead)."""
    import warnings

    import lightning.pytorch  # noqa: F401  (its import sets its loggers to INFO: import first, then quiet)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for pattern in (r".*module\(s\) in eval mode.*",  # the frozen VGG, on purpose
                    r".*LeafSpec.*", r".*weights_only.*", r".*does not have many workers.*"):
        warnings.filterwarnings("ignore", pattern)


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
    steps: Annotated[int, typer.Option(help="Iterations at the coarsest scale; finer scales get fewer (equal time per scale).")] = _G.steps,
    min_steps: Annotated[int, typer.Option(help="...but at least this many at each finer scale up to 512 px (a quarter per doubling above).")] = _G.min_steps,
    min_size: Annotated[int, typer.Option(help="Coarse-to-fine starts at this long side, doubling up to --size.")] = _G.min_size,
    optimizer: Annotated[str, typer.Option(help="lbfgs or adam.")] = _G.optimizer,
    content_weight: Annotated[Optional[float], typer.Option(help="Content weight (default: the style's recommendation).")] = None,
    style_weight: Annotated[Optional[float], typer.Option(help="Style weight (default: the style's recommendation).")] = None,
    tv_weight: Annotated[Optional[float], typer.Option(help="Total-variation weight (default: the style's recommendation).")] = None,
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
    from zoo.stylize import run_stylize

    if (style is None) == (not style_image):
        fail("give exactly one of --style NAME or --style-image PATH", 2)
    output = output or content.with_name(f"{content.stem}_stylized.jpg")
    with errors_as_exit():
        quiet_lightning()
        report = run_stylize(
            content=content, output=output, style=style, style_images=style_image or [], style_weights=style_weights,
            overrides=dict(size=size, steps=steps, min_steps=min_steps, min_size=min_size, optimizer=optimizer, content_weight=content_weight,
                           style_weight=style_weight, tv_weight=tv_weight, style_scale=style_scale, preserve_color=preserve_color,
                           seed=seed, precision=precision),
            init=init, device=resolve_device(device), overwrite_input=overwrite_input, progress=not quiet,
            on_stage=None if quiet else lambda i, n, h, w: typer.echo(f"scale {i}/{n}: {w}x{h}", err=True),
        )
    t = report["terms"]
    typer.echo(f"wrote {output} ({report['shape'][1]}x{report['shape'][0]}) in {report['seconds']:.1f} s; "
               f"loss {t.get('total', 0):.4g} (content {t.get('content', 0):.4g}, style {t.get('style', 0):.4g}, tv {t.get('tv', 0):.4g})")


# ---------------------------------------------------------------------------------------------
# the zoo: publish, list, show, apply, evaluate, export
# ---------------------------------------------------------------------------------------------
ZooOpt = Annotated[Optional[str], typer.Option("--zoo", help="Zoo folder or fsspec URL; else $STYLE_ZOO_HOME, else ~/.cache/style-zoo/zoo.")]


@app.command()
def publish(
    run: Annotated[Path, typer.Argument(help="Training run folder (with checkpoints/last.ckpt) or a .ckpt file.")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Model name: a-z, 0-9, '_' and '-'.")] = None,
    zoo: ZooOpt = None,
    dtype: Annotated[str, typer.Option(help="Weight dtype on disk: fp16 or fp32.")] = "fp16",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")] = False,
    card_dir: Annotated[Optional[Path], typer.Option(help="Also write the card as CARD_DIR/NAME.md (+ NAME.jpg sample), e.g. model_cards.")] = None,
    sample: Annotated[Optional[Path], typer.Option(help="Photo stylised for the card's sample; else a Kodak photo from ../shared/assets, if present.")] = None,
    no_sample: Annotated[bool, typer.Option("--no-sample", help="Publish without a sample image.")] = False,
    style: Annotated[Optional[str], typer.Option("--style", "-s", help="For a run of several styles: the one to publish.")] = None,
    all_styles: Annotated[bool, typer.Option("--all-styles", help="For a run of several styles: publish each under its own name.")] = False,
) -> None:
    """Publish a trained network as the next version NAME@N: safetensors weights, config, model card."""
    from zoo.publish import DEFAULT_SAMPLE, publish as run_publish, publish_all

    if all_styles == (name is not None):
        fail("give --name NAME (with --style for a run of several styles), or --all-styles", 2)
    kw = dict(zoo=zoo, dtype=dtype, dry_run=dry_run, card_dir=card_dir, sample=None if no_sample else (sample or DEFAULT_SAMPLE))
    with errors_as_exit():
        results = publish_all(run, **kw) if all_styles else [run_publish(run, name, style=style, **kw)]
    for r in results:
        _publish_line(r)


def _publish_line(r: dict) -> None:
    if r["dry_run"]:
        typer.echo(f"dry run: would publish {r['ref']} to {r['zoo']} ({r['bytes'] / 1e6:.2f} MB, sha256 {r['sha256'][:12]})")
    else:
        typer.echo(f"published {r['ref']} to {r['zoo']}: {r['file']} ({r['bytes'] / 1e6:.2f} MB, sha256 {r['sha256'][:12]}), card {r['card']}"
                   + (f", copy {r['card_copy']}" if r.get("card_copy") else ""))


@app.command("list")
def list_models(
    pattern: Annotated[Optional[str], typer.Argument(help="Only names matching this glob or substring.")] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions", "-a", help="One row per version.")] = False,
    zoo: ZooOpt = None,
) -> None:
    """List the models in your zoo and the built-in ones."""
    import fnmatch

    from rich.console import Console
    from rich.table import Table

    from zoo.index import ZooStack

    with errors_as_exit():
        rows = ZooStack(zoo).entries(all_versions=all_versions)
    if pattern:
        rows = [(e, src) for e, src in rows if fnmatch.fnmatch(e.name, pattern) or pattern in e.name]
    if not rows:
        typer.echo("no models" + (f" matching {pattern!r}" if pattern else "") + "; publish one with: zoo publish RUN --name NAME")
        return
    table = Table(box=None, header_style="bold")
    for col in ("model", "size", "style", "style dist", "content dist", "SSIM", "ms/MP", "created", "from"):
        table.add_column(col, justify="right" if col in ("size", "style dist", "content dist", "SSIM", "ms/MP") else "left")

    def num(v, fmt):
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    for e, src in rows:
        m = e.info.get("metrics") or {}
        st = e.info.get("style") or {}
        table.add_row(e.ref, f"{e.info.get('bytes', 0) / 1e6:.1f} MB", st.get("title") or st.get("name") or "-",
                      num(m.get("style_distance"), ".3g"), num(m.get("content_distance"), ".3g"), num(m.get("ssim"), ".3f"),
                      num((m.get("speed") or {}).get("ms_per_mp"), ".0f"), str(e.info.get("created", ""))[:10], src)
    Console(width=200).print(table)


@app.command()
def show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    zoo: ZooOpt = None,
) -> None:
    """Print a model's card (Markdown with YAML front matter)."""
    from zoo.index import ZooStack

    with errors_as_exit():
        text = ZooStack(zoo).resolve(ref).card_text()
    typer.echo(text)


from zoo.video_config import Temporal  # noqa: E402  (torch-free; the video defaults' one source)

_T = Temporal()


@app.command()
def apply(
    ref: Annotated[str, typer.Argument(help="Model: NAME or NAME@VERSION (see zoo list); a blend of styles trained together: starry+wave or starry:0.7+wave:0.3.")],
    inputs: Annotated[list[str], typer.Argument(help="Photos, videos (.mp4, .mov, .mkv, .webm, .avi), folders or globs.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output file (one input only); else INPUT_MODEL.jpg (or .mp4) beside each input.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out-dir", help="Folder for the outputs (same file names).")] = None,
    size: Annotated[Optional[int], typer.Option(help="Resize the photo's long side to this first; else keep its size (videos keep theirs).")] = None,
    strength: Annotated[float, typer.Option(min=0.0, max=1.0, help="Blend with the photo: 0 = photo, 1 = fully stylised.")] = 1.0,
    preserve_color: Annotated[bool, typer.Option("--preserve-color", help="Keep the photo's colours (transfer luminance only).")] = False,
    tile: Annotated[str, typer.Option(help="auto (from available memory) or a tile size in px.")] = "auto",
    shared_stats: Annotated[bool, typer.Option("--shared-stats/--no-shared-stats", help="Videos: normalise every frame with a running average of the frames' statistics (less flicker).")] = _T.shared_stats,
    blend: Annotated[float, typer.Option(min=0.0, max=0.95, help="Videos: weight of the previous output, warped by optical flow, in each frame; 0 = off (flickers more).")] = _T.blend,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    precision: Annotated[str, typer.Option(help="auto (bf16 where fast: GPUs, AMX CPUs), fp32, bf16 or fp16.")] = "auto",
    overwrite_input: Annotated[bool, typer.Option("--overwrite-input", help="Allow an output to replace its input.")] = False,
    zoo: ZooOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Stylise photos and videos with a zoo model (sha256-verified safetensors; tiles for big photos;
    videos frame by frame with shared statistics and flow-guided blending, audio copied)."""
    import time

    from zoo.video import apply_media

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
                            tile=tile, device=resolve_device(device), precision=precision, overwrite_input=overwrite_input)
        finally:
            if bar is not None:
                bar.stop()
    _FAST_EXIT.append(True)  # every output is written and closed: main() may skip the interpreter's teardown
    where = str(r.outputs[0]) if len(r.outputs) == 1 else f"{len(r.outputs)} files"
    what = [f"{r.megapixels:.2f} MP{f', {r.tiled} tiled' if r.tiled else ''}"] if r.megapixels else []
    what += [f"{v.frames} frames {v.width}x{v.height} at {v.fps:.1f} frames/s" for v in r.videos]
    typer.echo(f"{r.ref}: wrote {where} ({'; '.join(what)}) in {r.seconds:.1f} s")


# ---------------------------------------------------------------------------------------------
# zoo train (fast style, Johnson et al.)
# ---------------------------------------------------------------------------------------------
@app.command()
def train(
    style: Annotated[Optional[str], typer.Option("--style", "-s", help="Named style (see configs/styles).")] = None,
    style_image: Annotated[Optional[Path], typer.Option("--style-image", help="Style image file.")] = None,
    data: Annotated[Optional[str], typer.Option(help="Folder of photos, or hf:DATASET (default: the preset's).")] = None,
    image_size: Annotated[Optional[int], typer.Option(help="Training crop, px (default: the preset's).")] = None,
    style_size: Annotated[Optional[int], typer.Option(help="Style image long side for its Gram targets, px (default: the preset's).")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Photos per step per device (default: the preset's).")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Training steps (default: the preset's).")] = None,
    max_time: Annotated[Optional[str], typer.Option(help="Stop after DD:HH:MM:SS (checkpoint kept).")] = None,
    content_weight: Annotated[Optional[float], typer.Option(help="Content weight (default: the style's recommendation).")] = None,
    style_weight: Annotated[Optional[str], typer.Option(
        help="Style weight (default: the style's recommendation); with --style a,b,c one for all or one per style, e.g. 5,4,2.")] = None,
    tv_weight: Annotated[Optional[float], typer.Option(help="Total-variation weight (default: the style's recommendation).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate (default: the preset's).")] = None,
    width: Annotated[Optional[float], typer.Option(help="Network width multiplier (default: the preset's).")] = None,
    init: Annotated[Optional[str], typer.Option(
        help="Start from a trained network, not random weights: a zoo model NAME[@N] (its family's styles fill "
             "the styles of the same name) or a run checkpoint.")] = None,
    photo_size: Annotated[Optional[int], typer.Option(
        help="Resize photos' short side to this before the random crop, px (default: the crop size, the whole "
             "photo; larger trains on parts of photos, which did worse for the built-ins: see README).")] = None,
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
    preset: Annotated[str, typer.Option(help="quick (CPU, ~15 min), default (paper recipe, GPU), builtin (the built-in models' "
                                              "CPU recipe: six styles, long, resumable), finetune (their second stage: one style at 256 px "
                                              "from --init NAME), or auto (quick on CPU, default on GPU).")] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train a fast feed-forward network for one style (Johnson et al.) into a run directory."""
    from zoo.training import run_train

    if resume is None and (style is None) == (style_image is None):
        fail("give exactly one of --style NAME or --style-image PATH (or --resume RUN_DIR)", 2)
    with errors_as_exit():
        summary = run_train(
            dict(style=style, style_image=None if style_image is None else str(style_image), data=data, image_size=image_size, style_size=style_size,
                 photo_size=photo_size, init=init, batch_size=batch_size, max_steps=steps, max_time=max_time, content_weight=content_weight,
                 style_weight=style_weight, tv_weight=tv_weight, lr=lr, width=width, devices=devices, num_nodes=num_nodes,
                 strategy=strategy, accelerator=accelerator, precision=precision, channels_last=channels_last, compile=compile,
                 streaming=streaming, seed=seed, out=None if out is None else str(out), run_id=run_id),
            preset=preset, resume=resume, progress=not quiet, before_fit=quiet_lightning,
        )
    if summary.get("rank", 0) == 0:
        t = summary["final_loss"]
        typer.echo(f"trained {summary['run_dir']}: {summary['steps']} steps in {summary['wall_seconds']:.0f} s "
                   f"({summary['images_per_s']:.2f} images/s, {summary['precision']}); loss {t.get('total', 0):.4g} "
                   f"(content {t.get('content', 0):.4g}, style {t.get('style', 0):.4g}, tv {t.get('tv', 0):.4g})")


@app.command()
def evaluate(
    ref: Annotated[str, typer.Argument(help="Model: NAME or NAME@VERSION.")],
    data: Annotated[Optional[Path], typer.Option(help="Folder of photos; else ../shared/assets/photos-1k/val.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Use the first N photos (sorted by name).")] = 8,
    size: Annotated[int, typer.Option(min=32, help="Long side of the photos and the painting, px.")] = EVAL_SIZE,
    style_image: Annotated[Optional[Path], typer.Option(help="Painting to compare with; else the model's named style.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    no_save: Annotated[bool, typer.Option("--no-save", help="Print only; do not write the metrics into the zoo and card.")] = False,
    card_dir: Annotated[Optional[Path], typer.Option(help="Also refresh CARD_DIR/NAME.md, e.g. model_cards.")] = None,
    zoo: ZooOpt = None,
) -> None:
    """Measure style distance, content distance, SSIM and ms/MP; store them in the index and the card."""
    from zoo.evaluate import evaluate as run_evaluate

    with errors_as_exit():
        r = run_evaluate(ref, zoo=zoo, data=data, limit=limit, size=size, style_image=style_image,
                         device=resolve_device(device), save=not no_save, card_dir=card_dir)
    m = r["metrics"]
    typer.echo(f"{r['ref']} on {m['images']} photos at {m['size']} px: style distance {m['style_distance']:.4g}, "
               f"content distance {m['content_distance']:.4g}, SSIM {m['ssim']:.3f}, layout SSIM {m['layout_ssim']:.3f}, "
               f"black (worst photo) {100 * m['black_max']:.3f} %, "
               f"{m['speed']['ms_per_mp']:.0f} ms/MP ({m['speed']['device']})" + ("" if no_save else "; saved"))


@app.command()
def export(
    ref: Annotated[str, typer.Argument(help="Model: NAME or NAME@VERSION.")],
    format: Annotated[str, typer.Option("--format", "-f", help="onnx or torchscript.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    zoo: ZooOpt = None,
) -> None:
    """Export a model to ONNX or TorchScript and verify it against PyTorch (onnxruntime for ONNX)."""
    from zoo.export import export as run_export

    with errors_as_exit():
        r = run_export(ref, format, output, zoo=zoo)
    typer.echo(f"exported {r['ref']} to {r['path']} ({r['bytes'] / 1e6:.2f} MB); verified, max |diff| {r['max_abs_diff']:.1e}")


from zoo.cli_styles import styles as _styles  # noqa: E402

app.command("styles")(_styles)
from zoo import cli_share  # noqa: E402,F401  (push, pull and serve register themselves on app)


_FAST_EXIT: list[bool] = []  # set by a command whose process may end with os._exit once it succeeded


def main() -> None:
    from zoo import cli as registered  # under `python -m zoo.cli` this module runs twice: use the registered copy

    try:
        registered.app()
    except SystemExit as e:
        if e.code in (0, None) and registered._FAST_EXIT:
            # Tearing down an interpreter that imported torch takes ~0.4 s (module finalisers, shared
            # libraries' destructors): a third of a 1080 px `zoo apply` beside the forward pass. Its
            # outputs are already on disk, so flush and leave at once.
            import os

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        raise


if __name__ == "__main__":
    main()
