"""Devices and precisions, resolved in one place for training, Gatys runs and inference.

Measured: on an AVX2-only CPU (no AMX, no avx512_bf16) bf16 convolutions are 5-200x *slower*
than fp32, so ``auto`` picks bf16 only where the hardware has it.

Torch is imported inside the functions: the precision lists are read by the torch-free configs
(and so by ``zoo --help``)."""
from __future__ import annotations

import functools
import os

from .errors import ConfigError

# zoo apply / serve / evaluate: the dtype the network runs in
INFERENCE_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# zoo train: spellings accepted -> Lightning's precision plugin name
TRAIN_PRECISIONS = {
    "auto": "auto",
    "fp32": "32-true", "32": "32-true", "32-true": "32-true",
    "bf16": "bf16-mixed", "bf16-mixed": "bf16-mixed",
    "16": "16-mixed", "16-mixed": "16-mixed", "fp16": "16-mixed",
}
# zoo stylize (Gatys): the loss network's dtype
GATYS_PRECISIONS = ("auto", "bf16", "fp32")


@functools.lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str]:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_fast(device: torch.device | str) -> bool:
    """True where bf16 convolutions beat fp32: CUDA with bf16, or a CPU with AMX / avx512_bf16."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # oneDNN held to an older ISA (ONEDNN_MAX_CPU_ISA=AVX2, as benchmarks do to stand in for an
        # AVX2-only CPU) cannot use AMX / avx512_bf16 even where the CPU has them
        isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
        if isa and not ("AMX" in isa or "AVX512" in isa or isa in ("ALL", "DEFAULT")):
            return False
        return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
    return False


def resolve_device(device: str) -> str:
    """auto -> cuda if available, else cpu; cpu, cuda and cuda:N checked; anything else is a ConfigError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N")
    return device


def inference_dtype(precision: str, device: torch.device | str) -> torch.dtype:
    """The dtype a network runs in for ``precision`` (auto: bf16 where fast) on ``device``."""
    import torch

    if precision not in INFERENCE_PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of {', '.join(INFERENCE_PRECISIONS)}")
    if precision == "auto":
        return torch.bfloat16 if bf16_fast(device) else torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def check_train_precision(precision: str) -> None:
    if str(precision) not in TRAIN_PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose one of auto, fp32, bf16, 16-mixed")


def train_precision(precision: str, accelerator: str) -> str:
    """Lightning's precision for ``zoo train``: auto -> bf16-mixed where bf16 is fast, else 32-true."""
    check_train_precision(precision)
    p = TRAIN_PRECISIONS[str(precision)]
    if p == "auto":
        return "bf16-mixed" if bf16_fast("cuda" if accelerator == "gpu" else "cpu") else "32-true"
    return p


def check_gatys_precision(precision: str) -> None:
    if precision not in GATYS_PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; choose {', '.join(GATYS_PRECISIONS[:-1])} or {GATYS_PRECISIONS[-1]}")


def gatys_bf16(precision: str, device: torch.device | str) -> bool:
    """Whether the Gatys loss network runs in bf16."""
    return precision == "bf16" or (precision == "auto" and bf16_fast(device))


def hardware_name(device: torch.device | str) -> str:
    """A short human description of the device, for model cards and benchmark lines."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = "CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {torch.get_num_threads()} threads"
