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

from lit_modules.errors import ConfigError, StyleZooError, as_url
from zoo.media.files import output_name, output_path, shared_output
from zoo.media.images import (IMAGE_EXTENSIONS, ImageError, check_output_path, read_image, resize_long_side, save_image,
                              url_error)
from zoo.media.temporal import Temporal
from zoo.media.video import ENCODERS, VIDEO_EXTENSIONS, VideoError, VideoReport, apply_video, is_video, video_outputs

from .frames import FrameStylizer
from .scale import DEFAULT_SCALE, check_scale
from .stylizer import MIN_SIDE, Stylizer, check_tile

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
        elif as_url(s):
            raise url_error(s)
        else:
            raise ImageError(f"{s}: no such file, folder or matching glob")
    if not out:
        raise ImageError(f"no {'images' if extensions == IMAGE_EXTENSIONS else 'images or videos'} found in {', '.join(map(str, inputs))}")
    return _unique_files(out)


def _unique_files(paths: list[Path]) -> list[Path]:
    """``paths`` in order, each file once however it was spelled (x.jpg, ./x.jpg, /abs/x.jpg)."""
    seen: set[Path] = set()
    out = []
    for p in paths:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            out.append(p)
    return out


def plan_outputs(inputs: list[Path], output: Path | None, out_dir: Path | None, suffix: str, overwrite_input: bool) -> list[Path]:
    """Output path of every input photo, validated before any work."""
    if output is not None and len(inputs) > 1:
        raise ImageError(f"-o names one file but {len(inputs)} inputs were given; use --out-dir DIR")
    if output is not None:
        return [check_output_path(output, inputs, overwrite_input)]
    exts = [p.suffix if out_dir is not None and p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp") else ".jpg" for p in inputs]
    check_distinct(inputs, [output_name(p, None, out_dir, suffix, ext) for p, ext in zip(inputs, exts)])
    return [check_output_path(output_path(p, None, out_dir, suffix, ext), inputs, overwrite_input) for p, ext in zip(inputs, exts)]


def check_distinct(inputs: list[Path], outs: list[Path]) -> None:
    """Refuse, before any work, a run in which two inputs would write one file. Refused rather than
    renamed: an output's name stays a function of its input's, so scripts can find it."""
    clash = shared_output(inputs, outs)
    if clash is not None:
        a, b, dst = clash
        raise ImageError(f"{a} and {b} would both be written to {dst}; apply them in separate runs or to separate --out-dir folders")


def size_arg(size: int | None) -> int | None:
    """``--size``: None (keep the photo's size) or a long side the network can run at."""
    if size is not None and size < MIN_SIDE:
        raise ConfigError(f"--size must be at least {MIN_SIDE} px, got {size}")
    return size


def _failure(src: Path, e: StyleZooError) -> str:
    """One line naming the input that failed."""
    msg = str(e)
    return msg if str(src) in msg else f"{src}: {msg}"


@dataclass
class ApplyReport:
    ref: str
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    megapixels: float = 0.0  # photos
    tiled: int = 0
    videos: list[VideoReport] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one line per input that could not be done


def apply_photos(stylizer: Stylizer, files: list[Path], outs: list[Path], size: int | None = None,
                 on_progress: Callable[[int, int, Path], None] | None = None) -> ApplyReport:
    """Stylise every photo into its planned output (long side resized to ``size`` first, if given).
    A photo that cannot be read or is too small is listed in ``failed`` and the others still run;
    a failure to write stops the run (the next photo would fail the same way)."""
    t0 = time.perf_counter()
    report = ApplyReport(stylizer.ref)
    for i, (src, dst) in enumerate(zip(files, outs)):
        try:
            img = resize_long_side(read_image(src), size)
            W, H = img.size
            tiled = stylizer.tiled(H, W)
            out = stylizer.image(img)
        except ImageError as e:
            report.failed.append(_failure(src, e))
            if on_progress:
                on_progress(i + 1, len(files), src)
            continue
        del img
        report.tiled += tiled
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
                strength: float = 1.0, preserve_color: bool = False, scale: str | float = DEFAULT_SCALE, tile: str = "auto",
                device: str = "cpu", precision: str = "auto", overwrite_input: bool = False) -> ApplyReport:
    """``zoo apply``: photos through the Stylizer, videos frame by frame; ``size`` applies to photos
    only (a video keeps its frame size); ``scale``: stroke size (``zoo.inference.scale``)."""
    t0 = time.perf_counter()
    size = size_arg(size)
    files = expand_inputs(inputs, IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)
    videos = [f for f in files if is_video(f)]
    photos = [f for f in files if not is_video(f)]
    if output is not None and len(files) > 1:
        raise ImageError(f"-o names one file but {len(files)} inputs were given; use --out-dir DIR")
    if videos and output is not None and not is_video(output):
        raise VideoError(f"{output}: a video's output needs a video extension ({', '.join(ENCODERS)})")
    check_tile(tile), check_scale(scale)  # before the model is loaded
    stylizer = Stylizer.load(ref, zoo, device, precision, tile=tile, strength=strength, preserve_color=preserve_color,
                             scale=scale)
    vouts = video_outputs(videos, output, out_dir, stylizer.name, overwrite_input)
    pouts = plan_outputs(photos, output, out_dir, stylizer.name, overwrite_input) if photos else []
    check_distinct(videos, vouts)
    report = ApplyReport(stylizer.ref)
    if photos:
        prog = (lambda i, n, p: on_progress("photos", i, n)) if on_progress and len(photos) > 1 else None
        r = apply_photos(stylizer, photos, pouts, size, prog)
        report.outputs += r.outputs
        report.megapixels, report.tiled, report.failed = r.megapixels, r.tiled, r.failed
    for src, dst in zip(videos, vouts):
        try:
            report.videos.append(apply_video(FrameStylizer(stylizer, temporal), src, dst, on_progress))
        except (ImageError, VideoError) as e:  # this video's fault; the file appears only when complete
            report.failed.append(_failure(src, e))
            continue
        report.outputs.append(dst)
    report.seconds = time.perf_counter() - t0
    return report
