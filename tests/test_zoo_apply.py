"""zoo apply: tiled inference matches the whole-image result; files, folders, globs, strength, colour."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lit_modules.color import rgb_to_yuv
from lit_modules.transformer_net import TransformerNet
from zoo.inference.stylizer import Stylizer
from zoo.media.images import load_image
from zoo.inference.forward import strip_forward as _forward
from zoo_helpers import cli, err_lines, make_run

ROOT = Path(__file__).resolve().parents[1]
ASSETS = (ROOT / ".." / "shared" / "assets").resolve()
VAL = ASSETS / "photos-1k" / "val"

# Measured on a random-init width-0.25 network, 1800x1200 crop of the 27 MP photo:
#  - tiling itself (same norm statistics) is exact up to float noise: max |diff| 2e-5;
#  - statistics from the downscaled (1024 px) pass vs the exact whole-image ones: mean |diff| 0.019,
#    99.9th percentile 0.16 on [0, 1] pixels. Bounds below leave ~50% headroom.
TILING_MAX_DIFF = 1e-3
STATS_MEAN_DIFF = 0.03
STATS_P999_DIFF = 0.25


def _net(width: float = 0.25) -> TransformerNet:
    torch.manual_seed(0)
    net = TransformerNet(width).eval()
    with torch.no_grad():  # trained-like affine norms, not the identity init
        for n in net.norms():
            n.weight.uniform_(0.5, 1.5)
            n.bias.uniform_(-0.3, 0.3)
    return net


def test_strip_forward_is_the_network():
    """Same picture as the module's forward: zero-padded convs with recomputed edges, 2x and
    non-2x upsamplings, the space-to-depth last conv (fp32), bf16 (oneDNN once gave NaN on a
    1-column stride-2 edge band: small and thin photos)."""
    net = _net(0.5)
    with torch.inference_mode():  # odd sides: 2x and non-2x upsamplings; even: every one 2x (phase convs)
        for shape in ((1, 3, 83, 129), (2, 3, 64, 96), (1, 3, 9, 11), (1, 3, 300, 20)):
            x = torch.rand(*shape)
            ref = net(x)
            # fp32 sums in another order (oneDNN picks kernels per ISA): 2e-6 with AMX, 1.4e-5 on an
            # AVX2-only EPYC; 1e-4 is still 40x under one 8-bit level of the [0, 1] output
            assert (ref - _forward(net, x, torch.float32)).abs().max() < 1e-4, shape
            bf = _forward(net.to(torch.bfloat16), x, torch.bfloat16)
            net.float()
            assert bf.dtype == torch.float32 and (ref - bf).abs().max() < 0.05, shape


def test_tiled_2mp_matches_untiled_within_bound():
    x = load_image(ASSETS / "photos" / "figures_5184x3456.jpg", 1740)  # 1740x1160 = 2.02 MP
    assert x.shape[-2] * x.shape[-1] >= 2_000_000
    u8 = (x * 255).round().to(torch.uint8)  # the apply path feeds uint8 to the tiler
    x = u8.float() / 255
    net = _net()
    with torch.inference_mode():
        whole = Stylizer(net, tile=None).tensor(x)  # exact whole-image statistics
        stats = net.record_norm_stats(torch.nn.functional.interpolate(x, size=(683, 1024), mode="area"))
        net.set_norm_stats(stats)
        ref = _forward(net, x, torch.float32)  # whole image, the tiler's statistics
        net.set_norm_stats(None)
    tiled = Stylizer(net, tile=768).tensor(u8, stats_size=1024)
    seam = (tiled - ref).abs().max().item()
    d = (tiled - whole).abs().flatten()
    mean, p999 = d.mean().item(), d.kthvalue(int(d.numel() * 0.999)).values.item()
    print(f"\ntiled vs same-stats untiled: max {seam:.2e}; tiled vs exact untiled: mean {mean:.4f}, p99.9 {p999:.4f}")
    assert seam < TILING_MAX_DIFF  # no seams: tiles reproduce the whole-image pass
    assert mean < STATS_MEAN_DIFF and p999 < STATS_P999_DIFF


@pytest.fixture
def zoo_with_model(tmp_path, monkeypatch):
    from zoo.sharing.publish import publish

    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "zoo"))
    monkeypatch.setattr("zoo.registry.store.BUILTIN_DIR", tmp_path / "no-builtin")
    publish(make_run(tmp_path / "run"), "tiny", sample=None)
    return tmp_path


def test_apply_files_folders_globs_strength_and_color(zoo_with_model):
    tmp = zoo_with_model
    photos = sorted(VAL.iterdir())[:3]
    folder = tmp / "in"
    folder.mkdir()
    for p in photos:
        (folder / p.name).write_bytes(p.read_bytes())
    r = cli("apply", "tiny", folder, "--out-dir", tmp / "out", "--size", 96, "-q")
    assert r.exit_code == 0, r.output
    assert sorted(q.name for q in (tmp / "out").iterdir()) == sorted(p.name for p in photos)
    r = cli("apply", "tiny@1", str(folder / "*.jpg"), "--out-dir", tmp / "out2", "--size", 64, "--tile", "64")
    assert r.exit_code == 0 and "3 files" in r.output, r.output

    src = folder / photos[0].name
    assert cli("apply", "tiny", src, "-o", tmp / "s0.png", "--size", 96, "--strength", 0).exit_code == 0
    assert (load_image(tmp / "s0.png") - load_image(src, 96)).abs().max() < 2 / 255
    assert cli("apply", "tiny", src, "-o", tmp / "pc.png", "--size", 96, "--preserve-color").exit_code == 0
    uv_out, uv_in = rgb_to_yuv(load_image(tmp / "pc.png"))[:, 1:], rgb_to_yuv(load_image(src, 96))[:, 1:]
    assert (uv_out - uv_in).abs().mean() < 0.02

    r = cli("apply", "tiny", src, folder / photos[1].name, "-o", tmp / "x.jpg")
    assert r.exit_code == 1 and "--out-dir" in r.output and len(err_lines(r)) == 1
    r = cli("apply", "tiny", tmp / "missing.jpg", "-o", tmp / "x.jpg")
    assert r.exit_code == 1 and "no such file" in r.output
    r = cli("apply", "tiny", "https://example.com/photo.jpg", "-o", tmp / "x.jpg")
    assert r.exit_code == 1 and "a URL; the zoo reads local files" in r.output and len(err_lines(r)) == 1
    r = cli("apply", "tiny", src, "-o", src)
    assert r.exit_code == 1 and "overwrite" in r.output
    r = cli("apply", "tini", src, "-o", tmp / "x.jpg")
    assert r.exit_code == 1 and "did you mean tiny" in r.output


def test_a_photo_apply_reads_and_verifies_the_weights_once(zoo_with_model, monkeypatch):
    from zoo.registry.store import Entry

    reads = []
    real = Entry.read_weights
    monkeypatch.setattr(Entry, "read_weights", lambda self: reads.append(self.ref) or real(self))
    src = sorted(VAL.iterdir())[0]
    r = cli("apply", "tiny", src, "-o", zoo_with_model / "once.jpg", "--size", 64)
    assert r.exit_code == 0, r.output
    assert reads == ["tiny@1"]


def test_zoo_load_is_a_stylizer_for_pil_images_and_tensors(zoo_with_model):
    from PIL import Image

    import zoo

    stylize = zoo.load("tiny", precision="fp32")
    photo = Image.open(sorted(VAL.iterdir())[0]).convert("RGB").resize((96, 64))
    out = stylize(photo)
    assert isinstance(out, Image.Image) and out.size == (96, 64)
    x = load_image(sorted(VAL.iterdir())[0], 64)
    y = stylize(x)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    assert (y - stylize.net(x)).abs().max() < 1e-4  # the fast forward is the network
