"""``zoo export``: a zoo model as ONNX or TorchScript, verified by running the export.

ONNX is checked with onnxruntime, TorchScript by loading it back, each against the PyTorch
network on a photo-sized input (and a second size, since both formats keep height and width
dynamic). The largest absolute difference is reported; above ``TOLERANCE`` the export fails.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from lit_modules.errors import StyleZooError, one_line

from .loader import load

FORMATS = ("onnx", "torchscript")
TOLERANCE = 2e-3  # on [0, 1] pixels: invisible (half an 8-bit level)
CHECK_SIZES = ((1, 3, 192, 256), (1, 3, 160, 120))


class ExportError(StyleZooError):
    """An export cannot be written or does not match PyTorch."""


def _check(name: str, got, want: torch.Tensor) -> float:
    diff = float((torch.as_tensor(got).float() - want).abs().max())
    if not diff <= TOLERANCE:
        raise ExportError(f"{name} output differs from PyTorch by {diff:.2e} (> {TOLERANCE:.0e}); export not trusted")
    return diff


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".data").unlink(missing_ok=True)


def export(ref: str, fmt: str, output: str | os.PathLike, zoo: str | None = None, opset: int = 18) -> dict:
    """Write ``ref`` as ``fmt`` to ``output`` and verify it. Returns {"ref", "path", "bytes", "max_abs_diff"}."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use {' or '.join(FORMATS)}")
    output = Path(output)
    if not output.parent.is_dir():
        raise ExportError(f"{output}: folder {output.parent} does not exist")
    loaded = load(ref, zoo, "cpu", "fp32")
    net, entry = loaded.net, loaded.source
    gen = torch.Generator().manual_seed(0)
    inputs = [torch.rand(s, generator=gen) for s in CHECK_SIZES]
    with torch.inference_mode():
        wants = [net(x) for x in inputs]

    if fmt == "onnx":
        import warnings

        import onnxruntime as ort

        def write(tmp: Path) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    net, (inputs[0],), str(tmp), input_names=["image"], output_names=["stylized"], opset_version=opset,
                    dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "stylized": {0: "batch", 2: "height", 3: "width"}},
                    dynamo=False,
                )
            sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            for x, want in zip(inputs, wants):
                diffs.append(_check("ONNX (onnxruntime)", sess.run(None, {"image": x.numpy()})[0], want))
    else:

        def write(tmp: Path) -> None:
            with torch.no_grad():
                scripted = torch.jit.trace(net, inputs[0], check_trace=False)
            scripted.save(str(tmp))
            loaded = torch.jit.load(str(tmp), map_location="cpu")
            with torch.no_grad():
                for x, want in zip(inputs, wants):
                    diffs.append(_check("TorchScript", loaded(x), want))

    diffs: list[float] = []
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notices
            _atomic(output, write)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"{fmt} export of {entry.ref} failed: {type(e).__name__}: {one_line(e, 160)}") from None
    return {"ref": entry.ref, "path": str(output), "bytes": output.stat().st_size, "max_abs_diff": max(diffs)}
