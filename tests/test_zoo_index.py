"""The zoo index: publish, versions, cards, integrity checks, concurrency and crash safety."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import PHOTOS_1K
from zoo_helpers import cli, err_lines, make_run
from zoo.registry import cards
from zoo.registry.errors import IntegrityError, InvalidName
from zoo.registry.store import Zoo, ZooStack

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("run") / "run1")


@pytest.fixture
def zoo_env(tmp_path, monkeypatch):
    z = tmp_path / "zoo"
    monkeypatch.setenv("STYLE_ZOO_HOME", str(z))
    monkeypatch.setattr("zoo.registry.store.BUILTIN_DIR", tmp_path / "no-builtin")
    return z


def test_publish_versions_list_show_card(run_dir, zoo_env, tmp_path):
    card_dir = tmp_path / "model_cards"
    r1 = cli("publish", run_dir, "--name", "starry", "--card-dir", card_dir, "--sample", PHOTOS_1K / "train" / "kodak_kodim23.jpg")
    assert r1.exit_code == 0, r1.output
    assert "starry@1" in r1.output
    r2 = cli("publish", run_dir / "checkpoints" / "last.ckpt", "--name", "starry", "--dtype", "fp32", "--no-sample")
    assert r2.exit_code == 0 and "starry@2" in r2.output, r2.output

    index = json.loads((zoo_env / "index.json").read_text())
    vs = index["models"]["starry"]["versions"]
    assert [v["version"] for v in vs] == [1, 2]
    assert vs[0]["sha256"] != vs[1]["sha256"]  # fp16 vs fp32 files
    for v in vs:
        assert (zoo_env / v["file"]).is_file() and v["file"].endswith(f"{v['sha256'][:12]}.safetensors")
        assert (zoo_env / f"models/starry/v{v['version']}.json").is_file()
        assert v["style"]["title"] == "The Starry Night" and v["config"]["width"] == 0.25

    # The card: YAML front matter with the required fields, a sample image beside it.
    fm = cards.parse((zoo_env / "cards" / "starry@1.md").read_text())
    for key in ("name", "version", "license", "painting", "training_data", "loss_network", "layers", "loss_weights",
                "image_size", "steps", "hardware", "wall_time_s", "metrics", "speed", "sample"):
        assert key in fm, key
    assert fm["painting"]["license"].startswith("Public domain")
    assert any("BSDS500" in lic for lic in fm["training_data"]["licenses"])
    assert fm["loss_network"]["normalisation"].startswith("original Caffe")
    assert (zoo_env / "cards" / "starry@1.jpg").stat().st_size > 1000
    assert (card_dir / "starry.md").is_file() and (card_dir / "starry.jpg").is_file()
    assert cards.parse((card_dir / "starry.md").read_text())["sample"] == "starry.jpg"

    lst = cli("list")
    assert lst.exit_code == 0 and "starry@2" in lst.output and "starry@1" not in lst.output
    lst = cli("list", "--all-versions")
    assert "starry@1" in lst.output and "starry@2" in lst.output
    assert "no models" in cli("list", "nothing*").output
    shown = cli("show", "starry@1")
    assert shown.exit_code == 0 and shown.output.startswith("---\nname: starry\nversion: 1")


def test_dry_run_writes_nothing(run_dir, zoo_env):
    r = cli("publish", run_dir, "--name", "dry", "--dry-run")
    assert r.exit_code == 0 and "would publish dry@1" in r.output
    assert not zoo_env.exists() or not (zoo_env / "index.json").exists()


@pytest.mark.parametrize("name", ["../evil", "/abs/path", "a/b", "Upper", "..", "", "x" * 65])
def test_name_traversal_refused(run_dir, zoo_env, name):
    r = cli("publish", run_dir, "--name", name, "--no-sample")
    assert r.exit_code == 1
    assert len(err_lines(r)) == 1 and "invalid model name" in r.output
    assert not (zoo_env / "index.json").exists()


def test_index_naming_a_file_outside_is_refused(tmp_path):
    z = tmp_path / "zoo"
    z.mkdir()
    (z / "index.json").write_text(json.dumps({"format": 1, "models": {"evil": {"versions": [
        {"version": 1, "file": "../../outside.safetensors", "sha256": "0" * 64, "config": {}}]}}}))
    with pytest.raises(IntegrityError, match="outside the zoo"):
        Zoo(z).find("evil").read_weights()
    with pytest.raises(InvalidName):
        ZooStack(z).resolve("../evil")


def test_tampered_file_fails_sha256_with_one_line(run_dir, zoo_env, tmp_path):
    assert cli("publish", run_dir, "--name", "starry", "--no-sample").exit_code == 0
    f = next((zoo_env / "models" / "starry").glob("*.safetensors"))
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    photo = ROOT / ".." / "shared" / "assets" / "photos-1k" / "val"
    photo = sorted(photo.iterdir())[0]
    r = cli("apply", "starry", photo, "-o", tmp_path / "out.jpg")
    assert r.exit_code == 1
    lines = err_lines(r)
    assert len(lines) == 1 and "sha256 mismatch" in lines[0], lines
    assert not (tmp_path / "out.jpg").exists()


def test_pickle_renamed_safetensors_is_refused(run_dir, zoo_env, tmp_path):
    """Even with a matching sha256 in the index, a torch.save pickle is never unpickled."""
    import hashlib

    from zoo.inference.loader import load

    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    pkl = tmp_path / "evil.pt"
    torch.save(state, pkl)
    data = pkl.read_bytes()
    with pytest.raises(IntegrityError, match="only safetensors"):
        Zoo(zoo_env).add("evil", data, {"config": {"width": 0.25}})
    sha = hashlib.sha256(data).hexdigest()
    rel = f"models/evil/{sha[:12]}.safetensors"
    (zoo_env / "models" / "evil").mkdir(parents=True)
    (zoo_env / rel).write_bytes(data)
    (zoo_env / "index.json").write_text(json.dumps({"format": 1, "models": {"evil": {"versions": [
        {"version": 1, "file": rel, "sha256": sha, "config": {"width": 0.25}}]}}}))
    with pytest.raises(IntegrityError, match="pickle"):
        load("evil")
    r = cli("apply", "evil", tmp_path / "evil.pt", "-o", tmp_path / "o.jpg")
    assert r.exit_code == 1 and len(err_lines(r)) == 1


def test_unknown_names_and_versions_list_close_matches(run_dir, zoo_env):
    assert cli("publish", run_dir, "--name", "starry", "--no-sample").exit_code == 0
    r = cli("show", "stary")
    assert r.exit_code == 1 and "did you mean starry" in r.output and len(err_lines(r)) == 1
    r = cli("show", "starry@7")
    assert r.exit_code == 1 and "available: starry@1" in r.output


def test_builtin_layer_is_merged_read_only_and_shadowed(run_dir, tmp_path, monkeypatch):
    from zoo.sharing.publish import publish

    builtin = tmp_path / "builtin"
    publish(run_dir, "starry", zoo=str(builtin), sample=None)
    publish(run_dir, "wave", zoo=str(builtin), sample=None)
    monkeypatch.setattr("zoo.registry.store.BUILTIN_DIR", builtin.resolve())
    user = tmp_path / "user"
    monkeypatch.setenv("STYLE_ZOO_HOME", str(user))
    out = cli("list").output
    assert "starry@1" in out and "wave@1" in out and "built-in" in out
    publish(run_dir, "wave", zoo=str(user), sample=None)
    publish(run_dir, "wave", zoo=str(user), sample=None)
    stack = ZooStack()
    assert stack.resolve("wave").zoo.root == str(user) and stack.resolve("wave").version == 2
    assert stack.resolve("starry").zoo.readonly
    rows = {(e.ref, src) for e, src in stack.entries()}
    assert ("wave@2", "user") in rows and ("starry@1", "built-in") in rows and ("wave@1", "built-in") not in rows
    with pytest.raises(Exception, match="read-only"):
        stack.resolve("starry").zoo.update("starry", 1, {"metrics": {}})


def test_eight_concurrent_publishers_get_eight_versions(run_dir, tmp_path):
    z = tmp_path / "zoo"
    cmd = [sys.executable, "-m", "zoo.cli", "publish", str(run_dir), "--name", "multi", "--zoo", str(z), "--no-sample"]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(8)]
    outs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    index = json.loads((z / "index.json").read_text())
    versions = sorted(v["version"] for v in index["models"]["multi"]["versions"])
    assert versions == list(range(1, 9))
    assert sorted(int(o.split("multi@")[1].split()[0]) for o in outs) == versions
    assert len(list((z / "models" / "multi").glob("v*.json"))) == 8
    assert not list(z.rglob("*.tmp"))


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    real_replace = os.replace
    def dying_replace(src, dst):
        if str(dst).endswith(sys.argv[3]):
            os.kill(os.getpid(), signal.SIGKILL)  # crash between writing the temp file and renaming it
        return real_replace(src, dst)
    os.replace = dying_replace
    from zoo.sharing.publish import publish
    publish(sys.argv[1], "starry", zoo=sys.argv[2], sample=None)
""")


@pytest.mark.parametrize("die_at", ["index.json", ".safetensors"])
def test_killed_publish_leaves_a_readable_index(run_dir, tmp_path, die_at):
    from zoo.sharing.publish import publish

    z = tmp_path / "zoo"
    publish(run_dir, "starry", zoo=str(z), sample=None)
    before = (z / "index.json").read_text()
    other = make_run(tmp_path / "run2", seed=1)  # different weights: a new file must be written
    p = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(other), str(z), die_at], cwd=ROOT, capture_output=True, timeout=300)
    assert p.returncode == -9, p.stderr.decode()[-500:]
    assert (z / "index.json").read_text() == before  # untouched, still valid
    assert [e.ref for e, _ in ZooStack(z, builtin=False).entries(all_versions=True)] == ["starry@1"]
    # The lock died with the process; the next publish proceeds and gets version 2.
    assert publish(other, "starry", zoo=str(z), sample=None)["ref"] == "starry@2"
    ZooStack(z, builtin=False).resolve("starry@2").read_weights()


def test_fsspec_url_zoo(run_dir):
    """Any fsspec URL works as a zoo (here the in-memory filesystem)."""
    from zoo.sharing.publish import publish

    assert publish(run_dir, "remote", zoo="memory://style-zoo-test", sample=None)["ref"] == "remote@1"
    assert publish(run_dir, "remote", zoo="memory://style-zoo-test", sample=None)["ref"] == "remote@2"
    entry = ZooStack("memory://style-zoo-test", builtin=False).resolve("remote")
    assert entry.version == 2 and entry.read_weights()[8:9] == b"{" and entry.card_text().startswith("---")


def test_saved_metrics_with_reference_reach_index_and_card(tmp_path):
    """bench/quality.py --save-cards stores our metrics beside the reference's; the card states both."""
    from zoo.evaluation.metrics import save_metrics
    from zoo.sharing.publish import publish

    z = tmp_path / "zoo"
    publish(make_run(tmp_path / "run"), "wave", zoo=str(z), sample=None)
    entry = Zoo(str(z)).find("wave")
    m = {"style_distance": 0.14, "content_distance": 0.6, "layout_ssim": 0.7, "black_max": 0.0, "images": 6, "size": 512,
         "reference": {"name": "Engstrom's network (wave)", "style_distance": 0.145, "content_distance": 0.644,
                       "layout_ssim": 0.58, "black_max": 0.00029}}
    save_metrics(entry, m, tmp_path / "model_cards")
    assert Zoo(str(z)).find("wave").info["metrics"]["reference"]["content_distance"] == 0.644
    card = (tmp_path / "model_cards" / "wave.md").read_text()
    assert "Engstrom's network (wave): style distance 0.145, content distance 0.644, layout SSIM 0.580" in card
    assert cards.parse(card)["metrics"]["reference"]["style_distance"] == 0.145


def test_publishing_an_earlier_checkpoint_states_its_own_steps_and_time(tmp_path):
    """A step*.ckpt of a finished run: its steps, images and training time, not the run's final ones."""
    from train.runs import read_run

    run = make_run(tmp_path / "run")  # summary.json: 3 steps, 1.5 s
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    ckpt.update(global_step=2, callbacks={"Throughput": {"wall_seconds": 0.75}})
    torch.save(ckpt, run / "checkpoints" / "step0000002.ckpt")
    early = read_run(run / "checkpoints" / "step0000002.ckpt")["training"]
    assert (early["steps"], early["wall_seconds"], early["images_seen"], early["hardware"]) == (2, 0.75, 4, "test CPU")
    final = read_run(run)["training"]
    assert (final["steps"], final["wall_seconds"], final["images_seen"]) == (3, 1.5, 6)
