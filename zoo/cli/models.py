"""`zoo publish`, `list`, `show`, `evaluate`, `export`: the versions in the zoo."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from zoo import EVAL_SIZE

from .common import ZooOpt, errors_as_exit, fail


def publish(
    run: Annotated[Path, typer.Argument(help="Training run folder (with checkpoints/last.ckpt) or a .ckpt file.")],
    name: Annotated[Optional[str], typer.Option("--name", "-n", help="Model name: a-z, 0-9, '_' and '-'.")] = None,
    zoo: ZooOpt = None,
    dtype: Annotated[str, typer.Option(help="Weight dtype on disk: fp16 or fp32.")] = "fp16",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report; write nothing.")] = False,
    card_dir: Annotated[Optional[Path], typer.Option(help="Also write the card as CARD_DIR/NAME.md (+ NAME.jpg sample), e.g. model_cards.")] = None,
    sample: Annotated[Optional[Path], typer.Option(help="Photo stylised for the card's sample picture (default: none).")] = None,
    no_sample: Annotated[bool, typer.Option("--no-sample", help="Publish without a sample image.")] = False,
    style: Annotated[Optional[str], typer.Option("--style", "-s", help="For a run of several styles: the one to publish.")] = None,
    all_styles: Annotated[bool, typer.Option("--all-styles", help="For a run of several styles: publish each under its own name.")] = False,
) -> None:
    """Publish a trained network as the next version NAME@N: safetensors weights, config, model card."""
    from zoo.sharing.publish import publish as run_publish, publish_all

    if all_styles == (name is not None):
        fail("give --name NAME (with --style for a run of several styles), or --all-styles", 2)
    kw = dict(zoo=zoo, dtype=dtype, dry_run=dry_run, card_dir=card_dir, sample=None if no_sample else sample)
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


def list_models(
    pattern: Annotated[Optional[str], typer.Argument(help="Only names matching this glob or substring.")] = None,
    all_versions: Annotated[bool, typer.Option("--all-versions", "-a", help="One row per version.")] = False,
    zoo: ZooOpt = None,
) -> None:
    """List the models in your zoo and the built-in ones."""
    import fnmatch

    from rich.console import Console
    from rich.table import Table

    from zoo.registry.summary import model_rows

    with errors_as_exit():
        rows = model_rows(zoo, all_versions=all_versions)
    if pattern:
        rows = [r for r in rows if fnmatch.fnmatch(r.name, pattern) or pattern in r.name]
    if not rows:
        typer.echo("no models" + (f" matching {pattern!r}" if pattern else "") + "; publish one with: zoo publish RUN --name NAME")
        return
    table = Table(box=None, header_style="bold")
    for col in ("model", "size", "style", "style dist", "content dist", "SSIM", "ms/MP", "created", "from"):
        table.add_column(col, justify="right" if col in ("size", "style dist", "content dist", "SSIM", "ms/MP") else "left")

    def num(v, fmt):
        return format(v, fmt) if isinstance(v, (int, float)) else "-"

    for r in rows:
        table.add_row(r.ref, f"{r.bytes / 1e6:.1f} MB", r.title or "-", num(r.style_distance, ".3g"), num(r.content_distance, ".3g"),
                      num(r.ssim, ".3f"), num(r.ms_per_mp, ".0f"), r.created[:10], r.layer)
    Console(width=200).print(table)


def show(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    zoo: ZooOpt = None,
) -> None:
    """Print a model's card (Markdown with YAML front matter)."""
    from zoo.registry.store import ZooStack

    with errors_as_exit():
        text = ZooStack(zoo).resolve(ref).card_text()
    typer.echo(text)


def evaluate(
    ref: Annotated[str, typer.Argument(help="Model: NAME or NAME@VERSION.")],
    data: Annotated[Optional[Path], typer.Option(help="Folder of photos the model was not trained on (required).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Use the first N photos (sorted by name).")] = 8,
    size: Annotated[int, typer.Option(min=32, help="Long side of the photos and the painting, px.")] = EVAL_SIZE,
    style_image: Annotated[Optional[Path], typer.Option(help="Painting to compare with; else the model's named style.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    no_save: Annotated[bool, typer.Option("--no-save", help="Print only; do not write the metrics into the zoo and card.")] = False,
    card_dir: Annotated[Optional[Path], typer.Option(help="Also refresh CARD_DIR/NAME.md, e.g. model_cards.")] = None,
    zoo: ZooOpt = None,
) -> None:
    """Measure style distance, content distance, SSIM and ms/MP; store them in the index and the card."""
    from lit_modules.hw import resolve_device
    from zoo.evaluation.metrics import evaluate as run_evaluate

    with errors_as_exit():
        r = run_evaluate(ref, zoo=zoo, data=data, limit=limit, size=size, style_image=style_image,
                         device=resolve_device(device), save=not no_save, card_dir=card_dir)
    m = r["metrics"]
    typer.echo(f"{r['ref']} on {m['images']} photos at {m['size']} px: style distance {m['style_distance']:.4g}, "
               f"content distance {m['content_distance']:.4g}, SSIM {m['ssim']:.3f}, layout SSIM {m['layout_ssim']:.3f}, "
               f"black (worst photo) {100 * m['black_max']:.3f} %, "
               f"{m['speed']['ms_per_mp']:.0f} ms/MP ({m['speed']['device']})" + ("" if no_save else "; saved"))


def export(
    ref: Annotated[str, typer.Argument(help="Model: NAME or NAME@VERSION.")],
    format: Annotated[str, typer.Option("--format", "-f", help="onnx or torchscript.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    zoo: ZooOpt = None,
) -> None:
    """Export a model to ONNX or TorchScript and verify it against PyTorch (onnxruntime for ONNX)."""
    from zoo.inference.export import export as run_export

    with errors_as_exit():
        r = run_export(ref, format, output, zoo=zoo)
    typer.echo(f"exported {r['ref']} to {r['path']} ({r['bytes'] / 1e6:.2f} MB); verified, max |diff| {r['max_abs_diff']:.1e}")
