"""The reference grammar (zoo.registry.refs), generated: NAME[@N] and blends NAME[@N][:WEIGHT]+...

Any text either parses or raises the zoo's one-line error (never another exception, never a
traceback); what the grammar writes it reads back; a weight is a finite number > 0, written any way
Python writes floats (1e+06 included); the CLI and the server's resolver share it."""
from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import PHOTOS
from zoo.registry.errors import ZooError
from zoo.registry.refs import is_blend, parse_blend, parse_ref
from zoo_helpers import cli, err_lines

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.from_regex(re.compile(r"[a-z0-9][a-z0-9_-]{0,20}"), fullmatch=True)
versions = st.none() | st.integers(1, 10**9 - 1)
weights = st.floats(min_value=1e-300, max_value=1e300, allow_nan=False, allow_infinity=False)
# Python's ways of writing a float: repr (0.1, 1e+16, 5e-324), fixed and exponent forms.
formats = st.sampled_from(["{!r}", "{:e}", "{:E}", "{:g}", "{:.3e}", "{:.17g}"])
spaces = st.sampled_from(["", " ", "  ", "\t"])
# Text biased towards the grammar's own characters, so the generated strings probe its corners.
grammar_text = st.text(alphabet="ab01279@:+-.eE _\t\nxn", max_size=40)


def one_line_error(e: ZooError) -> None:
    msg = str(e)
    assert msg and "\n" not in msg and "\r" not in msg and len(msg) < 400, msg


@SETTINGS
@given(st.text(max_size=80) | grammar_text)
@example("starry@3:1e+06+wave@3")
@example("a:" + "1e" * 2000 + " x")  # no catastrophic backtracking
@example("a" + " " * 5000 + ":" + " " * 5000 + "1" + " " * 5000 + "x")
def test_any_text_parses_or_raises_one_line(text):
    for parse in (parse_ref, parse_blend):
        try:
            parse(text)
        except ZooError as e:
            one_line_error(e)


@SETTINGS
@given(st.lists(st.tuples(names, versions, st.none() | weights, formats, spaces, spaces), min_size=1, max_size=8))
def test_blend_round_trip(parts):
    written, expected = [], []
    for name, version, weight, fmt, left, right in parts:
        ref = name if version is None else f"{name}@{version}"
        token = None if weight is None else fmt.format(weight)
        written.append(f"{left}{ref}{'' if token is None else f'{right}:{left}{token}'}{right}")
        expected.append((ref, 1.0 if token is None else float(token)))
    text = "+".join(written)
    assert parse_blend(text) == expected
    assert all(math.isfinite(w) and w > 0 for _, w in parse_blend(text))


@SETTINGS
@given(names, versions)
def test_ref_round_trip(name, version):
    ref = name if version is None else f"{name}@{version}"
    assert parse_ref(ref) == (name, version)
    assert not is_blend(ref)


@SETTINGS
@given(st.floats(min_value=1e16, max_value=1e300))
def test_exponent_weights_with_a_plus_sign_parse(w):
    assert "e+" in repr(w)
    assert parse_blend(f"starry@3:{w!r}+wave@3") == [("starry@3", w), ("wave@3", 1.0)]


bad_weights = (st.sampled_from(["0", "0.0", ".0", "0e5", "-0", "-1", "+1", "nan", "NaN", "inf", "-inf", "Infinity", "1e999",
                                "1_0", "0x10", "1e", "1e+", "e5", "1..2", "", " "])
               | st.floats(max_value=0, allow_nan=False).map(repr)
               | st.floats(allow_nan=True, allow_infinity=True).filter(lambda w: not math.isfinite(w)).map(repr))


@SETTINGS
@given(bad_weights, st.booleans())
def test_non_positive_and_non_finite_weights_are_refused(token, first):
    text = f"starry@3:{token}+wave@3" if first else f"starry@3+wave@3:{token}"
    with pytest.raises(ZooError) as e:
        parse_blend(text)
    one_line_error(e.value)


def test_weights_that_overflow_their_sum_are_refused():
    with pytest.raises(ZooError, match="too large"):
        parse_blend("a:1e308+b:1e308")


@pytest.mark.parametrize("text", ["starry@0", "starry@-1", "starry@1.5", "starry@²", "starry@١", "starry@" + "9" * 5000,
                                  "Starry", "starry\n", "../starry", "starry/x", "", "@3"])
def test_refs_outside_the_grammar(text):
    with pytest.raises(ZooError) as e:
        parse_ref(text)
    one_line_error(e.value)


def test_the_server_and_cli_resolver_reads_exponent_weights(tmp_path):
    """zoo apply and zoo serve resolve through zoo.inference.loader.resolve_parts: 1e+06 is a weight there."""
    from zoo.inference.loader import resolve_parts

    entries, ws = resolve_parts("starry@3:1e+06+wave@3", str(tmp_path / "empty"))
    assert [e.ref for e in entries] == ["starry@3", "wave@3"] and ws == [1e6, 1.0]
    for bad in ("starry@3:nan+wave@3", "starry@3:inf+wave@3", "starry@3:0+wave@3", "starry@3:-1+wave@3"):
        with pytest.raises(ZooError):
            resolve_parts(bad, str(tmp_path / "empty"))


@pytest.mark.parametrize("ref", ["starry@3:nan+wave@3", "starry@3:inf+wave@3", "starry@3:0+wave@3", "starry@3:-2+wave@3",
                                 "starry@3:1e999+wave@3", "starry@3:+wave@3"])
def test_cli_refuses_bad_blend_weights_in_one_line(ref, tmp_path):
    out = tmp_path / "never.jpg"
    r = cli("apply", ref, PHOTOS / "tubingen.jpg", "-o", out, "--zoo", tmp_path / "zoo")
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    assert len(err_lines(r)) == 1 and "Traceback" not in r.output, r.output
    assert not out.exists()
