"""zoo push / zoo pull: the Hub-shaped folder through file:// and memory://, huggingface_hub's real
offline pull path against a cache laid out as the Hub's, and push through a fake HfApi."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from conftest import PHOTOS
from zoo.registry import cards
from zoo.inference.loader import load
from zoo.registry.errors import HubError
from zoo.registry.refs import parse_target
from zoo.sharing.hub import pull, push
from zoo.media.images import load_image
from zoo_helpers import cli, err_lines

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def user_zoo(tmp_path, monkeypatch) -> Path:
    z = tmp_path / "zoo"
    monkeypatch.setenv("STYLE_ZOO_HOME", str(z))
    return z


@pytest.fixture(scope="module")
def pushed(tmp_path_factory) -> Path:
    """The built-in starry@1 pushed once to a file:// folder (shared, read-only by the tests)."""
    repo = tmp_path_factory.mktemp("repo") / "starry"
    push("starry@1", f"file://{repo}", zoo=str(tmp_path_factory.mktemp("empty")))
    return repo


def copy_repo(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def index_of(zoo: Path) -> dict | None:
    p = zoo / "index.json"
    return json.loads(p.read_text()) if p.exists() else None


def test_push_writes_a_hub_shaped_folder_with_a_real_model_card(pushed):
    from huggingface_hub import ModelCard

    files = sorted(p.name for p in pushed.iterdir() if p.is_file())
    assert files == ["README.md", "config.json", "model.safetensors", "sample.jpg"]
    assert sorted(p.name for p in (pushed / "tags" / "v1").iterdir()) == files  # the version is tag v1
    conf = json.loads((pushed / "config.json").read_text())
    weights = (pushed / "model.safetensors").read_bytes()
    assert conf["style_zoo"]["sha256"] == hashlib.sha256(weights).hexdigest()
    assert conf["style_zoo"]["name"] == "starry" and conf["style_zoo"]["version"] == 1
    assert conf["record"]["config"]["width"] == 0.5 and "file" not in conf["record"]  # everything apply needs, no zoo paths
    assert "/work/" not in (pushed / "config.json").read_text()  # nor the publisher's local paths

    card = ModelCard.load(pushed / "README.md")  # huggingface_hub's own parser
    d = card.data.to_dict()
    assert d["library_name"] == "style-zoo" and d["pipeline_tag"] == "image-to-image"
    assert "style-transfer" in d["tags"] and d["license"] and d["datasets"] == ["photos-1k"]
    assert d["base_painting"]["title"] == "The Starry Night"
    assert d["base_painting"]["license"].lower().startswith("public domain")
    assert "# starry@1: The Starry Night" in card.text and "![sample" in card.text and "## Metrics" in card.text
    assert card.text.count("\n---\n") == 0  # our card follows without a second front matter block


def test_pull_round_trip_adds_next_version_with_origin(pushed, user_zoo):
    r = pull(f"file://{pushed}@v1", name="mine")
    assert r["ref"] == "mine@1"
    r2 = pull(f"file://{pushed}", name="mine")
    assert r2["ref"] == "mine@2"
    info = index_of(user_zoo)["models"]["mine"]["versions"][0]
    assert info["origin"] == {"source": f"file://{pushed}@v1", "revision": "v1", "ref": "starry@1", "sha256": info["sha256"]}
    assert info["config"]["width"] == 0.5 and info["style"]["name"] == "starry"
    fm = cards.parse((user_zoo / info["card"]).read_text())
    assert fm["origin"]["source"] == f"file://{pushed}@v1" and fm["ref"] == "mine@1"
    assert (user_zoo / info["sample"]).read_bytes()[:2] == b"\xff\xd8"
    # The pulled model computes exactly what the original does.
    x = load_image(PHOTOS / "tubingen.jpg", 48)
    ours = load("mine@1", None, "cpu", "fp32").net
    theirs = load("starry@1", str(user_zoo.parent / "no-zoo"), "cpu", "fp32").net
    with torch.inference_mode():
        assert torch.equal(ours(x), theirs(x))


def test_pull_default_name_is_the_pushed_one_and_cli_reports(pushed, user_zoo):
    res = cli("pull", f"file://{pushed}")
    assert res.exit_code == 0, res.output
    assert "as starry@1" in res.output
    assert list(index_of(user_zoo)["models"]) == ["starry"]


def _break(repo: Path, how: str) -> None:
    if how == "not-a-model":
        (repo / "config.json").unlink()
    elif how == "not-ours":
        (repo / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    elif how == "missing-weights":
        (repo / "model.safetensors").unlink()
    elif how == "tampered":
        data = bytearray((repo / "model.safetensors").read_bytes())
        data[-100] ^= 0xFF
        (repo / "model.safetensors").write_bytes(bytes(data))
    elif how == "pickle":
        torch.save({"w": torch.zeros(2)}, repo / "model.safetensors")
        conf = json.loads((repo / "config.json").read_text())
        conf["style_zoo"]["sha256"] = hashlib.sha256((repo / "model.safetensors").read_bytes()).hexdigest()
        (repo / "config.json").write_text(json.dumps(conf))
    elif how == "wrong-network":
        conf = json.loads((repo / "config.json").read_text())
        conf["record"]["config"]["width"] = 1.0
        (repo / "config.json").write_text(json.dumps(conf))


@pytest.mark.parametrize("how, words", [
    ("not-a-model", "is not a style-zoo model"),
    ("not-ours", "is not a style-zoo model"),
    ("missing-weights", "model.safetensors is missing"),
    ("tampered", "sha256 mismatch"),
    ("pickle", "only safetensors"),
    ("wrong-network", "do not fit"),
])
def test_bad_repo_gives_one_line_and_leaves_the_zoo_untouched(pushed, user_zoo, tmp_path, how, words):
    pull(f"file://{pushed}", name="before")  # the zoo has content that must survive unchanged
    before = index_of(user_zoo)
    files_before = sorted(p.relative_to(user_zoo) for p in user_zoo.rglob("*") if p.is_file())
    repo = copy_repo(pushed, tmp_path / "bad")
    _break(repo, how)
    res = cli("pull", f"file://{repo}", "--name", "after")
    assert res.exit_code == 1
    lines = err_lines(res)
    assert len(lines) == 1 and words in lines[0], lines
    assert index_of(user_zoo) == before
    assert sorted(p.relative_to(user_zoo) for p in user_zoo.rglob("*") if p.is_file()) == files_before


def test_memory_url_round_trip_and_tag_conflict(user_zoo):
    import uuid

    url = f"memory://hubtest-{uuid.uuid4().hex}/wave"  # the memory filesystem lives as long as the process
    r = push("wave@1", url)  # the built-in wave@1 (the repo's tag follows the version)
    assert r["tag"] == "v1"
    with pytest.raises(HubError, match="already has tag v1"):
        push("wave@1", url)
    assert pull(f"{url}@v1")["ref"] == "wave@1"
    with pytest.raises(HubError, match="no tag v9"):
        pull(f"{url}@v9")


@pytest.mark.parametrize("text, ok", [("hf:alice/starry", True), ("hf:alice/starry@v2", True), ("hf:alice", False),
                                      ("hf:../x/y", False), ("hf:a/b/c", False), ("file:///tmp/a@v1", True), ("", False)])
def test_parse_target(text, ok):
    if ok:
        parse_target(text)
    else:
        with pytest.raises(HubError):
            parse_target(text)


# ------------------------------------------------------------------------------------------------
# the real huggingface_hub pull path, offline, against a cache laid out as the Hub's
# ------------------------------------------------------------------------------------------------
def hub_cache(cache: Path, repo_id: str, folder: Path, refs=("main", "v1"), commit: str = COMMIT) -> Path:
    """models--OWNER--REPO/{blobs/<hash>, refs/<ref> -> commit, snapshots/<commit>/<file> -> ../../blobs/<hash>}."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    snap = root / "snapshots" / commit
    snap.mkdir(parents=True)
    (root / "blobs").mkdir(exist_ok=True)
    for f in folder.iterdir():
        if f.is_file():
            data = f.read_bytes()
            blob = root / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            (snap / f.name).symlink_to(Path("..", "..", "blobs", blob.name))
    (root / "refs").mkdir(exist_ok=True)
    for ref in refs:
        (root / "refs" / ref).write_text(commit)
    return root


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_hf_pull_offline_from_hub_cache(pushed, offline_cache, user_zoo):
    hub_cache(offline_cache, "alice/starry", pushed)
    r = pull("hf:alice/starry@v1")
    assert r["ref"] == "starry@1" and r["commit"] == COMMIT
    origin = index_of(user_zoo)["models"]["starry"]["versions"][0]["origin"]
    assert origin["source"] == "hf:alice/starry@v1" and origin["commit"] == COMMIT and origin["revision"] == "v1"
    assert pull("hf:alice/starry", name="again")["ref"] == "again@1"  # main


def test_hf_pull_offline_errors_are_one_line(pushed, offline_cache, user_zoo, tmp_path):
    bad = copy_repo(pushed, tmp_path / "tampered")
    _break(bad, "tampered")
    hub_cache(offline_cache, "alice/tampered", bad)
    for source, words in [("hf:alice/tampered", "sha256 mismatch"), ("hf:alice/unknown", "not in the local Hugging Face cache"),
                          ("hf:alice/tampered@v7", "not in the local Hugging Face cache")]:
        res = cli("pull", source)
        lines = err_lines(res)
        assert res.exit_code == 1 and len(lines) == 1 and words in lines[0], (source, lines)
    assert index_of(user_zoo) is None


# ------------------------------------------------------------------------------------------------
# push to the Hub through a fake HfApi that checks the folder it is given
# ------------------------------------------------------------------------------------------------
class FakeHfApi:
    def __init__(self, tags=()):
        self.calls, self.tags, self.uploaded = [], list(tags), {}

    def create_repo(self, repo_id, *, private=None, exist_ok=False, **kw):
        self.calls.append(("create_repo", repo_id, private, exist_ok))

    def list_repo_refs(self, repo_id, **kw):
        from types import SimpleNamespace

        self.calls.append(("list_repo_refs", repo_id))
        return SimpleNamespace(tags=[SimpleNamespace(name=t) for t in self.tags], branches=[])

    def upload_folder(self, *, repo_id, folder_path, commit_message=None, **kw):
        self.calls.append(("upload_folder", repo_id))
        self.uploaded = {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}  # the folder exists only now
        from types import SimpleNamespace

        return SimpleNamespace(oid=COMMIT, commit_url=f"https://example.invalid/{repo_id}/commit/{COMMIT}")

    def create_tag(self, repo_id, *, tag, revision=None, tag_message=None, **kw):
        self.calls.append(("create_tag", repo_id, tag, revision))
        self.tags.append(tag)


def test_push_to_hf_with_fake_api(user_zoo, tmp_path):
    from huggingface_hub import ModelCard

    api = FakeHfApi()
    r = push("udnie@1", "hf:alice/udnie", api=api, private=True)
    assert r["tag"] == "v1" and r["commit"] == COMMIT
    assert [c[0] for c in api.calls] == ["create_repo", "list_repo_refs", "upload_folder", "create_tag"]
    assert api.calls[0] == ("create_repo", "alice/udnie", True, True)
    assert api.calls[-1] == ("create_tag", "alice/udnie", "v1", COMMIT)
    up = api.uploaded
    assert sorted(up) == ["README.md", "config.json", "model.safetensors", "sample.jpg"]
    assert json.loads(up["config.json"])["style_zoo"]["sha256"] == hashlib.sha256(up["model.safetensors"]).hexdigest()
    (tmp_path / "README.md").write_bytes(up["README.md"])
    assert ModelCard.load(tmp_path / "README.md").data.library_name == "style-zoo"
    with pytest.raises(HubError, match="already has tag v1"):
        push("udnie@1", "hf:alice/udnie", api=FakeHfApi(tags=["v1"]))


def test_push_cli_errors_are_one_line(user_zoo, tmp_path):
    for args, words in [(("push", "nosuch", f"file://{tmp_path}/r"), "no model 'nosuch'"),
                        (("push", "starry", "hf:alice"), "expected hf:OWNER/REPO"),
                        (("push", "starry", "hf:alice/starry@v1"), "without @REV")]:
        res = cli(*args)
        lines = err_lines(res)
        assert res.exit_code == 1 and len(lines) == 1 and words in lines[0], (args, lines)
    assert not (tmp_path / "r").exists()


def test_a_family_of_styles_still_blends_after_push_and_pull(tmp_path, monkeypatch):
    """Two styles of one conditional network (shared convolutions, a `family` in their config) pushed
    and pulled separately: the pulled pair blends, in `zoo apply`'s loader and in `zoo serve`'s API."""
    from fastapi.testclient import TestClient
    from safetensors.torch import load as st_load, save as st_save

    from lit_modules.transformer_net import norm_keys
    from zoo.registry.store import BUILTIN_DIR, Zoo
    from zoo.serve.app import create_app

    base = Zoo(BUILTIN_DIR, readonly=True).find("starry")
    state = st_load(base.read_weights())
    other = {k: (v * 0.5 + 0.1 if k in norm_keys(state) else v) for k, v in state.items()}  # another style's norms
    src = Zoo(tmp_path / "src")
    for i, (name, st) in enumerate((("fa", state), ("fb", other))):
        family = {"styles": ["fa", "fb"], "index": i, "shared_sha256": "5" * 64}
        src.add(name, st_save(st), {"config": {**base.config, "family": family}, "style": base.info["style"]})
        push(name, f"file://{tmp_path}/repo-{name}", zoo=src.url)
    dest = tmp_path / "dest"
    for name in ("fa", "fb"):
        pull(f"file://{tmp_path}/repo-{name}@v1", zoo=str(dest))
    loaded = load("fa:0.5+fb:0.5", str(dest), "cpu", "fp32")
    net, blend_entry = loaded.net, loaded.source
    assert blend_entry.ref == "fa@1:0.5+fb@1:0.5"
    monkeypatch.setenv("STYLE_ZOO_HOME", str(dest))
    photo = (PHOTOS / "tubingen.jpg").read_bytes()
    with TestClient(create_app()) as c:
        out = {}
        for model in ("fa", "fb", "fa:0.5+fb:0.5"):
            r = c.post("/api/apply", files={"image": ("p.jpg", photo)}, data={"model": model, "size": "64"})
            assert r.status_code == 200, r.text
            out[model] = r
        assert out["fa:0.5+fb:0.5"].headers["x-model"] == "fa@1:0.5+fb@1:0.5"
        assert len({r.content for r in out.values()}) == 3
