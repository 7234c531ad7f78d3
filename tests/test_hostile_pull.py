"""zoo pull against a hostile or clumsy remote: config.json that chooses paths, is malformed, out of
range, nested junk or not JSON at all. Every one is refused by the CLI in one line (no traceback),
before the network is built, and the zoo is byte-identical afterwards. Also: an index written by an
older zoo that trusted such paths cannot be read outside the zoo, and the same weights always give
the same bytes (publish is content-addressed).

The remote is an fsspec memory:// folder in this process (no network); the good folder is the
built-in starry@1 as ``zoo push`` writes it."""
from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import time
import uuid
from pathlib import Path

import fsspec
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PHOTOS
from zoo.registry.errors import IntegrityError, ZooError
from zoo.registry.store import Zoo, safe_rel
from zoo.sharing.hub import pull, push
from zoo_helpers import cli, err_lines, make_run

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE = f"memory://hostile-{uuid.uuid4().hex}"
HOSTILE_PATHS = ["../../../../etc/passwd", "/etc/passwd", "index.json", ".index.lock", "cards/../index.json",
                 "models/starry/v1.json", "cards/evil@1.md/../../index.json", "C:\\Windows\\win.ini", "~/.ssh/id_rsa",
                 "file:///etc/passwd", "", "cards/starry@1.md"]


# ------------------------------------------------------------------------------------------------
# the remote and the zoo
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict:
    """The files of a good pushed folder: {name: bytes}."""
    url = f"{BASE}/good"
    push("starry@1", url, zoo=str(tmp_path_factory.mktemp("empty")))
    fs, root = fsspec.core.url_to_fs(url)
    return {name: fs.cat_file(f"{root}/{name}") for name in ("model.safetensors", "config.json", "README.md", "sample.jpg")}


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory, good) -> Path:
    """A zoo with content (one pulled model) that every refused pull must leave as it is."""
    z = tmp_path_factory.mktemp("zoo")
    pull(f"{BASE}/good", name="before", zoo=str(z))
    return z


def tree_hash(root: Path) -> list[tuple[str, str]]:
    """Every file and folder under ``root`` (hidden ones too) with its content's sha256."""
    return sorted((str(p.relative_to(root)), hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
                  for p in root.rglob("*"))


def remote(files: dict[str, bytes]) -> str:
    """A new memory:// folder holding ``files``."""
    url = f"{BASE}/bad-{uuid.uuid4().hex[:12]}"
    fs, root = fsspec.core.url_to_fs(url)
    for name, data in files.items():
        fs.pipe_file(f"{root}/{name}", data)
    return url


def refused(zoo_dir: Path, good: dict, config: bytes | dict | list, name: str = "after") -> str:
    """Pull a folder whose config.json is ``config`` through the CLI: one line, exit 1, zoo untouched."""
    data = config if isinstance(config, bytes) else json.dumps(config).encode()
    url = remote({**good, "config.json": data})
    before = tree_hash(zoo_dir)
    res = cli("pull", url, "--name", name, "--zoo", zoo_dir)
    lines = err_lines(res)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), (res.exception, res.output)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.output, lines
    assert tree_hash(zoo_dir) == before
    return lines[0]


def doc_of(good: dict) -> dict:
    return json.loads(good["config.json"])


def with_value(doc: dict, path: tuple, value) -> dict:
    """A deep copy of ``doc`` with ``doc[path[0]][path[1]]... = value``."""
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


# ------------------------------------------------------------------------------------------------
# hand-picked: the cases the issue reproduced, and their neighbours
# ------------------------------------------------------------------------------------------------
def test_the_good_folder_pulls_and_the_zoo_derives_every_path(zoo_dir, good):
    info = Zoo(zoo_dir).find("before").info
    assert info["card"] == "cards/before@1.md" and info["sample"] == "cards/before@1.jpg"
    assert info["file"] == f"models/before/{info['sha256'][:12]}.safetensors"
    assert "source" not in info and info["origin"]["source"] == f"{BASE}/good"


@pytest.mark.parametrize("field", ["card", "sample", "file"])
@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd", "index.json"])
def test_a_record_that_names_a_path_is_refused(zoo_dir, good, field, path):
    line = refused(zoo_dir, good, with_value(doc_of(good), ("record", field), path))
    assert f"record.{field} is not accepted" in line


@pytest.mark.parametrize("path, value", [
    (("record", "training", "checkpoint"), "/etc/passwd"),
    (("record", "training", "run_dir"), "../../.."),
    (("record", "source"), "/home/someone/run/last.ckpt"),
    (("record", "origin"), {"source": "hf:x/y", "sha256": "0" * 64}),
    (("record", "version"), 7),
    (("record", "style", "file"), "../../etc/passwd"),
    (("record", "style", "file"), "/etc/passwd"),
    (("style_zoo", "file"), "../../index.json"),
])
def test_other_path_and_derived_fields_are_refused(zoo_dir, good, path, value):
    refused(zoo_dir, good, with_value(doc_of(good), path, value))


@pytest.mark.parametrize("width", [100000, -1, 0, "abc", None, float("nan"), float("inf"), True, [0.5], {"w": 0.5}, 4.5])
def test_bad_widths_are_refused_before_a_network_is_built(zoo_dir, good, width):
    t = time.perf_counter()
    line = refused(zoo_dir, good, with_value(doc_of(good), ("record", "config", "width"), width))
    assert "record.config.width must be a number in (0, 4]" in line
    assert time.perf_counter() - t < 5  # width 100000 once took 41 s and 3.8 GB


def test_the_largest_architecture_allowed_is_compared_with_the_weights_before_it_is_built(zoo_dir, good):
    doc = with_value(doc_of(good), ("record", "config", "width"), 4)
    doc["record"]["config"]["num_residual"] = 32
    t = time.perf_counter()
    assert "do not fit" in refused(zoo_dir, good, doc)
    assert time.perf_counter() - t < 5


@pytest.mark.parametrize("path, value, words", [
    (("record", "config"), [0.5, 5], "record.config must be an object"),
    (("record", "style"), "starry", "record.style must be an object"),
    (("record", "config", "num_residual"), 2.5, "num_residual must be an integer"),
    (("record", "config", "family"), {"styles": "starry", "index": 0, "shared_sha256": "0" * 64}, "family.styles"),
    (("record", "config", "family"), {"styles": ["starry"], "index": 3, "shared_sha256": "0" * 64}, "family.index"),
    (("record", "config", "content_layers"), {"relu2_2": "1"}, "content_layers.relu2_2"),
    (("record", "metrics", "speed"), "fast", "metrics.speed must be an object"),
    (("record", "metrics", "ssim"), "0.9", "metrics.ssim must be a number"),
    (("record", "training", "init"), "starry@2", "training.init must be an object"),
    (("record", "style", "title"), "two\nlines", "style.title must be one line"),
    (("style_zoo", "version"), "1", "style_zoo.version must be an integer"),
    (("style_zoo", "sha256"), "../../etc/passwd", "style_zoo.sha256 must be a sha256"),
    (("style_zoo", "format"), 2, "format 2 is not supported"),
])
def test_malformed_records_are_refused_in_one_line(zoo_dir, good, path, value, words):
    assert words in refused(zoo_dir, good, with_value(doc_of(good), path, value))


@pytest.mark.parametrize("config, words", [
    (b"{not json", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),  # nested too deep for the parser
    (b'{"style_zoo": ' + b" " * (2 << 20) + b"}", "at most"),
    ([], "no style_zoo section"),
    ({"style_zoo": [], "record": {}}, "no style_zoo section"),
    (b"\xff\xfe\x00", "not valid JSON"),
])
def test_config_json_that_is_not_a_config_is_refused(zoo_dir, good, config, words):
    assert words in refused(zoo_dir, good, config)


# ------------------------------------------------------------------------------------------------
# generated: typed fields out of their range, paths, unknown fields, junk, broken bytes
# ------------------------------------------------------------------------------------------------
def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and (isinstance(v, int) or math.isfinite(v))


def _int(v, lo, hi) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


# Each typed field and what the schema accepts there, written independently of zoo.registry.record.
TYPED = {
    ("record", "config", "width"): lambda v: _num(v) and 0 < v <= 4,
    ("record", "config", "num_residual"): lambda v: _int(v, 0, 32),
    ("record", "config", "styles"): lambda v: _int(v, 1, 64),
    ("record", "config", "image_size"): lambda v: _int(v, 1, 1 << 15),
    ("record", "config", "batch_size"): lambda v: _int(v, 1, 1 << 20),
    ("record", "config", "lr"): lambda v: _num(v) and 0 <= v <= 1e3,
    ("record", "config", "channels_last"): lambda v: isinstance(v, bool),
    ("record", "config", "content_weight"): lambda v: v is None or (_num(v) and 0 <= v <= 1e12),
    ("record", "style", "sha256"): lambda v: isinstance(v, str) and re.fullmatch(r"([0-9a-f]{64})?", v) is not None,
    ("record", "training", "steps"): lambda v: v is None or _int(v, 0, 10**12),
    ("record", "metrics", "ssim"): lambda v: _num(v) and -1e12 <= v <= 1e12,
    ("record", "parameters"): lambda v: _int(v, 0, 10**12),
    ("record", "dtype"): lambda v: isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,39}", v) is not None,
    ("style_zoo", "version"): lambda v: _int(v, 1, 10**9),
    ("style_zoo", "format"): lambda v: v == 1 and not isinstance(v, bool),
}
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
           | st.sampled_from([0, -1, 100000, 1e308, 10**30, -0.0, 4.0000001, 33, 65, "abc", "", "5", "0.5"]))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=6)
nested = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                      max_leaves=6).filter(lambda v: isinstance(v, (list, dict)))
field_names = st.from_regex(re.compile(r"[A-Za-z0-9_.-]{1,20}"), fullmatch=True)


@SETTINGS
@given(st.sampled_from(sorted(TYPED)), json_values)
def test_generated_out_of_range_fields_are_refused(zoo_dir, good, path, value):
    if TYPED[path](value):
        return  # a value the schema accepts (its own tests are the hand-picked ones above)
    refused(zoo_dir, good, with_value(doc_of(good), path, value))


@SETTINGS
@given(st.sampled_from([("record", k) for k in ("version", "file", "sha256", "bytes", "created", "card", "sample", "origin",
                                                "source")] + [("record", "training", "checkpoint"), ("record", "training", "run_dir")]),
       st.sampled_from(HOSTILE_PATHS) | st.text(max_size=30) | json_values)
def test_generated_path_fields_are_refused(zoo_dir, good, path, value):
    line = refused(zoo_dir, good, with_value(doc_of(good), path, value))
    assert "is not accepted" in line


@SETTINGS
@given(st.sampled_from([("record",), ("style_zoo",)]), st.text(min_size=1, max_size=20), json_values)
def test_generated_unknown_fields_are_refused(zoo_dir, good, where, key, value):
    doc = doc_of(good)
    node = doc
    for k in where:
        node = node[k]
    known = {("record",): {"config", "style", "training", "metrics", "dtype", "parameters", "license"},
             ("style_zoo",): {"format", "library", "name", "version", "sha256", "bytes", "file"}}[where]
    if key in known:
        return
    node[key] = value
    refused(zoo_dir, good, doc)


@SETTINGS
@given(st.sampled_from([("record", "config"), ("record", "style"), ("record", "training"), ("record", "training", "init"),
                        ("record", "metrics", "speed")]),
       field_names, nested)
def test_generated_nested_junk_is_refused(zoo_dir, good, section, key, value):
    doc = doc_of(good)
    node = doc
    for k in section:
        node = node.setdefault(k, {})
    known = {"config": {"family", "content_layers", "style_layers", "style_weight"}, "training": {"final_loss", "init"},
             "init": {"styles"}}.get(section[-1], set())
    if key in known or section[-1] == "init":
        node[key] = {"a": {"b": {"c": value}}}  # deeper than the one level a warm start's record may nest
    else:
        node[key] = value
    refused(zoo_dir, good, doc)


@SETTINGS
@given(st.sampled_from([(), ("record",), ("record", "config"), ("record", "style"), ("record", "training"),
                        ("record", "metrics"), ("style_zoo",)]),
       json_values.filter(lambda v: not isinstance(v, dict)))
def test_generated_sections_of_the_wrong_type_are_refused(zoo_dir, good, section, value):
    refused(zoo_dir, good, with_value(doc_of(good), section, value) if section else value)


control = st.text(min_size=1, max_size=10).map(lambda t: t + "\n") | st.sampled_from(["\x00", "a\rb", "\x1b[31mred", "\t"])


@SETTINGS
@given(st.sampled_from([("record", "style", "title"), ("record", "style", "artist"), ("record", "style", "name"),
                        ("record", "training", "hardware"), ("record", "license"), ("record", "config", "data")]),
       control | st.text(min_size=2001, max_size=2100))
def test_generated_text_fields_with_control_characters_or_too_long_are_refused(zoo_dir, good, path, value):
    refused(zoo_dir, good, with_value(doc_of(good), path, value))


@SETTINGS
@given(st.binary(max_size=200) | st.integers(0, 2000).map(lambda n: None))
def test_generated_config_bytes_are_refused(zoo_dir, good, data):
    if data is None:  # a truncated good config.json
        data = good["config.json"][: len(good["config.json"]) // 2]
    refused(zoo_dir, good, data)


# ------------------------------------------------------------------------------------------------
# an index written before paths were derived: reading it stays inside the zoo
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def poisoned(tmp_path, good) -> Path:
    """A zoo whose index (as an older zoo wrote it after a hostile pull) names foreign card and sample paths."""
    z = tmp_path / "zoo"
    Zoo(z).add("evil", good["model.safetensors"], json.loads(good["config.json"])["record"])
    index = json.loads((z / "index.json").read_text())
    index["models"]["evil"]["versions"][0].update(card="index.json", sample="../../../../etc/passwd")
    index["models"]["evil"]["versions"].append({**index["models"]["evil"]["versions"][0], "version": 2,
                                                "card": "/etc/passwd", "sample": "index.json"})
    (z / "index.json").write_text(json.dumps(index))
    return z


def test_zoo_show_of_a_poisoned_entry_is_one_line(poisoned):
    for ref in ("evil@1", "evil@2"):
        res = cli("show", ref, "--zoo", poisoned)
        lines = err_lines(res)
        assert res.exit_code == 1 and len(lines) == 1 and "refusing it" in lines[0], lines
        assert '"models"' not in res.output and "root:" not in res.output


def test_the_server_never_serves_a_poisoned_sample(poisoned, monkeypatch):
    from fastapi.testclient import TestClient

    from zoo.serve.app import create_app

    monkeypatch.setenv("STYLE_ZOO_HOME", str(poisoned))
    with TestClient(create_app()) as c:
        for ref in ("evil@1", "evil@2"):
            r = c.get(f"/api/models/{ref}/sample")
            assert r.status_code == 404 and b'"models"' not in r.content, (r.status_code, r.content[:200])
        rows = {m["ref"]: m for m in c.get("/api/models").json()}
        assert rows["evil@2"]["sample"] is None


def test_a_poisoned_entry_still_pushes_without_its_paths(poisoned, tmp_path):
    push("evil@2", f"file://{tmp_path}/out", zoo=str(poisoned))
    conf = json.loads((tmp_path / "out" / "config.json").read_text())
    assert not {"card", "sample", "file"} & set(conf["record"]) and not (tmp_path / "out" / "sample.jpg").exists()


@pytest.mark.parametrize("rel", ["index.json", ".index.lock", "/etc/passwd", "../x", "models/../index.json", "models",
                                 "cards/.x.md.0123.tmp", "runs/x.safetensors", ""])
def test_safe_rel_names_only_files_of_the_zoo(rel):
    with pytest.raises(IntegrityError):
        safe_rel(rel)


def test_zoo_add_derives_paths_whatever_the_record_says(tmp_path, good):
    rec = {**json.loads(good["config.json"])["record"], "card": "index.json", "sample": "/etc/passwd", "file": "../x",
           "version": 99, "sha256": "0" * 64}
    info = Zoo(tmp_path).add("m", good["model.safetensors"], rec).info
    assert info["card"] is None and info["sample"] is None and info["version"] == 1
    assert info["file"] == f"models/m/{info['sha256'][:12]}.safetensors" and info["sha256"] != "0" * 64


def test_an_index_naming_another_weights_file_is_refused(tmp_path, good):
    z = Zoo(tmp_path)
    z.add("m", good["model.safetensors"], json.loads(good["config.json"])["record"])
    index = json.loads((tmp_path / "index.json").read_text())
    index["models"]["m"]["versions"][0]["file"] = "models/other/x.safetensors"
    (tmp_path / "index.json").write_text(json.dumps(index))
    with pytest.raises(IntegrityError, match="the index names models/other"):
        z.find("m").read_weights()


def test_push_refuses_what_no_zoo_would_pull(tmp_path, good):
    rec = json.loads(good["config.json"])["record"]
    Zoo(tmp_path / "z").add("m", good["model.safetensors"], {**rec, "config": {**rec["config"], "seed": [1, 2]}})
    with pytest.raises(ZooError, match=r"m@1 cannot be pushed: record.config.seed"):
        push("m@1", f"file://{tmp_path}/out", zoo=str(tmp_path / "z"))
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------
# same weights, same bytes
# ------------------------------------------------------------------------------------------------
def test_weights_bytes_are_deterministic():
    """safetensors writes its metadata map in a random order, within one process too: 20 tries see both."""
    import torch

    from lit_modules.transformer_net import TransformerNet
    from zoo.sharing.publish import weights_bytes

    torch.manual_seed(0)
    net = TransformerNet(0.25)
    outs = {hashlib.sha256(weights_bytes(net.state_dict(), net.config(), "fp16")[0]).hexdigest() for _ in range(20)}
    assert len(outs) == 1


def test_publishing_one_checkpoint_twice_gives_one_file(tmp_path):
    from zoo.sharing.publish import publish

    run = make_run(tmp_path / "run")
    a = publish(run, "m", zoo=str(tmp_path / "z1"))
    b = publish(run, "m", zoo=str(tmp_path / "z1"))
    c = publish(run, "m", zoo=str(tmp_path / "z2"))
    assert a["sha256"] == b["sha256"] == c["sha256"] and a["file"] == b["file"]
    assert len(list((tmp_path / "z1" / "models" / "m").glob("*.safetensors"))) == 1
    assert (tmp_path / "z1" / a["file"]).read_bytes() == (tmp_path / "z2" / c["file"]).read_bytes()


def test_canonical_layout_does_not_depend_on_the_writer_order():
    """Two files with the same tensors and metadata written in different orders: one canonical form
    that safetensors reads back as the same tensors."""
    import struct

    import torch
    from safetensors.torch import load as st_load

    from zoo.registry.store import canonical_safetensors

    a = struct.pack("<3f", 1, 2, 3)
    b = struct.pack("<2e", 0.5, -1.0)

    def file(order: list[str], meta: list[tuple[str, str]]) -> bytes:
        tensors = {"a": ("F32", [3], a), "b": ("F16", [2], b)}
        header, body = {"__metadata__": dict(meta)}, b""
        for k in order:
            dtype, shape, data = tensors[k]
            header[k] = {"shape": shape, "data_offsets": [len(body), len(body) + len(data)], "dtype": dtype}
            body += data
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        return len(text).to_bytes(8, "little") + text + body

    one = file(["a", "b"], [("format", "pt"), ("style_zoo", "{}")])
    two = file(["b", "a"], [("style_zoo", "{}"), ("format", "pt")])
    assert one != two
    assert canonical_safetensors(one) == canonical_safetensors(two)
    got = st_load(canonical_safetensors(two))
    assert torch.equal(got["a"], torch.tensor([1.0, 2.0, 3.0])) and torch.equal(got["b"], torch.tensor([0.5, -1.0], dtype=torch.float16))


def poisoned_weights(good: dict, value: float) -> bytes:
    """The good folder's weights with one value of one tensor set to ``value`` (same header layout)."""
    from safetensors.torch import load, save

    state = load(good["model.safetensors"])
    key = sorted(state)[0]
    state[key] = state[key].clone()
    state[key].view(-1)[0] = value
    return save(state)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_weights_holding_nan_or_inf_are_refused_at_pull(zoo_dir, good, value):
    """A stranger's file whose sha256 matches but whose network would paint every pixel NaN (saved as
    black): refused in one line when it is pulled, the zoo untouched."""
    data = poisoned_weights(good, value)
    doc = with_value(with_value(doc_of(good), ("style_zoo", "sha256"), hashlib.sha256(data).hexdigest()),
                     ("style_zoo", "bytes"), len(data))  # a consistent sender
    url = remote({**good, "model.safetensors": data, "config.json": json.dumps(doc).encode()})
    before = tree_hash(zoo_dir)
    res = cli("pull", url, "--name", "nan", "--zoo", zoo_dir)
    lines = err_lines(res)
    assert res.exit_code == 1 and len(lines) == 1 and "NaN or infinite" in lines[0], res.output
    assert tree_hash(zoo_dir) == before


def test_a_zoo_file_holding_nan_is_refused_at_load(tmp_path, good):
    """The same file put in a zoo by hand (index, sha256 and all): `zoo apply` says so in one line."""
    from zoo.registry.store import Zoo

    z = Zoo(tmp_path / "z")
    z.add("nan", poisoned_weights(good, float("nan")), doc_of(good)["record"])
    res = cli("apply", "nan", str(PHOTOS / "tubingen.jpg"), "-o", tmp_path / "out.jpg", "--zoo", tmp_path / "z", "-q")
    lines = err_lines(res)
    assert res.exit_code == 1 and len(lines) == 1 and "NaN or infinite" in lines[0], res.output
    assert not (tmp_path / "out.jpg").exists()


@pytest.mark.parametrize("value, dtype, words", [(float("nan"), "fp16", "diverged"), (1e6, "fp16", "--dtype fp32"),
                                                 (1e6, "fp32", None)])
def test_publish_refuses_weights_no_zoo_would_load(tmp_path, value, dtype, words):
    """A diverged run (NaN) or a weight fp16 cannot hold (1e6 -> inf): one line that says which and
    what to do, and nothing in the zoo; the same large weight in fp32 publishes."""
    run = make_run(tmp_path / "run")
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    key = sorted(k for k in ckpt["state_dict"] if k.endswith("weight"))[0]
    ckpt["state_dict"][key].view(-1)[0] = value
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    res = cli("publish", run, "--name", "m", "--zoo", tmp_path / "z", "--dtype", dtype, "--no-sample")
    if words is None:
        assert res.exit_code == 0, res.output
        return
    lines = err_lines(res)
    assert res.exit_code == 1 and len(lines) == 1 and words in lines[0] and key[4:] in lines[0], res.output
    assert not list((tmp_path / "z").rglob("*.safetensors"))
