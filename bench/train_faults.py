"""kill -9 of `zoo train` at random moments, then what a user does next. Never run by the test suite.

    .venv/bin/python bench/train_faults.py [--kills 10] [--steps 40] [--seed 0]

A tiny run (48 px crops, a quarter-width network, a checkpoint every 10 steps) is first timed
whole; then each trial starts the same run under one id, SIGKILLs the whole process group at a
random moment (the first trial before the first checkpoint exists), and runs
``zoo train --resume RUN`` (or, when the kill came before the run folder existed, the same command
again). A trial passes when that second command exits 0 with the run at its last step and, where a
checkpoint existed, continued from it (no "starting it again").
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = (ROOT / ".." / "shared" / "assets" / "photos-1k" / "val").resolve()

from train.runs import latest_checkpoint  # noqa: E402


def command(out: Path, steps: int) -> list[str]:
    return [sys.executable, "-m", "zoo.cli", "train", "--style", "starry", "--data", str(DATA), "--image-size", "48",
            "--style-size", "64", "--width", "0.25", "--batch-size", "2", "--precision", "fp32", "--steps", str(steps),
            "--checkpoint-every", "10", "--out", str(out), "--run-id", "r", "--quiet"]


def step_of(ckpt: Path | None) -> int | None:
    if ckpt is None:
        return None
    try:
        return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])
    except Exception as e:  # a torn checkpoint would show here
        return f"unreadable ({type(e).__name__})"


def first_checkpoint_time(out: Path, steps: int) -> tuple[float, float]:
    """Seconds until the first step*.ckpt appears, and for the whole run."""
    t0, first = time.perf_counter(), None
    proc = subprocess.Popen(command(out, steps), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        if first is None and list((out / "r" / "checkpoints").glob("step*.ckpt")):
            first = time.perf_counter() - t0
        time.sleep(0.05)
    assert proc.returncode == 0, "the uninterrupted run failed"
    return first or 0.0, time.perf_counter() - t0


def trial(moment: float, steps: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="zoo-faults-") as tmp:
        out = Path(tmp)
        proc = subprocess.Popen(command(out, steps), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        time.sleep(moment)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        run = out / "r"
        at_kill = step_of(latest_checkpoint(run)) if run.is_dir() else None
        again = ["--resume", str(run), "--quiet"] if (run / "config.yaml").is_file() else command(out, steps)[4:]
        done = subprocess.run([sys.executable, "-m", "zoo.cli", "train", *again], cwd=ROOT, capture_output=True, text=True)
        restarted = "no checkpoint yet" in done.stderr + done.stdout
        final = step_of(latest_checkpoint(run)) if run.is_dir() else None
        resumed = again[0] == "--resume"
        # a checkpoint at the kill must be continued from; without one, the run starts again
        ok = done.returncode == 0 and final == steps and (restarted == (resumed and at_kill is None))
        how = ("restarted (no checkpoint)" if restarted else "fresh run (no folder)" if again[0] != "--resume"
               else f"resumed at step {at_kill}")
        return {"moment": moment, "at_kill": at_kill, "how": how, "rc": done.returncode, "final": final, "ok": ok,
                "error": (done.stderr.strip().splitlines() or [""])[-1] if done.returncode else ""}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-faults-") as tmp:
        first, whole = first_checkpoint_time(Path(tmp), args.steps)
    print(f"uninterrupted: {whole:.1f} s, first checkpoint after {first:.1f} s ({args.steps} steps, one every 10)")
    rng = random.Random(args.seed)
    moments = [rng.uniform(0.2, first)] + [rng.uniform(0.2, whole) for _ in range(args.kills - 1)]
    print("| kill -9 at | checkpoint at the kill | next command | exit | final step | ok |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = [trial(m, args.steps) for m in moments]
    for r in rows:
        print(f"| {r['moment']:.1f} s | {r['at_kill'] if r['at_kill'] is not None else 'none'} | {r['how']} | {r['rc']} "
              f"| {r['final']} | {'yes' if r['ok'] else 'NO ' + r['error']} |", flush=True)
    print(f"{sum(r['ok'] for r in rows)}/{len(rows)} trials recovered")
    sys.exit(0 if all(r["ok"] for r in rows) else 1)


if __name__ == "__main__":
    main()
