"""zoo serve's API with FastAPI's TestClient (and a real uvicorn for concurrency and `zoo serve` itself)."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from conftest import PHOTOS, ROOT
from serve_helpers import running_server

fastapi = pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from zoo.serve import app as serve_app  # noqa: E402


def jpeg(size=(96, 72), photo="tubingen.jpg") -> bytes:
    img = Image.open(PHOTOS / photo).convert("RGB").resize(size)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    return buf.getvalue()


@pytest.fixture
def client(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "user-zoo"))  # empty: the built-in models only
    with TestClient(serve_app.create_app()) as c:
        yield c


def post(c, data: bytes, **form):
    form.setdefault("model", "starry")
    return c.post("/api/apply", files={"image": ("photo.jpg", data, "image/jpeg")}, data={k: str(v) for k, v in form.items()})


def as_array(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"), dtype=np.float32) / 255


def test_page_and_models(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="photo"' in page.text and "/api/apply" in page.text
    models = client.get("/api/models").json()
    assert [m["ref"] for m in models] == ["composition_vii@4", "scream@5", "shipwreck@5", "starry@4", "udnie@4", "wave@5"]
    assert all(m["layer"] == "built-in" and m["title"] and m["sample"] for m in models)
    sample = client.get(models[2]["sample"])
    assert sample.status_code == 200 and sample.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(sample.content)).size[0] > 100
    assert "/api/apply" in client.get("/openapi.json").json()["paths"]  # FastAPI's own OpenAPI docs


def test_apply_stylises_and_models_load_once(client):
    photo = jpeg((120, 90))
    r = post(client, photo, size=64)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-model"] == "starry@4" and r.headers["x-size"] == "64x48"
    out = as_array(r.content)
    assert out.shape == (48, 64, 3)
    small = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB").resize((64, 48), Image.Resampling.LANCZOS), np.float32) / 255
    assert np.abs(out - small).mean() > 0.05  # it changed the photo
    keep = as_array(post(client, photo, size=64, strength=0.0).content)
    assert np.abs(keep - small).mean() < 0.02  # strength 0 is the photo
    pc = as_array(post(client, photo, size=64, preserve_color="true").content)
    assert np.abs(pc - out).mean() > 0.01
    png = post(client, photo, model="wave@1", format="png")
    assert png.headers["content-type"] == "image/png" and Image.open(io.BytesIO(png.content)).size == (120, 90)  # never upscaled
    assert client.app.state.cache.loads == 2  # starry once (four requests), wave once


@pytest.mark.parametrize("case, status, words", [
    ("text", 415, "not an image"),
    ("empty", 400, "empty"),
    ("unknown", 404, "no model 'nosuch'"),
    ("path", 404, "invalid model name"),
    ("version", 404, "starry has no version 9"),
    ("blend", 400, "cannot blend"),
    ("strength", 422, "strength"),
    ("size", 422, "size"),
    ("scale", 422, "scale must be auto or a number"),
    ("pixels", 413, "too large"),
])
def test_bad_requests_get_a_clear_4xx(client, monkeypatch, case, status, words):
    photo = jpeg()
    if case == "text":
        r = client.post("/api/apply", files={"image": ("notes.txt", b"just text\n", "text/plain")}, data={"model": "starry"})
    elif case == "empty":
        r = post(client, b"")
    elif case == "unknown":
        r = post(client, photo, model="nosuch")
    elif case == "path":
        r = post(client, photo, model="../../etc/passwd")
    elif case == "version":
        r = post(client, photo, model="starry@9")
    elif case == "blend":
        r = post(client, photo, model="starry@1:0.5+wave@1:0.5")  # separate networks: not a family
    elif case == "strength":
        r = post(client, photo, strength=1.5)
    elif case == "size":
        r = post(client, photo, size=100000)
    elif case == "scale":
        r = post(client, photo, scale="big")
    else:
        monkeypatch.setattr(serve_app, "MAX_PIXELS", 5000)  # a 96x72 photo is over it
        r = post(client, photo)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail and words in detail, detail


def test_upload_over_the_byte_limit_is_413(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "z"))
    with TestClient(serve_app.create_app(max_upload_bytes=10_000)) as c:
        r = post(c, jpeg((400, 300)))
        assert r.status_code == 413 and "too large" in r.json()["detail"]
        # A chunked upload (no Content-Length) is cut off once it passes the limit.
        boundary = "zooboundary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nstarry\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n").encode()

        def chunks():
            yield head
            for _ in range(100):
                yield b"\xff" * 4096
            yield f"\r\n--{boundary}--\r\n".encode()

        r = c.post("/api/apply", content=chunks(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 413 and "too large" in r.json()["detail"], r.text


def test_sample_route_reaches_only_indexed_files(client):
    for url in ("/api/models/..%2F..%2Fetc%2Fpasswd/sample", "/api/models/starry@1%2F..%2F..%2Findex.json/sample",
                "/api/models/STARRY/sample", "/api/models/nosuch/sample"):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "root:" not in r.text


def test_two_requests_at_once_both_succeed(tmp_path, monkeypatch):
    import httpx

    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "z"))
    app = serve_app.create_app()
    results = {}
    with running_server(app) as url:
        def go(i, model):
            with httpx.Client(timeout=120) as h:
                results[i] = h.post(f"{url}/api/apply", files={"image": ("p.jpg", jpeg((160, 120)), "image/jpeg")},
                                    data={"model": model, "size": "160"})

        threads = [threading.Thread(target=go, args=(i, m)) for i, m in enumerate(["udnie", "udnie"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert sorted(results) == [0, 1]
    assert all(r.status_code == 200 and as_array(r.content).shape == (120, 160, 3) for r in results.values())
    assert np.array_equal(as_array(results[0].content), as_array(results[1].content))
    assert app.state.cache.loads == 1


def test_server_imports_no_lightning():
    code = ("import sys, io\n"
            "from fastapi.testclient import TestClient\n"
            "from zoo.serve.app import create_app\n"
            "from PIL import Image\n"
            "buf = io.BytesIO(); Image.new('RGB', (32, 24), 'gray').save(buf, 'PNG')\n"
            "r = TestClient(create_app()).post('/api/apply', files={'image': ('a.png', buf.getvalue())}, data={'model': 'starry'})\n"
            "assert r.status_code == 200, r.text\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'torchvision'))\n"
            "print(bad)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_zoo_serve_binds_loopback_by_default(tmp_path):
    import httpx
    import psutil

    port = _free_port()
    env = {**os.environ, "STYLE_ZOO_HOME": str(tmp_path / "z")}
    proc = subprocess.Popen([sys.executable, "-m", "zoo.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, ok = time.monotonic() + 60, False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/api/models", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                time.sleep(0.25)
        assert ok, "zoo serve did not answer on 127.0.0.1"
        listening = {c.laddr.ip for c in psutil.Process(proc.pid).net_connections() if c.status == psutil.CONN_LISTEN}
        assert listening == {"127.0.0.1"}
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert "serving the zoo on http://127.0.0.1:" in proc.stdout.read()


def test_gatys_run_streams_progress_then_result(client):
    styles = [s["name"] for s in client.get("/api/styles").json()]
    assert "starry" in styles
    r = client.post("/api/gatys", files={"image": ("p.jpg", jpeg((64, 48)))}, data={"style": "nosuch"})
    assert r.status_code == 404 and "no named style" in r.json()["detail"]
    r = client.post("/api/gatys", files={"image": ("n.txt", b"text")}, data={"style": "starry"})
    assert r.status_code == 415
    r = client.post("/api/gatys", files={"image": ("p.jpg", jpeg((64, 48)))}, data={"style": "starry", "size": "64", "steps": "3"})
    assert r.status_code == 200, r.text
    busy = client.post("/api/gatys", files={"image": ("p.jpg", jpeg((64, 48)))}, data={"style": "starry", "size": "64", "steps": "3"})
    assert busy.status_code == 429  # one run at a time
    events = []
    with client.stream("GET", r.json()["events"]) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    kinds = [e["event"] for e in events if e["event"] != "tick"]
    assert kinds[0] == "start" and "stage" in kinds and kinds[-1] == "done", events
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, steps[0]["steps"] + 1)) and steps[-1]["loss"] > 0  # every iteration
    assert any(e["event"] == "tick" and e["elapsed"] >= 1 for e in events)  # live elapsed time while it runs
    img = client.get(events[-1]["result"])
    assert img.status_code == 200 and Image.open(io.BytesIO(img.content)).size == (64, 48)
    assert client.get("/api/gatys/" + "0" * 32 + "/result").status_code == 404
    assert client.get("/api/gatys/../../etc/result").status_code == 404


def test_server_and_cli_resolve_a_blend_the_same_way(client):
    """An unversioned blend whose latest versions come from different networks (wave@5 was retrained
    alone) falls back to the family both share, on the page as in `zoo apply`."""
    from zoo.inference.loader import load

    r = post(client, jpeg(), model="starry+wave", size=96)
    assert r.status_code == 200, r.text
    assert r.headers["x-model"] == load("starry+wave", precision="fp32").ref == "starry@3:0.5+wave@3:0.5"


def test_apply_takes_the_stroke_scale(client):
    """``scale``: auto paints a 1024 px result like its 512 px preview; 1 is the network as trained."""
    photo = jpeg((1024, 768))
    auto, one = (as_array(post(client, photo, size=1024, scale=s).content) for s in ("auto", "1"))
    assert auto.shape == one.shape == (768, 1024, 3)
    preview = as_array(post(client, photo, size=512, scale="1").content)
    shrink = lambda a: np.asarray(Image.fromarray((a * 255).round().astype(np.uint8)).resize((512, 384), Image.Resampling.LANCZOS), np.float32) / 255
    assert np.abs(shrink(auto) - preview).mean() < 0.5 * np.abs(shrink(one) - preview).mean()
