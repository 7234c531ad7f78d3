"""Families: the styles of one conditional-instance-norm network, published as one version each.

They share their convolutions (``config.family.shared_sha256``), so they blend (``a:0.7+b:0.3``)
and a new run can start from all of them at once (``zoo train --init starry@2``).
"""
from __future__ import annotations

from train.warmstart import WarmSource, cost

from .refs import parse_ref
from .store import Entry, ZooStack


def _key(entry: Entry) -> tuple:
    return id(entry.zoo), entry.name, entry.version  # one version of one layer of the stack


def members(stack: ZooStack, entry: Entry) -> list[Entry]:
    """``entry`` and the other styles of its network (one version each), ``entry`` first."""
    if not entry.family:
        return [entry]
    return [entry] + [e for e, _ in stack.entries(all_versions=True) if e.family == entry.family and e.name != entry.name]


def one_family(entries: list[Entry], refs: list[str], stack: ZooStack) -> list[Entry]:
    """The latest versions of ``starry+wave`` may come from different networks (wave retrained alone
    after the family was published): then the unversioned parts fall back to the family that holds
    most of what the names resolved to (the newest such), an explicit ``@N`` staying as written."""
    if len(entries) < 2 or (entries[0].family and len({e.family for e in entries}) == 1):
        return entries
    pinned = [_key(e) if parse_ref(r)[1] else None for e, r in zip(entries, refs)]  # an explicit @N stays
    resolved = {_key(e) for e in entries}
    by_family: dict[str, dict] = {}
    for e, _ in stack.entries(all_versions=True):
        if e.family:
            by_family.setdefault(e.family, {}).setdefault(e.name, e)  # user layer first: it shadows
    best, best_rank = None, None
    for fam in by_family.values():
        picked = [fam.get(e.name) for e in entries]
        if all(p is not None and pin in (None, _key(p)) for p, pin in zip(picked, pinned)):
            rank = (sum(_key(p) in resolved for p in picked), max(p.version for p in picked))
            if best_rank is None or rank > best_rank:
                best, best_rank = picked, rank
    return best or entries


def warm_source(ref: str, zoo: str | None = None) -> WarmSource:
    """A zoo model and its family as ``zoo train --init NAME[@N]`` starts from them."""
    stack = ZooStack(zoo)
    entry = stack.resolve(ref)

    def style_name(e: Entry) -> str:
        return e.record.style_name or e.name

    states = {style_name(e): {k: v.float() for k, v in e.network().state_dict().items()}
              for e in reversed(members(stack, entry))}  # the named model wins a clash
    return WarmSource(states, style_name(entry), entry.config, {"from": entry.ref, **cost(entry.record.training)})
