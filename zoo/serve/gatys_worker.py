"""The Gatys job's worker process: ``python -m zoo.serve.gatys_worker PHOTO OUT --style NAME --size N --steps K
--parent PID --workdir DIR``.

Runs ``zoo.inference.gatys.run_stylize`` and prints one JSON line per event (``start``, ``stage``,
``step``, then ``finished`` or ``error``) for ``zoo.serve.gatys`` to relay as server-sent events.

It dies with its server: before anything heavy is imported it asks Linux for SIGTERM when its
parent goes (``prctl(PR_SET_PDEATHSIG)``), and a watcher thread, the only one that takes SIGTERM,
SIGHUP and SIGINT, also checks every half second that ``--parent`` is still its parent (other
systems, or a parent gone before the request). Either way the watcher removes ``--workdir`` (the
job's folder, with the upload) and ends the process at once, whatever the main thread is doing.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path

from lit_modules.errors import StyleZooError, one_line

STOP_SIGNALS = {signal.SIGTERM, signal.SIGHUP, signal.SIGINT}
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
POLL_S = 0.5


def die_with_parent(parent: int, workdir: Path | None) -> None:
    """Leave (removing ``workdir``) when the parent process ends or a stop signal arrives."""
    if hasattr(signal, "sigtimedwait"):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # threads started later inherit it: only the watcher takes them
    else:  # no sigtimedwait (macOS): the main thread's handler leaves instead
        for sig in STOP_SIGNALS:
            signal.signal(sig, lambda signum, frame: leave(workdir, 128 + signum))
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the parent check below still catches it within POLL_S
    threading.Thread(target=_watch, args=(parent, workdir), name="parent-watch", daemon=True).start()


def _watch(parent: int, workdir: Path | None) -> None:
    while True:
        if hasattr(signal, "sigtimedwait"):
            got = signal.sigtimedwait(STOP_SIGNALS, POLL_S)
            if got is not None:
                leave(workdir, 128 + got.si_signo)
        else:
            threading.Event().wait(POLL_S)
        if os.getppid() != parent:  # reparented: the server is gone (also if it went before prctl)
            leave(workdir, 128 + int(signal.SIGTERM))


def leave(workdir: Path | None, code: int) -> None:
    """Remove the job's folder and end the process now (no interpreter teardown: torch may be mid-step)."""
    if workdir is not None:
        shutil.rmtree(workdir, ignore_errors=True)
    os._exit(code)


def main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m zoo.serve.gatys_worker")
    p.add_argument("photo")
    p.add_argument("output")
    p.add_argument("--style", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--parent", type=int, default=None, help="the server's pid: the worker ends when it does")
    p.add_argument("--workdir", type=Path, default=None, help="the job's folder, removed if the worker is stopped")
    a = p.parse_args(argv)
    die_with_parent(a.parent if a.parent is not None else os.getppid(), a.workdir)

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
