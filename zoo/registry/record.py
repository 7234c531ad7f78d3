"""A version's record, typed: what ``index.json`` and ``<zoo>/models/<name>/v<N>.json`` hold.

The on-disk format is a plain JSON object; ``VersionRecord`` reads it (unknown keys are kept and
written back untouched), so every reader asks for ``record.style`` instead of re-deriving
``info.get("style") or {}``.

A record that travels (``zoo push`` writes it into ``config.json``, ``zoo pull`` reads it) holds no
zoo paths, numbers or timestamps: the receiving zoo derives those itself. ``pulled_record`` checks
one against ``PULLED_RECORD`` (types, ranges, known fields) before anything is built from it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InvalidRecord
from .refs import NAME_RE, VERSION_RE
from .schema import (HEX64_RE, Check, boolean, dict_of, either, integer, list_of, nullable, number, obj, scalar,
                     text, tree)

CARD_RE = re.compile(rf"cards/{NAME_RE.pattern}@{VERSION_RE.pattern}\.md")
SAMPLE_RE = re.compile(rf"cards/{NAME_RE.pattern}@{VERSION_RE.pattern}\.(jpg|png)")
# A painting's file name as the styles folder knows it: a bare name, never a path.
FILE_NAME_RE = re.compile(r"(?!\.)[^/\\:]{1,200}")
WORD_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}")  # backbone, pooling, precision, dtype...

# Fields the receiving zoo derives (paths from name, version and content hash; numbers; times):
# a pulled record that sets one is refused, so no remote ever chooses a path in the zoo.
DERIVED = {
    "version": "the zoo numbers versions itself",
    "file": "the zoo names the weights file by its content hash",
    "sha256": "the zoo hashes the weights itself",
    "bytes": "the zoo measures the weights itself",
    "created": "the zoo stamps the time itself",
    "card": "the zoo writes the model card itself",
    "sample": "the zoo names the sample picture itself",
    "origin": "the zoo records where it pulled from",
    "source": "a publisher's local path does not travel",
}

HEX64 = text(64, HEX64_RE, "a sha256 (64 lower-case hex digits)")
NAME = text(64, NAME_RE, "a model name (1-64 of a-z, 0-9, _ and -)")
WORD = text(40, WORD_RE, "a word (letters, digits, _ . + -)")
COUNT = integer(0, 10**12)
POSITIVE = number(0, 1e12)
SIZE_PX = integer(1, 1 << 15)
LOSS_WEIGHT = number(0, 1e12)


def _family(v: object, where: str) -> dict:
    fam = obj({"styles": list_of(NAME, 64, min_items=1), "index": integer(0, 63), "shared_sha256": HEX64},
              required=("styles", "index", "shared_sha256"))(v, where)
    if fam["index"] >= len(fam["styles"]):
        raise InvalidRecord(f"{where}.index must name one of its {len(fam['styles'])} styles, not {fam['index']}")
    return fam


# The architecture a stranger's model may have: an ordinary size, so that what it builds stays small.
PULLED_ARCHITECTURE: dict[str, Check] = {
    "width": number(0, 4, lo_open=True),
    "num_residual": integer(0, 32),
    "styles": integer(1, 64),
}
# A locally trained one: any size its weights have (the loader never builds more than they describe).
ARCHITECTURE: dict[str, Check] = {
    "width": number(0, 64, lo_open=True),
    "num_residual": integer(0, 1000),
    "styles": integer(1, 4096),
}

CONFIG: dict[str, Check] = {
    **PULLED_ARCHITECTURE,
    "family": _family,
    "backbone": WORD, "pooling": WORD, "lr_schedule": WORD, "precision": WORD,
    "content_layers": dict_of(LOSS_WEIGHT, 32), "style_layers": dict_of(LOSS_WEIGHT, 32),
    "content_weight": nullable(LOSS_WEIGHT), "tv_weight": nullable(LOSS_WEIGHT), "content_limit": nullable(POSITIVE),
    "control_rate": nullable(POSITIVE),
    "style_weight": nullable(either(LOSS_WEIGHT, list_of(LOSS_WEIGHT, 64), "a number >= 0 or a list of them")),
    "image_size": SIZE_PX, "style_size": SIZE_PX, "photo_size": nullable(SIZE_PX),
    "batch_size": integer(1, 1 << 20), "max_steps": COUNT, "image_every": COUNT, "log_every": COUNT,
    "seed": integer(-(2**63), 2**64), "lr": number(0, 1e3), "channels_last": boolean,
    "data": text(500), "init": nullable(text(500)),
}
STYLE: dict[str, Check] = {
    "name": text(128, re.compile(r"[^/\\]+"), "a style name (one line, no '/')"),
    "title": text(300), "artist": text(300), "license": text(1000),
    "year": either(text(40), integer(-10**4, 10**4), "a year"),
    "file": text(200, FILE_NAME_RE, "a bare file name (no '/', not starting with '.')"),
    "sha256": either(HEX64, text(0), "a sha256 (64 hex digits) or empty"),
}
TRAINING_INIT: dict[str, Check] = {"from": text(500), "steps": COUNT, "images_seen": COUNT, "wall_seconds": POSITIVE,
                                   "hardware": text(300), "styles": dict_of(text(128), 64)}  # style -> the source's style it took
TRAINING: dict[str, Check] = {
    "steps": nullable(COUNT), "images_seen": COUNT, "wall_seconds": POSITIVE, "images_per_s": POSITIVE,
    "skipped_images": COUNT, "rank": COUNT, "world_size": integer(1, 10**6), "hardware": text(300),
    "precision": nullable(WORD), "run_id": text(200), "style_weight": POSITIVE,
    "final_loss": dict_of(number(-1e30, 1e30), 16),
    "init": obj(TRAINING_INIT, extra=tree(1)),
}
METRIC = number(-1e12, 1e12)
METRICS: dict[str, Check] = {
    **{k: METRIC for k in ("style_distance", "content_distance", "ssim", "layout_ssim", "black_max")},
    "images": COUNT, "size": SIZE_PX, "style_size": SIZE_PX, "data": text(500), "tool": text(200), "backbone": WORD,
    "speed": obj({"ms_per_mp": POSITIVE, "device": text(300), "precision": WORD}, extra=scalar),
    "reference": obj({"name": text(300), "measured_for": text(200),
                      **{k: METRIC for k in ("style_distance", "content_distance", "ssim", "layout_ssim", "black_max")}},
                     extra=scalar),
}
PULLED_RECORD: Check = obj(
    {
        "config": obj(CONFIG, required=("width",), extra=scalar),
        "style": obj(STYLE, extra=scalar),
        "training": obj(TRAINING, refused={"checkpoint": "a publisher's local path does not travel",
                                           "run_dir": "a publisher's local path does not travel"}, extra=scalar),
        "metrics": obj(METRICS, extra=tree(2)),
        "dtype": WORD,
        "parameters": COUNT,
        "license": text(2000),
    },
    required=("config",),
    refused=DERIVED,
)


def pulled_record(record: object, where: str = "record") -> dict:
    """A record read from a remote, checked against ``PULLED_RECORD``; ``InvalidRecord`` (one line) if not."""
    return PULLED_RECORD(record, where)


def architecture(config: dict, where: str = "config") -> dict:
    """``width``, ``num_residual``, ``styles`` of a version's config, checked (defaults as
    ``TransformerNet.from_config`` has them); ``InvalidRecord`` names a field of the wrong type."""
    if not isinstance(config, dict):
        raise InvalidRecord(f"{where} must be an object, not {type(config).__name__}")
    arch = {"width": 1.0, "num_residual": 5, "styles": 1}
    for key, check in ARCHITECTURE.items():
        if key in config:
            arch[key] = check(config[key], f"{where}.{key}")
    return arch


def zoo_path(value: object, shape: re.Pattern) -> str | None:
    """A path read from the index, if it has the shape the zoo gives such files; else None."""
    return value if isinstance(value, str) and shape.fullmatch(value) else None


def _dict(v) -> dict:
    return v if isinstance(v, dict) else {}


@dataclass(frozen=True)
class VersionRecord:
    """``{version, file, sha256, bytes, created, style, config, training, metrics, card, sample, origin, ...}``."""

    raw: dict

    @property
    def version(self) -> int:
        return int(self.raw["version"])

    @property
    def file(self) -> str:
        return self.raw["file"]

    @property
    def sha256(self) -> str:
        return self.raw["sha256"]

    @property
    def bytes(self) -> int:
        return int(self.raw.get("bytes") or 0)

    @property
    def created(self) -> str:
        return str(self.raw.get("created") or "")

    @property
    def style(self) -> dict:
        """The painting: name, title, artist, year, license, file, sha256 (what is known)."""
        return _dict(self.raw.get("style"))

    @property
    def style_name(self) -> str | None:
        return self.style.get("name") or None

    @property
    def title(self) -> str | None:
        """The painting's title, else the style's name."""
        return self.style.get("title") or self.style.get("name") or None

    @property
    def config(self) -> dict:
        return _dict(self.raw.get("config"))

    @property
    def training(self) -> dict:
        return _dict(self.raw.get("training"))

    @property
    def metrics(self) -> dict:
        return _dict(self.raw.get("metrics"))

    @property
    def speed(self) -> dict:
        return _dict(self.metrics.get("speed"))

    @property
    def origin(self) -> dict:
        """Where a pulled version came from (source, revision, ref, sha256); {} for a local one."""
        return _dict(self.raw.get("origin"))

    @property
    def family(self) -> str | None:
        """The hash of the convolutions shared with the styles trained together with it, else None."""
        return _dict(self.config.get("family")).get("shared_sha256")

    @property
    def card(self) -> str | None:
        """The card's path in the zoo (``cards/<name>@<N>.md``); None if there is none or the index
        names anything else (then it is no card of ours: never read)."""
        return zoo_path(self.raw.get("card"), CARD_RE)

    @property
    def sample(self) -> str | None:
        """The sample picture's path in the zoo (``cards/<name>@<N>.jpg``), on the same terms as ``card``."""
        return zoo_path(self.raw.get("sample"), SAMPLE_RE)
