"""Video in, stylised video out: frames streamed through PyAV with bounded memory.

``apply_video`` decodes one frame at a time, passes it through a frame function (``zoo apply``'s is
``zoo.inference.frames.FrameStylizer``: shared statistics + flow-guided blending) and encodes it at once: the same size,
frame rate, timestamps and frame count; audio packets are copied through untouched. The output is
written to a temporary file beside the target and renamed over it only when the whole clip has
been encoded, so a bad input (not a video, truncated, unknown codec) or an unwritable output
leaves no file behind, only a one-line ``VideoError``.

PyAV and OpenCV are the ``video`` extra; they are imported only when a video is met.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from lit_modules.errors import StyleZooError, one_line

from .files import mkstemp_beside, output_path
from .flow import VideoDependencyError

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
# output extension -> (container format, video encoder)
ENCODERS = {".mp4": ("mp4", "libx264"), ".m4v": ("mp4", "libx264"), ".mov": ("mov", "libx264"),
            ".mkv": ("matroska", "libx264"), ".webm": ("webm", "libvpx-vp9"), ".avi": ("avi", "mpeg4")}
CRF = "18"  # x264 / vp9 quality: visually near-lossless for stylised frames

Progress = Callable[[str, int, int], None]  # (label, done, total; total 0 = unknown)
FrameFn = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) uint8 RGB -> (H, W, 3) uint8 RGB


class VideoError(StyleZooError):
    """A video cannot be read, decoded or written."""


def require_av():
    """The PyAV module, or a one-line error naming the extra to install."""
    try:
        import av
    except ImportError:
        raise VideoDependencyError("video support needs PyAV and OpenCV: pip install 'style-zoo[video]'") from None
    return av


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def check_video_output(path: Path, src: Path, overwrite_input: bool = False) -> Path:
    """Validate an output video path before any work: known extension, existing folder, not the input."""
    ext = path.suffix.lower()
    if ext not in ENCODERS:
        raise VideoError(f"{path}: unknown video output format {ext or '(no extension)'}; use one of {', '.join(ENCODERS)}")
    if not path.parent.is_dir():
        raise VideoError(f"{path}: {path.parent} is not a folder" if path.parent.exists() else f"{path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise VideoError(f"{path}: folder {path.parent} is not writable")
    if not overwrite_input and path.exists() and path.resolve() == src.resolve():
        raise VideoError(f"{path}: refusing to overwrite the input video (pass --overwrite-input to allow)")
    return path


@dataclass
class VideoReport:
    src: Path
    dst: Path
    frames: int
    width: int
    height: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def open_input(av, src: Path):
    """(container, video stream, audio streams) or one-line VideoError."""
    try:
        inp = av.open(str(src))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoError(f"{src}: not a video file that can be read ({one_line(e, 160)})") from None
    if not inp.streams.video:
        inp.close()
        raise VideoError(f"{src}: no video stream in this file")
    vs = inp.streams.video[0]
    if vs.codec_context is None or not vs.codec_context.codec.is_decoder or vs.codec_context.name in (None, "", "none"):
        name = vs.codec_context.name if vs.codec_context is not None else "unknown"
        inp.close()
        raise VideoError(f"{src}: unknown or unsupported video codec ({name or 'unknown'})")
    if not vs.codec_context.width or not vs.codec_context.height:
        inp.close()
        raise VideoError(f"{src}: video stream has no frame size (damaged header?)")
    vs.thread_type = "AUTO"
    return inp, vs, list(inp.streams.audio)


def open_output(av, tmp: str, dst: Path, vs, audio: list):
    fmt, codec = ENCODERS[dst.suffix.lower()]
    out = av.open(tmp, "w", format=fmt)
    W, H = vs.codec_context.width, vs.codec_context.height
    ovs = out.add_stream(codec, rate=vs.average_rate or vs.guessed_rate or 30)
    ovs.width, ovs.height = W, H
    # 4:2:0 needs even sides; odd-sized clips keep their exact size in 4:4:4.
    ovs.pix_fmt = "yuv420p" if W % 2 == 0 and H % 2 == 0 or codec == "mpeg4" else "yuv444p"
    ovs.time_base = vs.time_base  # keep every frame's timestamp as it was
    ovs.codec_context.time_base = vs.time_base
    if codec in ("libx264", "libvpx-vp9"):
        ovs.options = {"crf": CRF} | ({"b": "0"} if codec == "libvpx-vp9" else {"preset": "medium"})
    amap = {}
    for a in audio:
        try:
            amap[a.index] = out.add_stream_from_template(a)
        except (av.FFmpegError, ValueError) as e:
            raise VideoError(f"{dst}: cannot copy the {a.codec_context.name} audio into {fmt} ({one_line(e, 160)}); try .mkv") from None
    return out, ovs, amap


def apply_video(stylizer: FrameFn, src: Path, dst: Path, on_progress: Progress | None = None) -> VideoReport:
    """Stylise ``src`` into ``dst`` frame by frame; ``dst`` appears only when complete."""
    av = require_av()
    t0 = time.perf_counter()
    inp, vs, audio = open_input(av, src)
    total = int(vs.frames or 0)
    try:
        fd, tmp = mkstemp_beside(dst)
        os.close(fd)
    except OSError as e:
        inp.close()
        raise VideoError(f"{dst}: cannot write here ({one_line(e, 160)})") from None
    n, out = 0, None
    try:
        out, ovs, amap = open_output(av, tmp, dst, vs, audio)
        for packet in inp.demux(vs, *audio):
            if packet.stream.type == "audio":
                if packet.dts is not None:  # the demuxer's final flush packets carry nothing
                    packet.stream = amap[packet.stream.index]
                    out.mux(packet)
                continue
            for frame in packet.decode():
                y = stylizer(frame.to_ndarray(format="rgb24"))  # (H, W, 3) uint8
                of = av.VideoFrame.from_ndarray(y, format="rgb24")
                of.pts, of.time_base = (frame.pts if frame.pts is not None else n), vs.time_base
                out.mux(ovs.encode(of))
                n += 1
                if on_progress:
                    on_progress(src.name, n, total)
        out.mux(ovs.encode())  # flush the encoder
        if n == 0:
            raise VideoError(f"{src}: no frames could be decoded")
        if total and n < total:
            raise VideoError(f"{src}: truncated or damaged: decoded {n} of {total} frames")
        out.close()
        out = None
        os.replace(tmp, dst)
    except av.FFmpegError as e:
        raise VideoError(f"{src} -> {dst}: {one_line(e, 160)} after {n} of {total or '?'} frames (truncated or damaged input?)") from None
    except OSError as e:
        raise VideoError(f"{dst}: cannot write ({one_line(e, 160)})") from None
    finally:
        inp.close()
        if out is not None:
            try:
                out.close()
            except Exception:
                pass
        Path(tmp).unlink(missing_ok=True)
    return VideoReport(src, dst, n, vs.codec_context.width, vs.codec_context.height, time.perf_counter() - t0)


def video_outputs(videos: list[Path], output: Path | None, out_dir: Path | None, suffix: str, overwrite_input: bool) -> list[Path]:
    """Output path of every input video (same extension where it can be written, else .mp4)."""
    outs = []
    for p in videos:
        ext = p.suffix.lower() if p.suffix.lower() in ENCODERS else ".mp4"
        outs.append(check_video_output(output_path(p, output, out_dir, suffix, ext), p, overwrite_input))
    return outs


def read_frames(clip: str | os.PathLike, size: int | None = None, max_frames: int | None = None):
    """Yield (H, W, 3) uint8 RGB frames, long side resized to ``size`` (even sides)."""
    av = require_av()
    inp, vs, _ = open_input(av, Path(clip))
    W, H = vs.codec_context.width, vs.codec_context.height
    s = 1.0 if size is None else size / max(W, H)
    w, h = max(2, round(W * s / 2) * 2), max(2, round(H * s / 2) * 2)
    try:
        for i, frame in enumerate(inp.decode(vs)):
            if max_frames is not None and i >= max_frames:
                break
            yield frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
    finally:
        inp.close()
