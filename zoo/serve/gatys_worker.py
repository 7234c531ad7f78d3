"""The Gatys job's worker process: ``python -m zoo.serve.gatys_worker PHOTO OUT --style NAME --size N --steps K``.

Runs ``zoo.inference.gatys.run_stylize`` and prints one JSON line per event (``start``, ``stage``,
``step``, then ``finished`` or ``error``) for ``zoo.serve.gatys`` to relay as server-sent events.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from lit_modules.errors import StyleZooError, one_line


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m zoo.serve.gatys_worker")
    p.add_argument("photo")
    p.add_argument("output")
    p.add_argument("--style", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    a = p.parse_args(argv)

    def emit(**event) -> None:
        print(json.dumps(event), flush=True)

    try:
        from lit_modules.logs import quiet_lightning
        from zoo.inference.gatys import run_stylize

        quiet_lightning()
        photo = Path(a.photo)
        emit(event="start", style=a.style, size=a.size)
        report = run_stylize(content=photo, output=Path(a.output), style=a.style,
                             overrides=dict(size=a.size, steps=a.steps), device="cpu", progress=False,
                             on_stage=lambda i, n, h, w: emit(event="stage", stage=i, stages=n, height=h, width=w),
                             on_step=lambda k, n, terms: emit(event="step", step=k, steps=n, loss=round(float(terms.get("total", 0)), 4)))
        emit(event="finished", seconds=round(report.get("seconds", 0), 1))
        return 0
    except StyleZooError as e:
        emit(event="error", message=one_line(e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
