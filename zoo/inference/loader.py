"""The one verified loader: a model reference -> a plain network, its record, on a device.

``name[@N]`` resolves in the user's zoo over the built-in layer; a blend ``a:0.7+b:0.3`` of styles
trained together (one conditional network) is mixed into one plain network. Every weights file is
sha256-checked and must be safetensors (``zoo.registry.store.Entry.read_weights``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lit_modules.hw import inference_dtype
from lit_modules.transformer_net import TransformerNet, blend
from zoo.registry.errors import ZooError
from zoo.registry.family import one_family
from zoo.registry.record import VersionRecord
from zoo.registry.refs import is_blend, parse_blend
from zoo.registry.store import Entry, ZooStack


@dataclass(frozen=True)
class Blend:
    """What a blend such as ``starry:0.7+wave:0.3`` loads as, in place of an ``Entry``."""

    name: str  # starry+wave (used in output file names)
    ref: str  # starry@2:0.7+wave@2:0.3
    parts: tuple  # the blended entries
    weights: tuple[float, ...]

    @property
    def config(self) -> dict:
        return self.parts[0].config

    @property
    def info(self) -> dict:
        return {**self.parts[0].info, "blend": {e.ref: w for e, w in zip(self.parts, self.weights)}}

    @property
    def record(self) -> VersionRecord:
        return VersionRecord(self.info)


def resolve_parts(ref: str, zoo: str | None = None) -> tuple[list[Entry], list[float]]:
    """The entries a reference names (one, or a blend's parts kept to one family) and their weights."""
    stack = ZooStack(zoo)
    if not is_blend(ref):
        return [stack.resolve(ref)], [1.0]
    parts = parse_blend(ref)
    names = [name for name, _ in parts]
    return one_family([stack.resolve(name) for name in names], names, stack), [w for _, w in parts]


def resolve_model(ref: str, zoo: str | None = None) -> tuple[TransformerNet, Entry | Blend]:
    """``name[@N]`` or a blend ``a[:w]+b[:w]`` -> (plain fp32 TransformerNet, Entry or Blend), verified."""
    entries, weights = resolve_parts(ref, zoo)
    if not is_blend(ref):
        return entries[0].network(), entries[0]
    nets = [e.network() for e in entries]
    fams = {e.family for e in entries}
    try:
        if len(entries) > 1 and (None in fams or len(fams) > 1):
            raise ValueError("not trained together")
        net = blend(nets, weights)
    except ValueError:
        raise ZooError(f"cannot blend {', '.join(e.ref for e in entries)}: only styles of one network trained together "
                       "(zoo train --style a,b,...) can be blended") from None
    total = sum(weights)
    norm = tuple(round(w / total, 4) for w in weights)
    name = "+".join(e.name for e in entries)
    pinned = "+".join(f"{e.ref}:{w:g}" for e, w in zip(entries, norm))
    return net.eval().requires_grad_(False), Blend(name, pinned, tuple(entries), norm)


@dataclass(frozen=True)
class Loaded:
    """A verified network on its device, in the dtype it runs in, and what it was loaded from."""

    net: TransformerNet
    source: Entry | Blend
    dtype: torch.dtype

    @property
    def ref(self) -> str:
        return self.source.ref


def load(ref: str, zoo: str | None = None, device: str = "cpu", precision: str = "auto") -> Loaded:
    """Resolve, verify and load ``ref`` onto ``device``; ``precision`` auto runs bf16 where it is fast."""
    net, source = resolve_model(ref, zoo)
    dev = torch.device(device)
    dtype = inference_dtype(precision, dev)
    return Loaded(net.to(dev, dtype), source, dtype)
