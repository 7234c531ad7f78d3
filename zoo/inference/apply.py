"""``zoo apply``: photos and videos in, stylised files out (written atomically).

Every path is planned and checked before any work; the model is loaded and verified once.
Photos go through the Stylizer (tiles for big ones), videos frame by frame through
``FrameStylizer`` and ``zoo.media.video`` (PyAV, audio copied).
"""
from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from zoo.media.files import output_path
from zoo.media.images import IMAGE_EXTENSIONS, ImageError, check_output_path, read_image, resize_long_side, save_image
from zoo.media.temporal import Temporal
from zoo.media.video import ENCODERS, VIDEO_EXTENSIONS, VideoError, VideoReport, apply_video, is_video, video_outputs

from .frames import FrameStylizer
from .stylizer import Stylizer, check_tile

Progress = Callable[[str, int, int], None]  # (label, done, total; total 0 = unknown)


def expand_inputs(inputs: Iterable[str | os.PathLike], extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Files, folders (their files with ``extensions``, sorted) and globs -> paths; unknown ones raise one line."""
    out: list[Path] = []
    for item in inputs:
        s = str(item)
        p = Path(s)
        if p.is_dir():
            out += sorted(q for q in p.iterdir() if q.suffix.lower() in extensions and q.is_file())
        elif p.is_file():
            out.append(p)
        elif any(ch in s for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(s, recursive=True))
            out += [m for m in matches if m.is_file() and m.suffix.lower() in extensions]
        else:
            raise ImageError(f"{s}: no such file, folder or matching glob")
    if not out:
        raise ImageError(f"no {'images' if extensions == IMAGE_EXTENSIONS else 'images or videos'} found in {', '.join(map(str, inputs))}")
    return list(dict.fromkeys(out))


def plan_outputs(inputs: list[Path], output: Path | None, out_dir: Path | None, suffix: str, overwrite_input: bool) -> list[Path]:
    """Output path of every input photo, validated before any work."""
    if output is not None and len(inputs) > 1:
        raise ImageError(f"-o names one file but {len(inputs)} inputs were given; use --out-dir DIR")
    if output is not None:
        return [check_output_path(output, inputs, overwrite_input)]
    outs = []
    for p in inputs:
        ext = p.suffix if out_dir is not None and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") else ".jpg"
        outs.append(check_output_path(output_path(p, None, out_dir, suffix, ext), inputs, overwrite_input))
    return outs


@dataclass
class ApplyReport:
    ref: str
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    megapixels: float = 0.0  # photos
    tiled: int = 0
    videos: list[VideoReport] = field(default_factory=list)


def apply_photos(stylizer: Stylizer, files: list[Path], outs: list[Path], size: int | None = None,
                 on_progress: Callable[[int, int, Path], None] | None = None) -> ApplyReport:
    """Stylise every photo into its planned output (long side resized to ``size`` first, if given)."""
    t0 = time.perf_counter()
    report = ApplyReport(stylizer.ref)
    for i, (src, dst) in enumerate(zip(files, outs)):
        img = resize_long_side(read_image(src), size)
        W, H = img.size
        report.tiled += stylizer.tiled(H, W)
        out = stylizer.image(img)
        del img
        save_image(out, dst)
        del out
        report.megapixels += H * W / 1e6
        report.outputs.append(dst)
        if on_progress:
            on_progress(i + 1, len(files), dst)
    report.seconds = time.perf_counter() - t0
    return report


def apply_media(ref: str, inputs: list[str], output: Path | None = None, out_dir: Path | None = None, zoo: str | None = None,
                temporal: Temporal = Temporal(), on_progress: Progress | None = None, size: int | None = None,
                strength: float = 1.0, preserve_color: bool = False, tile: str = "auto", device: str = "cpu",
                precision: str = "auto", overwrite_input: bool = False) -> ApplyReport:
    """``zoo apply``: photos through the Stylizer, videos frame by frame; ``size`` applies to photos
    only (a video keeps its frame size)."""
    t0 = time.perf_counter()
    files = expand_inputs(inputs, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
    videos = [f for f in files if is_video(f)]
    photos = [f for f in files if not is_video(f)]
    if output is not None and len(files) > 1:
        raise ImageError(f"-o names one file but {len(files)} inputs were given; use --out-dir DIR")
    if videos and output is not None and not is_video(output):
        raise VideoError(f"{output}: a video's output needs a video extension ({', '.join(ENCODERS)})")
    check_tile(tile)  # before the model is loaded
    stylizer = Stylizer.load(ref, zoo, device, precision, tile=tile, strength=strength, preserve_color=preserve_color)
    vouts = video_outputs(videos, output, out_dir, stylizer.name, overwrite_input)
    pouts = plan_outputs(photos, output, out_dir, stylizer.name, overwrite_input) if photos else []
    report = ApplyReport(stylizer.ref)
    if photos:
        prog = (lambda i, n, p: on_progress("photos", i, n)) if on_progress and len(photos) > 1 else None
        r = apply_photos(stylizer, photos, pouts, size, prog)
        report.outputs += r.outputs
        report.megapixels, report.tiled = r.megapixels, r.tiled
    for src, dst in zip(videos, vouts):
        report.videos.append(apply_video(FrameStylizer(stylizer, temporal), src, dst, on_progress))
        report.outputs.append(dst)
    report.seconds = time.perf_counter() - t0
    return report
