"""`zoo styles`: the named styles, their paintings' provenance, and the models that exist for each."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from .common import errors_as_exit


def styles(
    zoo: Annotated[Optional[str], typer.Option("--zoo", help="Zoo whose models to show beside the built-in ones (else the default zoo).")] = None,
) -> None:
    """List the named styles (use with --style): painting, artist, year, licence, source, and the models trained on each.

    The six named paintings ship with the package; put NAME.yaml (title, artist, year, license,
    file, optional url/sha256) and its image in the style folder to add a style, or an image of
    the same file name there to override a shipped painting.
    """
    from rich.console import Console
    from rich.table import Table

    from zoo.registry.styles import catalogue, style_dir

    with errors_as_exit():
        rows = catalogue(zoo)
    table = Table(box=None, header_style="bold", show_lines=True)
    for col in ("style", "painting (artist, year; licence)", "image", "models", "source"):
        table.add_column(col, overflow="fold")
    for r in rows:
        models = "\n".join(f"{ref} ({layer})" for ref, layer in r["models"]) or "-"
        painting = f"{r['title']}\n{r['artist']}, {r['year']}\n{r['license']}"
        table.add_row(r["name"], painting, r["painting"], models, r["url"] or "-")
    Console(width=200).print(table)
    typer.echo(f"style folder (add or override styles): {style_dir()}")
