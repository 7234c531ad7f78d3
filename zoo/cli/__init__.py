"""`zoo`: train, publish, list, apply, evaluate and export neural style transfer models.

The root app; each command lives in a module of this package and is registered here (commands
import the library, never this root). Every command validates its arguments, calls one library
function and prints the result. Library errors (``StyleZooError``) become one red line on stderr
and exit code 1; bad usage exits 2 (Typer's own convention). Heavy imports (torch, lightning)
happen inside commands so ``zoo --help`` is instant.
"""
from __future__ import annotations

import sys

import typer

from . import apply, gatys, models, share, styles, train
from .common import FAST_EXIT

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


# the order of `zoo --help`
app.command()(gatys.stylize)
app.command()(models.publish)
app.command("list")(models.list_models)
app.command()(models.show)
app.command()(apply.apply)
app.command()(train.train)
app.command()(models.evaluate)
app.command()(models.export)
app.command("styles")(styles.styles)
app.command()(share.push)
app.command()(share.pull)
app.command()(share.serve)


def main() -> None:
    try:
        app()
    except SystemExit as e:
        if e.code in (0, None) and FAST_EXIT:
            # Tearing down an interpreter that imported torch takes ~0.4 s (module finalisers, shared
            # libraries' destructors): a third of a 1080 px `zoo apply` beside the forward pass. Its
            # outputs are already on disk, so flush and leave at once.
            import os

            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        raise
