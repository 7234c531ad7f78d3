"""Video: flow on clips with known motion, the two flicker levers, `zoo apply` on videos end to end,
bad input (one line, non-zero exit, no file left behind), and fox.mp4 cut short."""
from __future__ import annotations

import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import PHOTOS
from zoo.cli import app
from zoo.media.flow import FlowEstimator, WarpingError, consistent, gray, warp
from zoo.media.images import load_image
from zoo.media.temporal import FlowBlender, RunningStats

runner = CliRunner()
W, H, N = 96, 64, 8
PAN = (2, 1)  # px per frame: the view moves right and down, so content moves left and up


def panned_frames(n: int = N, w: int = W, h: int = H, d: tuple[int, int] = PAN) -> list[np.ndarray]:
    """A real photo seen through a window moving ``d`` px per frame: exact integer motion."""
    photo = (load_image(PHOTOS / "tubingen.jpg", 256)[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    return [np.ascontiguousarray(photo[40 + t * d[1]: 40 + t * d[1] + h, 30 + t * d[0]: 30 + t * d[0] + w]) for t in range(n)]


def write_clip(path: Path, frames: list[np.ndarray], rate: int = 10, audio: bool = False, faststart: bool = False) -> Path:
    """Encode ``frames`` (H.264, near-lossless) with an optional 440 Hz AAC tone as long as the clip;
    ``faststart``: the index before the frames (as in fox.mp4), so a truncated file still opens."""
    out = av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {})
    vs = out.add_stream("libx264", rate=rate)
    vs.width, vs.height, vs.pix_fmt, vs.options = frames[0].shape[1], frames[0].shape[0], "yuv420p", {"crf": "10"}
    a = out.add_stream("aac", rate=44100) if audio else None
    for f in frames:
        out.mux(vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
    out.mux(vs.encode())
    if a is not None:
        t = np.arange(44100 * len(frames) // rate) / 44100
        af = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], format="flt", layout="mono")
        af.sample_rate = 44100
        out.mux(a.encode(af))
        out.mux(a.encode())
    out.close()
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        info = {"size": (vs.codec_context.width, vs.codec_context.height), "rate": vs.average_rate,
                "audio": [a.codec_context.name for a in c.streams.audio]}
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(vs)]
    with av.open(str(path)) as c:
        info["audio_packets"] = sum(1 for p in c.demux(audio=0) if p.dts is not None) if info["audio"] else 0
    return {**info, "frames": frames}


# ------------------------------------------------------------------------------------ flow
def test_flow_recovers_a_known_pan_and_warp_aligns_frames():
    f0, f1 = (gray(f) for f in panned_frames(2))
    inner = (slice(8, H - 8), slice(8, W - 8))
    for method in ("dis", "dis-fine"):
        flow = FlowEstimator(method)(f1, f0)  # frame 1 -> frame 0: each pixel is PAN px further on
        med = np.median(flow[inner].reshape(-1, 2), axis=0)
        assert np.allclose(med, PAN, atol=0.25), (method, med)
    flow = np.broadcast_to(np.array(PAN, np.float32), (H, W, 2)).copy()  # the exact flow
    back = -flow
    assert np.array_equal(warp(f0, flow)[: H - PAN[1], : W - PAN[0]], f1[: H - PAN[1], : W - PAN[0]])
    ok = consistent(flow, back)
    assert ok[: H - PAN[1], : W - PAN[0]].all() and not ok[:, W - 1].any()  # leaves the frame: occluded
    assert not consistent(flow, flow).any()  # back = forward: the check must fail everywhere


def test_warping_error_is_zero_for_true_motion_and_grows_with_flicker():
    frames = panned_frames()
    still, flicker = WarpingError("dis"), WarpingError("dis")
    rng = np.random.default_rng(0)
    for f in frames:
        still.add(f, f)
        flicker.add(f, np.clip(f / 255 + rng.normal(0, 0.05, f.shape), 0, 1).astype(np.float32))
    assert still.pairs == N - 1
    assert still.value < 2e-3 < 0.01 < flicker.value  # noise 0.05 per channel: ~2 * 3 * 0.05^2 = 0.015


def test_flow_blending_cuts_the_flicker_of_noisy_outputs_and_keeps_their_detail():
    """Outputs = panned photo + independent noise per frame (the flicker of a per-frame network)."""
    from zoo.media.flow import cv2

    frames = panned_frames()
    rng = np.random.default_rng(1)
    noisy = [np.clip(f / 255 + rng.normal(0, 0.05, f.shape), 0, 1).astype(np.float32) for f in frames]
    errs = {k: WarpingError() for k in ("raw", "plain", "detail")}
    blenders = {"plain": FlowBlender(0.5, keep_detail=False), "detail": FlowBlender(0.5)}
    outs = {}
    for f, y in zip(frames, noisy):
        outs = {"raw": y, **{k: b(f, y) for k, b in blenders.items()}}
        for k, e in errs.items():
            e.add(f, outs[k])
    raw, plain, detail = (errs[k].value for k in ("raw", "plain", "detail"))
    assert plain < 0.35 * raw  # independent noise, EMA 0.5: (1 - a)^2 / (1 + a) = 0.17 in theory; measured 0.20
    assert plain < detail < 0.7 * raw  # keeping detail energy: at most (1 - a) = 0.5 in theory; measured 0.23

    def detail_energy(y):
        return float(((y - cv2().GaussianBlur(y, (0, 0), 2.0))[8:-8, 8:-8] ** 2).mean())

    e_raw, e_plain, e_detail = (detail_energy(outs[k]) for k in ("raw", "plain", "detail"))
    assert e_plain < 0.85 * e_raw and abs(e_detail - e_raw) < 0.1 * e_raw  # measured: 0.76 and 1.00


def test_running_stats_pool_means_and_variances():
    a, b = torch.randn(1, 4, 8, 8), 2 + 3 * torch.randn(1, 4, 8, 8)
    stats = [torch.var_mean(t, dim=(2, 3), keepdim=True, unbiased=False)[::-1] for t in (a, b)]
    rs = RunningStats(momentum=0.5)
    rs.update([stats[0]])
    (mean, var), = rs.update([stats[1]])
    pooled_var, pooled_mean = torch.var_mean(torch.cat([a, b], dim=3), dim=(2, 3), keepdim=True, unbiased=False)
    assert torch.allclose(mean, pooled_mean, atol=1e-5) and torch.allclose(var, pooled_var, atol=1e-4)


def test_shared_stats_in_the_frames_own_pass():
    """The running average is mixed into each frame's own pass: the first frame is its per-frame
    result; a later frame is pulled toward the statistics of the frames before it, the same way
    in the module's forward and the inference forward; the Stylizer leaves no norm state behind."""
    from lit_modules.transformer_net import mix_stats
    from zoo.inference.frames import FrameStylizer
    from zoo.inference.stylizer import Stylizer
    from zoo.media.temporal import Temporal

    s = Stylizer.load("starry", precision="fp32", tile=None)
    frames = [np.ascontiguousarray(f) for f in panned_frames(3, 128, 96, (6, 3))]
    dark = (frames[2] * 0.4).astype(np.uint8)  # a cut to a darker shot
    shared = FrameStylizer(s, Temporal(blend=0.0))
    alone = FrameStylizer(s, Temporal(shared_stats=False, blend=0.0))
    assert np.abs(shared.stylize(frames[0]) - alone.stylize(frames[0])).max() < 1e-5
    shared.stylize(frames[1])
    y_shared, y_alone = shared.stylize(dark), alone.stylize(dark)
    assert np.abs(y_shared - y_alone).mean() > 0.01  # normalised with brighter frames' statistics
    assert all(n.prior is None and n.stats is None and not n.record for n in s.net.norms())
    # module forward == inference forward with the same prior
    x = torch.from_numpy(dark).permute(2, 0, 1)[None].float() / 255
    priors = shared.stats.priors()
    for n, p in zip(s.net.norms(), priors):
        n.prior = p
    try:
        from zoo.inference.forward import strip_forward

        with torch.inference_mode():
            assert (s.net(x) - strip_forward(s.net, x, torch.float32)).abs().max() < 1e-4
    finally:
        for n in s.net.norms():
            n.prior = None
    mu, var = mix_stats((torch.zeros(1), torch.ones(1), 0.5), torch.full((1,), 2.0), torch.zeros(1))
    assert float(mu) == 1.0 and abs(float(var) - 1.5) < 1e-6  # pooled: E[x^2] = 0.5*1 + 0.5*4 = 2.5, minus 1


# ------------------------------------------------------------------------------ zoo apply
def test_apply_video_keeps_size_rate_frames_and_audio(tmp_path):
    src = write_clip(tmp_path / "pan.mp4", panned_frames(), audio=True)
    out = tmp_path / "styled.mp4"
    r = runner.invoke(app, ["apply", "starry", str(src), "-o", str(out), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "8 frames 96x64" in r.output and "frames/s" in r.output
    a, b = probe(src), probe(out)
    assert (b["size"], b["rate"], len(b["frames"]), b["audio"], b["audio_packets"]) == ((W, H), 10, N, ["aac"], a["audio_packets"])
    assert a["audio_packets"] > 0
    diff = np.abs(b["frames"][3].astype(float) - a["frames"][3]).mean()
    assert diff > 10  # stylised, not copied
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pan.mp4", "styled.mp4"]  # no temp file left


def test_apply_folder_with_photo_and_video_and_levers_off(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write_clip(d / "clip.mkv", panned_frames(4))
    (d / "photo.jpg").write_bytes((PHOTOS / "tubingen.jpg").read_bytes())
    r = runner.invoke(app, ["apply", "wave", str(d), "--out-dir", str(tmp_path / "out"), "--size", "64", "--no-shared-stats",
                            "--blend", "0", "--device", "cpu", "-q"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.mkv", "photo.jpg"]
    assert len(probe(tmp_path / "out" / "clip.mkv")["frames"]) == 4


def _unknown_codec(path: Path) -> Path:
    """An AVI whose video stream claims a FourCC no decoder knows."""
    out = av.open(str(path), "w")
    vs = out.add_stream("rawvideo", rate=10)
    vs.width, vs.height, vs.pix_fmt = 32, 16, "bgr24"
    for i in range(3):
        out.mux(vs.encode(av.VideoFrame.from_ndarray(np.full((16, 32, 3), 50 * i, np.uint8), format="bgr24")))
    out.mux(vs.encode())
    out.close()
    b = bytearray(path.read_bytes())
    i, j = b.index(b"vids"), b.index(b"strf")
    b[i + 4 : i + 8], b[j + 24 : j + 28] = b"ZZZZ", b"ZZZZ"  # strh handler, strf biCompression
    path.write_bytes(bytes(b))
    return path


@pytest.mark.parametrize("case", ["not_video", "truncated", "truncated_faststart", "unknown_codec", "no_folder", "folder_is_file", "bad_ext", "image_ext"])
def test_bad_video_input_one_line_nonzero_no_output(tmp_path, case):
    src = write_clip(tmp_path / "c.mp4", panned_frames(6))
    out = tmp_path / "out.mp4"
    if case == "not_video":
        src.write_text("hello, not a video")
    elif case == "truncated":
        src.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    elif case == "truncated_faststart":
        src = write_clip(tmp_path / "c.mp4", panned_frames(6), faststart=True)
        src.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    elif case == "unknown_codec":
        src = _unknown_codec(tmp_path / "c.avi")
    elif case == "no_folder":
        out = tmp_path / "nope" / "out.mp4"
    elif case == "folder_is_file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "out.mp4"
    elif case == "bad_ext":
        out = tmp_path / "out.xyz"
    elif case == "image_ext":
        out = tmp_path / "out.jpg"
    before = sorted(p.name for p in tmp_path.iterdir())
    r = runner.invoke(app, ["apply", "starry", str(src), "-o", str(out), "--device", "cpu", "-q"])
    assert r.exit_code == 1, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written, no temp file


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_unwritable_output_folder(tmp_path):
    src = write_clip(tmp_path / "c.mp4", panned_frames(3))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        r = runner.invoke(app, ["apply", "starry", str(src), "-o", str(ro / "out.mp4"), "--device", "cpu", "-q"])
    finally:
        ro.chmod(0o755)
    assert r.exit_code == 1 and "not writable" in r.output and not list(ro.iterdir())


# ------------------------------------------------------------------------------ fox.mp4
def test_fox_clip_cut_short_levers_reduce_warping_error(tmp_path):
    """The real clip, its first 8 frames at 128 px: flicker measured per frame and with both levers."""
    from zoo.evaluation.video import measure_clip
    from zoo.media.temporal import Temporal
    from zoo.media.video import read_frames

    clip = write_clip(tmp_path / "fox8.mp4", list(read_frames(PHOTOS / "fox.mp4", size=128, max_frames=8)), rate=30)
    r = measure_clip("starry", clip, settings={"per-frame": Temporal(shared_stats=False, blend=0.0), "both": Temporal()},
                     size=None, every=4)
    assert r["frames"] == 8 and r["size"] == [128, 128]
    assert r["input"]["warping_error"] < r["both"]["warping_error"] < 0.7 * r["per-frame"]["warping_error"]
    assert r["both"]["style_distance"] < 1.3 * r["per-frame"]["style_distance"]


def test_photos_work_without_the_video_extra_and_videos_say_how_to_get_it(tmp_path, monkeypatch):
    src = write_clip(tmp_path / "c.mp4", panned_frames(2))
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError, as without the extra
    monkeypatch.setitem(sys.modules, "cv2", None)
    r = runner.invoke(app, ["apply", "starry", str(PHOTOS / "tubingen.jpg"), "-o", str(tmp_path / "p.jpg"), "--size", "48", "-q"])
    assert r.exit_code == 0 and (tmp_path / "p.jpg").is_file(), r.output
    r = runner.invoke(app, ["apply", "starry", str(src), "-o", str(tmp_path / "v.mp4"), "-q"])
    assert r.exit_code == 1 and "pip install 'style-zoo[video]'" in r.output and not (tmp_path / "v.mp4").exists()
