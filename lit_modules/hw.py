"""Hardware facts that pick fast paths. Measured here: on an AVX2-only CPU (no AMX, no
avx512_bf16) bf16 convolutions are 5-200x *slower* than fp32, so bf16 is chosen only where the
hardware has it."""
from __future__ import annotations

import functools

import torch


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
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
    return False


def hardware_name(device: torch.device | str) -> str:
    """A short human description of the device, for model cards and benchmark lines."""
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
