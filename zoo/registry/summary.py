"""One row per model, as ``zoo list``, ``zoo styles`` and the web page's ``/api/models`` show it."""
from __future__ import annotations

from dataclasses import dataclass

from .store import Entry, ZooStack


@dataclass(frozen=True)
class ModelRow:
    ref: str  # starry@4
    name: str
    version: int
    layer: str  # "user" or "built-in"
    title: str  # the painting's title, else the style's or model's name
    style: str | None  # the named style it was trained on
    artist: str | None
    year: str | None
    painting_license: str | None
    bytes: int
    created: str
    style_distance: float | None
    content_distance: float | None
    ssim: float | None
    ms_per_mp: float | None
    has_sample: bool
    origin: str | None  # where a pulled model came from

    @classmethod
    def of(cls, entry: Entry, layer: str) -> "ModelRow":
        r = entry.record
        m = r.metrics
        return cls(ref=entry.ref, name=entry.name, version=entry.version, layer=layer, title=r.title or entry.name,
                   style=r.style_name, artist=r.style.get("artist"), year=r.style.get("year"),
                   painting_license=r.style.get("license"), bytes=r.bytes, created=r.created,
                   style_distance=m.get("style_distance"), content_distance=m.get("content_distance"), ssim=m.get("ssim"),
                   ms_per_mp=r.speed.get("ms_per_mp"), has_sample=bool(r.sample), origin=r.origin.get("source"))


def model_rows(zoo: str | None = None, all_versions: bool = False) -> list[ModelRow]:
    """Every model of the user's zoo over the built-in layer (latest versions unless ``all_versions``)."""
    return [ModelRow.of(e, layer) for e, layer in ZooStack(zoo).entries(all_versions=all_versions)]
