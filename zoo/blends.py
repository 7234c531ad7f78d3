"""Model references for apply/export/serve: ``name[@N]``, or a blend of styles trained together
(``starry+wave``, ``starry:0.7+wave:0.3``) mixed into one plain network (no Lightning import)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Blend:
    """What ``load_model`` returns in place of an ``Entry`` for a blend such as ``starry:0.7+wave:0.3``."""

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


def parse_blend(ref: str) -> list[tuple[str, float]]:
    """``a+b`` (equal) or ``a:0.7+b:0.3`` (weights, normalised) -> [(ref, weight), ...]."""
    from zoo.index import ZooError

    parts = []
    for item in ref.split("+"):
        name, _, w = item.strip().partition(":")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise ZooError(f"blend {ref!r}: {w!r} is not a weight (write starry:0.7+wave:0.3)") from None
        if not name or weight < 0:
            raise ZooError(f"blend {ref!r}: each part is NAME[@N][:WEIGHT] with a weight >= 0")
        parts.append((name, weight))
    if sum(w for _, w in parts) <= 0:
        raise ZooError(f"blend {ref!r}: the weights sum to 0")
    return parts


def resolve_model(ref: str, zoo: str | None = None):
    """``name[@N]`` or a blend ``a[:w]+b[:w]`` -> (plain fp32 TransformerNet, Entry or Blend), verified."""
    from lit_modules.transformer_net import blend
    from zoo.apply import net_from_bytes
    from zoo.index import ZooError, ZooStack

    stack = ZooStack(zoo)
    if "+" not in ref and ":" not in ref:
        entry = stack.resolve(ref)
        return net_from_bytes(entry.read_weights(), entry.config), entry
    parts = parse_blend(ref)
    entries = _one_family([stack.resolve(name) for name, _ in parts], [name for name, _ in parts], stack)
    nets = [net_from_bytes(e.read_weights(), e.config) for e in entries]
    fams = {e.family for e in entries}
    try:
        if len(entries) > 1 and (None in fams or len(fams) > 1):
            raise ValueError("not trained together")
        net = blend(nets, [w for _, w in parts])
    except ValueError:
        raise ZooError(f"cannot blend {', '.join(e.ref for e in entries)}: only styles of one network trained together "
                       "(zoo train --style a,b,...) can be blended") from None
    total = sum(w for _, w in parts)
    weights = tuple(round(w / total, 4) for _, w in parts)
    name = "+".join(e.name for e in entries)
    return net.eval().requires_grad_(False), Blend(name, "+".join(f"{e.ref}:{w:g}" for e, w in zip(entries, weights)),
                                                   tuple(entries), weights)


def _key(entry) -> tuple:
    return id(entry.zoo), entry.name, entry.version  # one version of one layer of the stack


def _one_family(entries: list, refs: list[str], stack) -> list:
    """The latest versions of ``starry+wave`` may come from different networks (wave retrained alone
    after the family was published): then the unversioned parts fall back to the family that holds
    most of what the names resolved to (the newest such), an explicit ``@N`` staying as written."""
    from zoo.index import parse_ref

    if len(entries) < 2 or (entries[0].family and len({e.family for e in entries}) == 1):
        return entries
    pinned = [_key(e) if parse_ref(r)[1] else None for e, r in zip(entries, refs)]  # an explicit @N stays
    resolved = {_key(e) for e in entries}
    by_family: dict[str, dict] = {}
    for e, _ in stack.entries(all_versions=True):
        if e.family:
            by_family.setdefault(e.family, {}).setdefault(e.name, e)  # user layer first: it shadows
    best, best_rank = None, None
    for members in by_family.values():
        picked = [members.get(e.name) for e in entries]
        if all(p is not None and pin in (None, _key(p)) for p, pin in zip(picked, pinned)):
            rank = (sum(_key(p) in resolved for p in picked), max(p.version for p in picked))
            if best_rank is None or rank > best_rank:
                best, best_rank = picked, rank
    return best or entries
