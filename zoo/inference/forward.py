"""The inference forward of a ``TransformerNet`` that the Stylizer (``zoo apply``) runs: the same arithmetic as
``net(x)`` in bounded memory, 1.7x (fp32) to 3.5x (bf16) faster on a CPU (1080 px, full width:
3.0 -> 1.7 s and 2.2 -> 0.6 s on a 2-core Xeon).

- channels_last throughout: oneDNN's convolutions run 1.3x (fp32) to 4-6x (bf16) faster than on
  NCHW, which it reorders at every call.
- A reflection-padded conv is one zero-padded conv (oneDNN pads inside: no padded copy, no scratch
  memory beyond the output) whose edge rows and columns are then recomputed from small
  reflection-padded bands (``_fix_edges``).
- A nearest 2x upsampling + 3x3 conv is four 2x2 convs on the small map (``_upconv_phases``); other
  upsamplings gather bands of input rows (``_banded``).
- The last 9x9 conv to 3 channels is, in fp32, a 5x5 conv from space-to-depth blocks of 2x2 pixels
  to 12 channels (``_s2d_weights``): oneDNN vectorises over output channels, and 3 of them fill a
  fifth of a vector (measured at 1080 px: 319 -> 185 ms).
- Instance norm statistics and scale/shift run in cache-sized chunks, in place
  (``lit_modules.transformer_net.channel_stats`` / ``scale_shift_``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from lit_modules.transformer_net import TransformerNet, channel_stats, mix_stats, scale_shift_

STRIP_BYTES = 24 << 20  # temporary input rows per strip of a full-resolution conv
CL = torch.channels_last  # the layout of every activation in strip_forward


def _reflect(i: torch.Tensor, n: int) -> torch.Tensor:
    """Reflection-pad index map (ReflectionPad2d semantics) of positions ``i`` into 0..n-1."""
    i = i.abs()
    return torch.where(i >= n, 2 * (n - 1) - i, i)


# Nearest 2x upsampling then a 3x3 conv = four 2x2 convs on the small map, one per output phase
# (row/column even or odd): kernel rows (and columns) summed as [k0, k1+k2] (even) or [k0+k1, k2]
# (odd). 16 taps a small pixel instead of 36: 2.25x fewer FLOPs, and no upsampled copy to gather.
_PHASE = torch.tensor([[[1.0, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]])  # (2 phases, 2 taps, 3 kernel rows)


def _phase_weights(wt: torch.Tensor) -> torch.Tensor:
    """(O, I, 3, 3) -> (O * 4, I, 2, 2): output channel o*4 + 2*py + px is phase (py, px) of o."""
    a = _PHASE.to(wt.device, torch.float32)
    k = torch.einsum("pir,ocrs,qjs->opqcij", a, wt.float(), a)  # (O, 2, 2, I, 2, 2)
    return k.reshape(wt.shape[0] * 4, wt.shape[1], 2, 2).to(wt.dtype)


def _s2d_weights(wt: torch.Tensor, f: int = 2) -> torch.Tensor:
    """(O, C, k, k) -> (O*f*f, C*f*f, m, m), m = ceil((k + f - 1) / f): the same conv from
    ``pixel_unshuffle(x, f)`` to ``pixel_unshuffle(y, f)``. Output (o, a, b) (pixel (f*Y + a, f*X + b))
    takes input (c, p, q) at block offset (mi, ni) with the tap (f*mi + p - a, f*ni + q - b)."""
    O, C, k, _ = wt.shape
    m = (k + f - 2) // f + 1
    wp = F.pad(wt.float(), (f - 1, f * m - k, f - 1, f * m - k))  # zero taps where the index leaves 0..k-1
    i = torch.arange(f)
    tap = (f * torch.arange(m).view(1, 1, m) + i.view(1, f, 1) - i.view(f, 1, 1) + f - 1)  # (a, p, mi) -> padded tap
    K = wp[:, :, tap.view(f, 1, f, 1, m, 1), tap.view(1, f, 1, f, 1, m)]  # (O, C, a, b, p, q, mi, ni)
    return K.permute(0, 2, 3, 1, 4, 5, 6, 7).reshape(O * f * f, C * f * f, m, m).to(wt.dtype)


def _conv_s2d(strip: torch.Tensor, K: torch.Tensor, bias: torch.Tensor | None, f: int, rows: int, cols: int) -> torch.Tensor:
    """A stride-1 'valid' conv of ``strip`` as ``_s2d_weights`` made it: (B, O, rows, cols)."""
    _, _, h, w = strip.shape
    if h % f or w % f:  # a multiple of f each way (zeros, never read by kept outputs)
        strip = F.pad(strip, (0, -w % f, 0, -h % f))
    y = F.conv2d(F.pixel_unshuffle(strip, f).contiguous(memory_format=CL), K, bias)
    return F.pixel_shuffle(y, f)[:, :, :rows, :cols]


def _band(x: torch.Tensor, lo: int, hi: int, p: int, mode: str) -> torch.Tensor:
    """Rows ``lo:hi`` of ``x`` (they may run past either edge) and ``p`` columns each side, padded
    (``mode``) where they leave the map: one copy."""
    H = x.shape[2]
    return F.pad(x[:, :, max(lo, 0):min(hi, H)], (p, p, max(0, -lo), max(0, hi - H)), mode=mode)


def _upconv_phases(conv, x: torch.Tensor, out: torch.Tensor) -> None:
    """``out`` (B, O, 2h, 2w) <- conv3x3(reflect_pad1(nearest_up2(x))), in bands of input rows.
    ``x`` and ``out`` channels_last."""
    B, C, h, w = x.shape
    O = conv.out_channels
    k4 = _phase_weights(conv.weight).contiguous(memory_format=CL)
    b4 = None if conv.bias is None else conv.bias.repeat_interleave(4)
    dst = out.permute(0, 2, 3, 1)  # (B, 2h, 2w, O): a contiguous view of out's memory
    # reflection padding of the upsampled map = replicate padding of the small one (rows 0 and 1
    # of the upsampled map are both row 0)
    band = max(1, STRIP_BYTES // max(1, C * (w + 2) * x.element_size() * B * 4))
    for a0 in range(0, h, band):
        a1 = min(h, a0 + band)
        n = a1 - a0
        xs = _band(x, a0 - 1, a1 + 1, 1, "replicate")  # small-map rows this band reads (one either side)
        y = F.conv2d(xs, k4, b4).permute(0, 2, 3, 1).view(B, n + 1, w + 1, O, 2, 2)  # (B, rows, w + 1, O, py, px)
        d = dst[:, 2 * a0 : 2 * a1].view(B, n, 2, w, 2, O)  # (B, row, py, col, px, O)
        d[:, :, 0, :, 0] = y[:, :n, :w, :, 0, 0]
        d[:, :, 0, :, 1] = y[:, :n, 1:, :, 0, 1]
        d[:, :, 1, :, 0] = y[:, 1:, :w, :, 1, 0]
        d[:, :, 1, :, 1] = y[:, 1:, 1:, :, 1, 1]


def _fix_edges(x: torch.Tensor, wt: torch.Tensor, bias: torch.Tensor | None, s: int, p: int, out: torch.Tensor) -> None:
    """``out`` = conv(zero_pad(x)) -> conv(reflect_pad(x)): recompute the output rows, then the
    columns, whose window reaches past an edge (they saw zeros), each from a reflection-padded band
    of edge rows (columns) of ``x``: four small convs."""
    k = wt.shape[-1]
    for dim in (2, 3):
        n, n_out = x.shape[dim], out.shape[dim]
        first = min(n_out, -(-p // s))  # outputs o with o*s - p < 0
        last = max(first, min(n_out, (n - k + p) // s + 1))  # first o with o*s - p + k - 1 > n - 1
        for o0, o1 in ((0, first), (last, n_out)):
            if o1 <= o0:
                continue
            # at least 8 outputs: oneDNN's bf16 stride-2 conv returns NaN for a 1-wide output
            a, b = (o0, min(n_out, max(o1, o0 + 8))) if o0 == 0 else (max(0, min(o0, n_out - 8)), o1)
            lo, hi = a * s - p, (b - 1) * s + k - p  # input positions these outputs read
            if dim == 2:
                y = F.conv2d(_band(x, lo, hi, p, "reflect"), wt, bias, stride=s)
                out[:, :, o0:o1] = y[:, :, o0 - a : o1 - a]
            else:
                band = F.pad(x[:, :, :, max(lo, 0):min(hi, n)], (max(0, -lo), max(0, hi - n), p, p), mode="reflect")
                out[:, :, :, o0:o1] = F.conv2d(band, wt, bias, stride=s)[:, :, :, o0 - a : o1 - a]


def _banded(conv, p: int, x: torch.Tensor, out: torch.Tensor, size: tuple[int, int] | None, s2d: bool) -> None:
    """``out`` <- conv(reflect_pad(x, p)) (optionally nearest-upsampled to ``size`` first) in
    horizontal bands of output rows, each from one gathered strip of input rows."""
    k, s = conv.kernel_size[0], conv.stride[0]
    B, C, h, w = x.shape
    H, W = size if size is not None else (h, w)
    Ho, Wo = out.shape[-2:]
    dev = x.device
    wt, bias = conv.weight.contiguous(memory_format=CL), conv.bias
    if s2d:  # few output channels (the last layer): a conv between 2x2 pixel blocks (module docstring)
        wt, bias = _s2d_weights(conv.weight).contiguous(memory_format=CL), None if bias is None else bias.repeat_interleave(4)
    cols = _reflect(torch.arange(W + 2 * p, device=dev) - p, W)
    if size is not None:  # nearest: src = floor(dst * in / out), as F.interpolate(mode="nearest")
        cols = torch.clamp((cols.double() * (w / W)).floor().long(), max=w - 1)
    row_bytes = C * (W + 2 * p) * x.element_size() * B
    band = max(1, min(Ho, (STRIP_BYTES // max(1, row_bytes) - k) // s + 1))
    for r0 in range(0, Ho, band):
        r1 = min(Ho, r0 + band)
        if size is None:  # a slice of rows, reflection-padded: one copy (index_select would make two)
            strip = _band(x, r0 * s - p, (r1 - 1) * s + k - p, p, "reflect")
        else:
            rows = _reflect(torch.arange(r0 * s, (r1 - 1) * s + k, device=dev) - p, H)
            rows = torch.clamp((rows.double() * (h / H)).floor().long(), max=h - 1)
            strip = x.index_select(2, rows).index_select(3, cols).contiguous(memory_format=CL)
        out[:, :, r0:r1] = _conv_s2d(strip, wt, bias, 2, r1 - r0, Wo) if s2d else F.conv2d(strip, wt, bias, stride=s)
        del strip


def _conv_layer(layer, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``ConvLayer`` (reflection pad, conv, [instance norm, ReLU]) on ``x`` (channels_last) --
    optionally nearest-upsampled to ``size`` first -- the norm and ReLU in place.

    Same arithmetic as ``layer(x)`` (or ``layer(F.interpolate(x, size))``), but never holds the
    padded or upsampled input: a plain conv is one zero-padded conv with its edges recomputed,
    an upsampling one runs in bands of gathered input rows (or as four small convs, ``phases``).
    """
    mods = list(layer)
    conv = mods[1]
    norm = next((m for m in mods if hasattr(m, "record")), None)
    relu = any(isinstance(m, torch.nn.ReLU) for m in mods)
    k, s, p = conv.kernel_size[0], conv.stride[0], mods[0].padding[0]
    B, C, h, w = x.shape
    H, W = size if size is not None else (h, w)
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    phases = size is not None and (H, W) == (2 * h, 2 * w) and (k, s, p) == (3, 1, 1)
    s2d = x.dtype == torch.float32 and conv.out_channels <= 4 and k >= 5 and s == 1 and size is None
    if size is None and not s2d:
        # One conv over the whole map, zero-padded inside oneDNN (no padded copy, no output copy;
        # measured: no scratch memory beyond the output), then the edges made reflective.
        wt = conv.weight.contiguous(memory_format=CL)
        out = F.conv2d(x, wt, conv.bias, stride=s, padding=p)
        if p:
            _fix_edges(x, wt, conv.bias, s, p, out)
    else:
        out = torch.empty(B, conv.out_channels, Ho, Wo, dtype=x.dtype, device=x.device, memory_format=CL)
        if phases:  # an exact 2x upsampling: four small convs instead of gathering the big map
            _upconv_phases(conv, x, out)
        else:
            _banded(conv, p, x, out, size, s2d)
    if norm is not None:
        if norm.stats is None:
            mean, var = channel_stats(out)
            if norm.record:
                norm.stats = (mean, var)
            if norm.prior is not None:
                mean, var = mix_stats(norm.prior, mean, var)
        else:
            mean, var = norm.stats
        scale = torch.rsqrt(var + norm.eps) * norm.weight.float().view(1, -1, 1, 1)
        shift = norm.bias.float().view(1, -1, 1, 1) - mean * scale
        scale_shift_(out, scale, shift, relu)
    elif relu:
        out.relu_()
    return out


def strip_forward(net: TransformerNet, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``net(x)`` with bounded memory: full- and half-resolution layers run in strips, in place,
    channels_last throughout. (1, 3, H, W) -> (1, 3, H, W) float32, NCHW."""
    x = x.to(dtype).contiguous(memory_format=CL)
    s1 = x.shape[-2:]
    h = _conv_layer(net.enc1, x)
    h = _conv_layer(net.enc2, h)
    s2 = h.shape[-2:]
    h = _conv_layer(net.enc3, h)
    for block in net.res:  # x + body(x), the sum in place of the body's fresh output
        h = _conv_layer(block.body[1], _conv_layer(block.body[0], h)).add_(h)
    h = _conv_layer(net.up1.conv, h, tuple(s2))
    h = _conv_layer(net.up2.conv, h, tuple(s1))
    return torch.sigmoid(_conv_layer(net.out, h).float()).contiguous()


