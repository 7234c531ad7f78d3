"""Benchmark video stylisation: flicker (warping error) and style distance per lever, and frames/s.
Never run by the test suite.

    .venv/bin/python bench/video.py table                       # built-in models on fox.mp4 at 256 px
    .venv/bin/python bench/video.py table --models starry --frames 0 --size 640
    .venv/bin/python bench/video.py speed                       # frames/s at 640x360 and 1280x720

``table``: ``zoo.evaluation.video.measure_clip`` under four settings -- per-frame (each frame on its
own), shared instance-norm statistics (lever 1), flow-guided blending (lever 2), both -- printing
the warping error (Lai et al. 2018; lower = less flicker) and the style distance of the frames
(``zoo evaluate``'s yardstick), each also as a ratio to per-frame.

``speed``: the whole ``zoo apply`` path (decode, stylise, blend, encode H.264) on clips made from
fox.mp4 (centre crop to 16:9, resized), with the default levers and with both off.
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
os.environ.setdefault("STYLE_ZOO_STYLE_DIR", str((ROOT / ".." / "shared" / "assets" / "styles").resolve()))
BUILTIN = ("starry", "wave", "scream", "udnie", "composition_vii")


def table(models: list[str], size: int | None, frames: int | None, every: int) -> None:
    from zoo.evaluation.video import SETTINGS, measure_clip

    print(f"fox.mp4, {'full size' if size is None else f'long side {size} px'}, "
          f"{'all' if frames is None else f'first {frames}'} frames; style distance on every {every}th frame at 256 px")
    print(f"{'model':16s} {'setting':13s} {'warping error':>14s} {'x per-frame':>11s} {'style dist':>10s} {'x per-frame':>11s}")
    for m in models:
        t0 = time.perf_counter()
        r = measure_clip(m, FOX, size=size, max_frames=frames, every=every)
        base = r["per-frame"]
        print(f"{m:16s} {'input clip':13s} {r['input']['warping_error']:14.5f}")
        for name in SETTINGS:
            w, s = r[name]["warping_error"], r[name]["style_distance"]
            print(f"{'':16s} {name:13s} {w:14.5f} {w / base['warping_error']:11.2f} {s:10.4f} {s / base['style_distance']:11.3f}")
        print(f"{'':16s} ({r['frames']} frames {r['size'][0]}x{r['size'][1]} in {time.perf_counter() - t0:.0f} s)", flush=True)


def make_clip(path: Path, w: int, h: int, n: int) -> Path:
    import av

    from zoo.media.video import read_frames

    out = av.open(str(path), "w")
    vs = out.add_stream("libx264", rate=30)
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    for f in read_frames(FOX, size=w, max_frames=n):  # 640x640 -> w x w, centre rows cut to h
        y0 = (f.shape[0] - h) // 2
        out.mux(vs.encode(av.VideoFrame.from_ndarray(f[y0 : y0 + h].copy(), format="rgb24")))
    out.mux(vs.encode())
    out.close()
    return path


def speed(model: str, frames: int) -> None:
    from zoo.inference.apply import apply_media
    from zoo.media.temporal import Temporal

    import torch

    print(f"{model}, {frames} frames per clip, torch threads {torch.get_num_threads()}, the whole zoo apply path")
    with tempfile.TemporaryDirectory() as d:
        for w, h in ((640, 360), (1280, 720)):
            clip = make_clip(Path(d) / f"fox_{w}x{h}.mp4", w, h, frames)
            for label, t in (("default levers", Temporal()), ("per-frame", Temporal(shared_stats=False, blend=0.0))):
                r = apply_media(model, [str(clip)], output=Path(d) / "out.mp4", temporal=t)
                v = r.videos[0]
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                print(f"{w}x{h} {label:15s} {v.fps:6.2f} frames/s ({v.frames} frames in {v.seconds:.1f} s; peak RSS so far {rss:.0f} MB)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("table", "speed"))
    ap.add_argument("--models", default=",".join(BUILTIN), help="comma-separated zoo models (table)")
    ap.add_argument("--model", default="starry", help="zoo model (speed)")
    ap.add_argument("--size", type=int, default=256, help="long side for the table, px; 0 = the clip's own size")
    ap.add_argument("--frames", type=int, default=90, help="frames per clip; 0 = all (table)")
    ap.add_argument("--every", type=int, default=10, help="style distance on every Nth frame (table)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default); on a busy shared CPU 1 beats 2")
    a = ap.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.what == "table":
        table(a.models.split(","), a.size or None, a.frames or None, a.every)
    else:
        speed(a.model, a.frames)


if __name__ == "__main__":
    main()
