"""The one grammar of references, as ``zoo apply``, ``zoo serve``, ``zoo pull`` and ``--init`` read them.

    name            the latest version in the user's zoo, else the built-in layer
    name@N          version N
    a+b             an equal blend of styles trained together (one conditional network)
    a@2:0.7+b:0.3   a weighted blend (weights normalised; each part may pin a version)
    hf:OWNER/REPO[@REV]   a Hugging Face Hub repo (zoo pull / push); REV: tag, branch or commit
    URL[@REV]       any fsspec URL or folder holding a pushed model (file://, memory://, s3://...)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import HubError, InvalidName, ModelNotFound, ZooError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidName(
            f"invalid model name {name!r}: use 1-64 of a-z, 0-9, '_' and '-', starting with a letter or digit "
            "(no paths, no '..', no upper case)"
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"starry"`` -> ("starry", None); ``"starry@3"`` -> ("starry", 3)."""
    name, _, ver = ref.partition("@")
    validate_name(name)
    if not _:
        return name, None
    if not ver.isdigit() or int(ver) < 1:
        raise ModelNotFound(f"bad version in {ref!r}: use NAME@N with N = 1, 2, ...")
    return name, int(ver)


def is_blend(ref: str) -> bool:
    """A model reference that mixes styles (``a+b``, ``a:0.7+b:0.3``, or one weighted part)."""
    return "+" in ref or ":" in ref


def parse_blend(ref: str) -> list[tuple[str, float]]:
    """``a+b`` (equal) or ``a:0.7+b:0.3`` (weights, normalised later) -> [(name[@N], weight), ...]."""
    parts = []
    for item in ref.split("+"):
        name, _, w = item.strip().partition(":")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise ZooError(f"blend {ref!r}: {w!r} is not a weight (write starry:0.7+wave:0.3)") from None
        if not name or not math.isfinite(weight) or weight < 0:
            raise ZooError(f"blend {ref!r}: each part is NAME[@N][:WEIGHT] with a finite weight >= 0")
        parse_ref(name)
        parts.append((name, weight))
    if sum(w for _, w in parts) <= 0:
        raise ZooError(f"blend {ref!r}: the weights sum to 0")
    return parts


@dataclass(frozen=True)
class Target:
    """``hf:OWNER/REPO[@REV]`` or ``URL[@REV]``."""

    kind: str  # "hf" or "fsspec"
    where: str  # OWNER/REPO or the URL (no trailing slash)
    revision: str | None = None

    @property
    def label(self) -> str:
        base = f"hf:{self.where}" if self.kind == "hf" else self.where
        return f"{base}@{self.revision}" if self.revision else base


def parse_target(text: str, allow_revision: bool = True) -> Target:
    """``hf:OWNER/REPO[@REV]`` or an fsspec URL / path ``[@REV]`` (REV without '/')."""
    text = text.strip()
    base, rev = text, None
    if "@" in text and "/" not in text.rsplit("@", 1)[1]:
        base, rev = text.rsplit("@", 1)
        if not rev:
            raise HubError(f"{text!r}: empty revision after '@'")
        if not allow_revision:
            raise HubError(f"{text!r}: push to a repo without @REV (each version becomes tag v<N>)")
    if base.startswith("hf:"):
        repo = base[3:].strip("/")
        if not REPO_RE.match(repo) or ".." in repo:
            raise HubError(f"{text!r}: expected hf:OWNER/REPO (letters, digits, '.', '_', '-')")
        return Target("hf", repo, rev)
    if not base or base.startswith("-"):
        raise HubError(f"{text!r}: expected hf:OWNER/REPO or an fsspec URL (file://, memory://, s3://...)")
    return Target("fsspec", base.rstrip("/") or "/", rev)
