"""The one grammar of references, as ``zoo apply``, ``zoo serve``, ``zoo pull`` and ``--init`` read them.

    name            the latest version in the user's zoo, else the built-in layer
    name@N          version N
    a+b             an equal blend of styles trained together (one conditional network)
    a@2:0.7+b:0.3   a weighted blend: each weight a number > 0 (0.7, 2, 1e+06), normalised; each part
                    may pin a version
    hf:OWNER/REPO[@REV]   a Hugging Face Hub repo (zoo pull / push); REV: tag, branch or commit
    URL[@REV]       any fsspec URL or folder holding a pushed model (file://, memory://, s3://...)
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import HubError, InvalidName, ModelNotFound, ZooError
from .schema import show

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
VERSION_RE = re.compile(r"[1-9][0-9]{0,8}")
REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
# A weight: decimal digits with an optional fraction and exponent (0.7, .5, 2, 1e+06, 2.5E-3).
# No sign, no nan/inf, no '_' (which float() would accept): a weight is a plain positive number.
WEIGHT_RE = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
# One part of a blend and what ends it. A '+' joins the weight's token only as an exponent's sign
# (a digit or '.', then e, then '+', then a digit: "1e+06"); every other '+' separates parts.
PART_RE = re.compile(r"\s*(?P<ref>[^:+\s]+)(?:\s*:\s*(?P<weight>(?:(?<=[0-9.])[eE]\+(?=[0-9])|[^+\s])+))?\s*(?P<end>\+|\Z)")


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise InvalidName(
            f"invalid model name {show(name) if isinstance(name, str) else type(name).__name__}: use 1-64 of a-z, 0-9, "
            "'_' and '-', starting with a letter or digit (no paths, no '..', no upper case)"
        )
    return name


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"starry"`` -> ("starry", None); ``"starry@3"`` -> ("starry", 3)."""
    name, at, ver = ref.partition("@")
    validate_name(name)
    if not at:
        return name, None
    if not VERSION_RE.fullmatch(ver):
        raise ModelNotFound(f"bad version in {show(ref)}: use NAME@N with N = 1, 2, ...")
    return name, int(ver)


def is_blend(ref: str) -> bool:
    """A model reference that mixes styles (``a+b``, ``a:0.7+b:0.3``, or one weighted part)."""
    return "+" in ref or ":" in ref


def parse_weight(token: str, ref: str) -> float:
    """A blend part's weight: a finite number > 0."""
    if not WEIGHT_RE.fullmatch(token):
        raise ZooError(f"blend {show(ref)}: {show(token)} is not a weight (a number > 0: starry:0.7+wave:0.3)")
    weight = float(token)
    if not math.isfinite(weight) or weight <= 0:
        raise ZooError(f"blend {show(ref)}: weight {show(token)} must be a finite number > 0")
    return weight


def blend_parts(ref: str) -> list[tuple[str, str | None]]:
    """``a@2:0.7+b`` -> [("a@2", "0.7"), ("b", None)]: the grammar's tokens, unchecked."""
    parts, pos = [], 0
    while True:
        m = PART_RE.match(ref, pos)
        if m is None:
            raise ZooError(f"blend {show(ref)}: each part is NAME[@N][:WEIGHT], parts joined by '+' "
                           "(starry@2:0.7+wave@2:0.3)")
        parts.append((m.group("ref"), m.group("weight")))
        if not m.group("end"):
            return parts
        pos = m.end()


def parse_blend(ref: str) -> list[tuple[str, float]]:
    """``a+b`` (equal) or ``a:0.7+b:0.3`` (weights > 0, normalised later) -> [(name[@N], weight), ...]."""
    parts = []
    for name, token in blend_parts(ref):
        weight = 1.0 if token is None else parse_weight(token, ref)
        parse_ref(name)
        parts.append((name, weight))
    if not math.isfinite(sum(w for _, w in parts)):
        raise ZooError(f"blend {show(ref)}: the weights are too large to add up")
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
        if not REPO_RE.fullmatch(repo) or ".." in repo:
            raise HubError(f"{text!r}: expected hf:OWNER/REPO (letters, digits, '.', '_', '-')")
        return Target("hf", repo, rev)
    if not base or base.startswith("-"):
        raise HubError(f"{text!r}: expected hf:OWNER/REPO or an fsspec URL (file://, memory://, s3://...)")
    return Target("fsspec", base.rstrip("/") or "/", rev)
