"""What every command shares: one-line failures, library errors as exits, the --zoo option."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Optional

import typer

from lit_modules.errors import StyleZooError

ZooOpt = Annotated[Optional[str], typer.Option("--zoo", help="Zoo folder or fsspec URL; else $STYLE_ZOO_HOME, else ~/.cache/style-zoo/zoo.")]

FAST_EXIT: list[bool] = []  # set by a command whose process may end with os._exit once it succeeded


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
