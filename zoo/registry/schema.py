"""Checks for JSON that comes from outside the zoo (a pulled ``config.json``): types, ranges, known keys.

A check is a function ``(value, where) -> value`` that returns the value (normalised: ``int`` for
integers, ``float`` for numbers) or raises ``InvalidRecord`` with one line naming the field
(``record.config.width must be a number in (0, 4], not 100000``). JSON decoded by Python may hold
NaN, Infinity, integers of any size and any depth of nesting; every check here refuses them
unless it says otherwise, so nothing downstream (the network, the card) sees an unchecked value.
"""
from __future__ import annotations

import math
import re
from typing import Callable, Mapping, Sequence

from .errors import InvalidRecord

Check = Callable[[object, str], object]

# One printable line: control characters (newlines included) would break the card and the log.
LINE_RE = re.compile(r"[^\x00-\x1f\x7f]*")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def show(value: object, limit: int = 60) -> str:
    """A value as a message quotes it: short, one line."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(where: str, what: str, value: object) -> InvalidRecord:
    return InvalidRecord(f"{where} must be {what}, not {show(value)}")


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def number(lo: float, hi: float, lo_open: bool = False) -> Check:
    """A finite JSON number in [lo, hi] (or (lo, hi] with ``lo_open``), as a float."""
    what = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}]"

    def check(v: object, where: str) -> float:
        ok = _is_number(v) and (isinstance(v, int) or math.isfinite(v))
        if not ok or not (lo < v if lo_open else lo <= v) or not v <= hi:  # compares big ints exactly
            raise fail(where, what, v)
        return float(v)

    return check


def integer(lo: int, hi: int) -> Check:
    """A JSON integer in [lo, hi] (1.0 is not an integer here, nor is true)."""

    def check(v: object, where: str) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise fail(where, f"an integer in {lo}..{hi}", v)
        return v

    return check


def text(max_len: int = 200, pattern: re.Pattern | None = None, what: str | None = None) -> Check:
    """One line of at most ``max_len`` characters (matching ``pattern`` in full, when given)."""
    what = what or f"one line of text (at most {max_len} characters)"

    def check(v: object, where: str) -> str:
        if not isinstance(v, str) or len(v) > max_len or not LINE_RE.fullmatch(v) or (pattern and not pattern.fullmatch(v)):
            raise fail(where, what, v)
        return v

    return check


def boolean(v: object, where: str) -> bool:
    if not isinstance(v, bool):
        raise fail(where, "true or false", v)
    return v


def nullable(inner: Check) -> Check:
    def check(v: object, where: str) -> object:
        return None if v is None else inner(v, where)

    return check


def either(first: Check, second: Check, what: str) -> Check:
    """``first``, else ``second``; the message names both (``what``)."""

    def check(v: object, where: str) -> object:
        for c in (first, second):
            try:
                return c(v, where)
            except InvalidRecord:
                pass
        raise fail(where, what, v)

    return check


def list_of(item: Check, max_items: int, min_items: int = 0) -> Check:
    def check(v: object, where: str) -> list:
        if not isinstance(v, list) or not min_items <= len(v) <= max_items:
            raise fail(where, f"a list of {min_items}..{max_items} items", v)
        return [item(x, f"{where}[{i}]") for i, x in enumerate(v)]

    return check


def _keys(v: object, where: str, max_keys: int) -> dict:
    if not isinstance(v, dict):
        raise fail(where, "an object", v)
    if len(v) > max_keys:
        raise InvalidRecord(f"{where} has {len(v)} fields; at most {max_keys}")
    for k in v:
        if not isinstance(k, str) or not KEY_RE.fullmatch(k):
            raise InvalidRecord(f"{where} has a field named {show(k)}; names are 1-64 of A-Z a-z 0-9 _ . -")
    return v


def dict_of(value: Check, max_keys: int = 64) -> Check:
    """An object whose every field passes ``value``."""

    def check(v: object, where: str) -> dict:
        return {k: value(x, f"{where}.{k}") for k, x in _keys(v, where, max_keys).items()}

    return check


def obj(
    fields: Mapping[str, Check],
    required: Sequence[str] = (),
    refused: Mapping[str, str] | None = None,
    extra: Check | None = None,
    max_keys: int = 64,
) -> Check:
    """An object of known ``fields``; a field in ``refused`` is refused with its reason; any other
    field must pass ``extra`` (None: unknown fields are refused)."""

    def check(v: object, where: str) -> dict:
        d = _keys(v, where, max_keys)
        out = {}
        for k, x in d.items():
            if refused and k in refused:
                raise InvalidRecord(f"{where}.{k} is not accepted: {refused[k]}")
            if k in fields:
                out[k] = fields[k](x, f"{where}.{k}")
            elif extra is not None:
                out[k] = extra(x, f"{where}.{k}")
            else:
                raise InvalidRecord(f"{where} has an unknown field {show(k)} (known: {', '.join(sorted(fields))})")
        missing = [k for k in required if k not in d]
        if missing:
            raise InvalidRecord(f"{where} lacks {', '.join(missing)}")
        return out

    return check


def scalar(v: object, where: str) -> object:
    """null, true/false, a finite number or one line of text: a plain value, no nesting."""
    if v is None or isinstance(v, bool):
        return v
    if _is_number(v):
        return number(-1e300, 1e300)(v, where) if isinstance(v, float) else integer(-(2**63), 2**64)(v, where)
    if isinstance(v, str):
        return text(1000)(v, where)
    raise fail(where, "a plain value (null, true/false, a number or a line of text)", v)


def tree(depth: int, max_items: int = 64) -> Check:
    """Plain values, or lists and objects of them nested at most ``depth`` deep."""

    def check(v: object, where: str) -> object:
        if isinstance(v, (dict, list)) and depth > 0:
            inner = tree(depth - 1, max_items)
            if isinstance(v, list):
                return list_of(inner, max_items)(v, where)
            return dict_of(inner, max_items)(v, where)
        return scalar(v, where)

    return check
