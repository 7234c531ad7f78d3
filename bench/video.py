"""Benchmark video stylisation: flicker (warping error) and style distance per lever, and frames/s.
Never run by the test suite.

    .venv/bin/python bench/video.py table                       # starry, wave, udnie; fox.mp4 and the pan, own sizes
    .venv/bin/python bench/video.py table --clips fox --models starry --frames 60 --legacy
    .venv/bin/python bench/video.py speed                       # frames/s at 1280x720

``table``: ``zoo.evaluation.video.measure_clip`` under four settings -- per-frame (each frame on its
own), shared instance-norm statistics (lever 1), flow-guided blending (lever 2), both (the
default) -- at the clip's own size, printing the warping error (Lai et al. 2018; lower = less
flicker) and the style distance of every 10th frame at 512 px (``zoo evaluate``'s yardstick), each
also as a ratio to per-frame. ``--legacy`` adds lever 1 the older way (statistics from a separate
256 px pass). Clips: ``fox`` (fox.mp4, 640x640) and ``pan`` (a slow pan, 3 px right and 1 px down
a frame, over the 17.9 MP demo photo shrunk to 2400 px, 1280x720, made here with PyAV).

``speed``: the whole ``zoo apply`` path (decode, stylise, blend, encode H.264) on the pan clip at
1280x720, the default levers beside per-frame, at ``--scale 1`` and ``auto``.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOX = (ROOT / ".." / "shared" / "assets" / "photos" / "fox.mp4").resolve()
BIG = (ROOT / ".." / "shared" / "assets" / "photos" / "figures_5184x3456.jpg").resolve()
os.environ.setdefault("STYLE_ZOO_STYLE_DIR", str((ROOT / ".." / "shared" / "assets" / "styles").resolve()))


def make_pan(path: Path, frames: int = 120, size: tuple[int, int] = (1280, 720), step: tuple[int, int] = (3, 1)) -> Path:
    """A slow pan over the demo photo (shrunk to 2400 px): exact motion, real detail."""
    import av
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    import numpy as np

    photo = Image.open(BIG).convert("RGB")
    photo = np.asarray(photo.resize((2400, round(2400 * photo.height / photo.width)), Image.Resampling.LANCZOS))
    w, h = size
    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=30)
    vs.width, vs.height, vs.pix_fmt, vs.options = w, h, "yuv420p", {"crf": "18"}
    for t in range(frames):
        x0, y0 = 200 + t * step[0], 300 + t * step[1]
        out.mux(vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(photo[y0 : y0 + h, x0 : x0 + w]), format="rgb24")))
    out.mux(vs.encode())
    out.close()
    return path


def table(models: list[str], clips: list[str], frames: int | None, every: int, legacy: bool, scale: str) -> None:
    from dataclasses import replace

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from zoo.evaluation.video import SETTINGS, measure_clip
    from zoo.media.temporal import Temporal

    settings = dict(SETTINGS)
    if legacy:
        settings["both, 256 px stats pass"] = replace(Temporal(), stats_size=256)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "native")
    print(f"{'all' if frames is None else f'first {frames}'} frames at the clip's own size, --scale {scale}; style distance on "
          f"every {every}th frame at 512 px; oneDNN ISA {isa}, {os.cpu_count()} cores\n")
    print("| clip | model | setting | warping error | x per-frame | style dist | x per-frame |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as d:
        paths = {"fox": FOX, "pan": make_pan(Path(d) / "pan.mp4", frames or 120) if "pan" in clips else None}
        for clip in clips:
            for m in models:
                t0 = time.perf_counter()
                with Progress(TextColumn(f"{clip} {m}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                              TextColumn("ETA"), TimeRemainingColumn(), transient=True, console=Console(stderr=True)) as bar:
                    task = bar.add_task("frames", total=frames or None)
                    r = measure_clip(m, paths[clip], settings=settings, size=None, max_frames=frames, every=every,
                                     scale=scale, on_frame=lambda n: bar.update(task, completed=n))
                base = r["per-frame"]
                w, h = r["size"]
                for name in settings:
                    we, sd = r[name]["warping_error"], r[name]["style_distance"]
                    print(f"| {clip} {w}x{h} | {m} | {name} | {we:.5f} | {we / base['warping_error']:.2f} | {sd:.4f} | "
                          f"{sd / base['style_distance']:.3f} |", flush=True)
                print(f"| {clip} {w}x{h} | {m} | (input clip: {r['input']['warping_error']:.5f}; {r['frames']} frames in "
                      f"{time.perf_counter() - t0:.0f} s) | | | | |", flush=True)


def speed(model: str, frames: int) -> None:
    from zoo.inference.apply import apply_media
    from zoo.media.temporal import Temporal

    import torch

    print(f"{model}, the pan clip 1280x720, {frames} frames, torch threads {torch.get_num_threads()}, the whole zoo apply path, "
          f"oneDNN ISA {os.environ.get('ONEDNN_MAX_CPU_ISA', 'native')}\n")
    print("| --scale | levers | frames/s | x per-frame | seconds | peak RSS so far MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as d:
        clip = make_pan(Path(d) / "pan.mp4", frames)
        for scale in ("1", "auto"):
            fps = {}
            for label, t in (("per-frame", Temporal(shared_stats=False, blend=0.0)), ("default levers", Temporal())):
                r = apply_media(model, [str(clip)], output=Path(d) / "out.mp4", temporal=t, scale=scale)
                v = r.videos[0]
                fps[label] = v.fps
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"| {scale} | {label} | {v.fps:.2f} | {v.fps / fps['per-frame']:.2f} | {v.seconds:.1f} | {rss:.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("table", "speed"))
    ap.add_argument("--models", default="starry,wave,udnie", help="comma-separated zoo models (table)")
    ap.add_argument("--clips", default="fox,pan", help="fox (fox.mp4, 640x640) and/or pan (1280x720) (table)")
    ap.add_argument("--legacy", action="store_true", help="add lever 1 the older way: a separate 256 px statistics pass (table)")
    ap.add_argument("--scale", default="1", help="zoo apply --scale for the table (default 1: the network at the clip's size)")
    ap.add_argument("--model", default="starry", help="zoo model (speed)")
    ap.add_argument("--frames", type=int, default=120, help="frames per clip; 0 = all (table)")
    ap.add_argument("--every", type=int, default=10, help="style distance on every Nth frame (table)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default); on a busy shared CPU 1 beats 2")
    a = ap.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.what == "table":
        table(a.models.split(","), a.clips.split(","), a.frames or None, a.every, a.legacy, a.scale)
    else:
        speed(a.model, a.frames)


if __name__ == "__main__":
    main()
