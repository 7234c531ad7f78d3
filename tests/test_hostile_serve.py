"""zoo serve under hostile input and faults: photos with a side under 5 px, a full queue (503 +
Retry-After), the decoding budget, inference time apart from queueing, and `zoo serve` killed
(SIGKILL, SIGTERM) in the middle of a Gatys run: no worker survives, no upload is left behind."""
from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import PHOTOS, ROOT
from serve_helpers import running_server

fastapi = pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
import httpx  # noqa: E402
import psutil  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from zoo.serve import app as serve_app  # noqa: E402
from zoo.serve import gatys as serve_gatys  # noqa: E402
from zoo.serve.limits import Limits, PixelBudget  # noqa: E402


def encoded(size=(96, 72), fmt="JPEG", mode="RGB") -> bytes:
    img = Image.open(PHOTOS / "tubingen.jpg").convert("RGB").resize(size)
    buf = io.BytesIO()
    img.convert(mode).save(buf, format=fmt)
    return buf.getvalue()


def post(c, data: bytes, **form):
    form.setdefault("model", "starry")
    return c.post("/api/apply", files={"image": ("p.png", data, "image/png")}, data={k: str(v) for k, v in form.items()})


def one_line_json(r, status: int) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail and "Traceback" not in detail, detail
    return detail


@pytest.fixture
def zoo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLE_ZOO_HOME", str(tmp_path / "user-zoo"))  # empty: the built-in models only
    return tmp_path


@pytest.fixture
def client(zoo_home):
    with TestClient(serve_app.create_app(gatys=False)) as c:
        yield c


@pytest.mark.parametrize("size, form, shape", [
    ((1, 1), {}, "1x1 px"),
    ((4, 200), {}, "4x200 px"),
    ((20000, 16), {}, "512x1 px"),  # shrunk to the default 512 px long side: one row left
    ((3000, 20), {"size": "64"}, "64x1 px"),
])
def test_a_side_under_five_px_is_a_4xx_json_line(client, size, form, shape):
    detail = one_line_json(post(client, encoded(size, "PNG"), **form), 400)
    assert shape in detail and "at least 5 px" in detail


class Held:
    """Inference that waits for ``release`` (and counts how many ran at once)."""

    def __init__(self, monkeypatch) -> None:
        self.release, self.entered, self.lock = threading.Event(), threading.Semaphore(0), threading.Lock()
        self.running = self.peak = 0
        real = serve_app.run_network

        def held(stylizer, img):
            with self.lock:
                self.running += 1
                self.peak = max(self.peak, self.running)
            self.entered.release()
            self.release.wait(30)
            try:
                return real(stylizer, img)
            finally:
                with self.lock:
                    self.running -= 1

        monkeypatch.setattr(serve_app, "run_network", held)


def test_a_full_server_answers_503_with_retry_after(zoo_home, monkeypatch):
    held = Held(monkeypatch)
    app = serve_app.create_app(gatys=False, limits=Limits(max_pending=2))
    photo = encoded((96, 72))
    with running_server(app) as url, httpx.Client(timeout=60) as h:
        results = {}

        def go(i):
            results[i] = h.post(f"{url}/api/apply", files={"image": ("p.jpg", photo)}, data={"model": "starry", "size": "96"})

        first = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for t in first:
            t.start()
        assert held.entered.acquire(timeout=30)  # one is in inference, the other queued behind it
        deadline = time.monotonic() + 30
        while app.state.gate.pending < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        busy = h.post(f"{url}/api/apply", files={"image": ("p.jpg", photo)}, data={"model": "starry"})
        held.release.set()
        for t in first:
            t.join(60)
        after = h.post(f"{url}/api/apply", files={"image": ("p.jpg", photo)}, data={"model": "starry"})
    assert "busy" in one_line_json(busy, 503)
    assert busy.headers["retry-after"].isdigit() and int(busy.headers["retry-after"]) >= 1
    assert [results[i].status_code for i in (0, 1)] == [200, 200] and after.status_code == 200
    assert held.peak == 1  # inference never ran twice at once


def test_inference_ms_is_inference_alone_and_queueing_is_reported_apart(zoo_home, monkeypatch):
    real = serve_app.run_network

    def slow(stylizer, img):
        time.sleep(0.4)
        return real(stylizer, img)

    monkeypatch.setattr(serve_app, "run_network", slow)
    app = serve_app.create_app(gatys=False)
    photo = encoded((96, 72))
    with running_server(app) as url, httpx.Client(timeout=60) as h:
        h.post(f"{url}/api/apply", files={"image": ("p.jpg", photo)}, data={"model": "starry"})  # loads the model
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            h.post(f"{url}/api/apply", files={"image": ("p.jpg", photo)}, data={"model": "starry"}))) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert [r.status_code for r in results] == [200, 200, 200]
    infer = sorted(float(r.headers["x-inference-ms"]) for r in results)
    queue = sorted(float(r.headers["x-queue-ms"]) for r in results)
    assert all(400 <= ms < 1000 for ms in infer), infer  # each its own 0.4 s and a tiny forward, never the wait
    assert queue[-1] >= 700, queue  # the third waited for two others


def test_decoding_stays_within_its_pixel_budget(zoo_home, monkeypatch):
    """Four 2.4 MP uploads at once with a 5 MP budget: never more than two decode together."""
    lock, now, peak = threading.Lock(), [0], [0]
    real = serve_app.decode_image

    def counted(src, label, max_pixels, max_side):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        try:
            time.sleep(0.3)
            return real(src, label, max_pixels, max_side)
        finally:
            with lock:
                now[0] -= 1

    monkeypatch.setattr(serve_app, "decode_image", counted)
    app = serve_app.create_app(gatys=False, limits=Limits(decode_pixels=5_000_000, decode_workers=4))
    photo = encoded((2000, 1200), "PNG")
    with running_server(app) as url, httpx.Client(timeout=120) as h:
        results = []
        threads = [threading.Thread(target=lambda: results.append(
            h.post(f"{url}/api/apply", files={"image": ("p.png", photo)}, data={"model": "starry", "size": "64"}))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert [r.status_code for r in results] == [200] * 4
    assert peak[0] == 2


def test_pixel_budget_waits_and_never_overbooks():
    async def main():
        budget, log = PixelBudget(100), []

        async def job(name, px, hold_s):
            async with budget.hold(px):
                log.append((name, budget.used))
                await asyncio.sleep(hold_s)

        await asyncio.gather(job("a", 60, 0.05), job("b", 60, 0.01), job("c", 30, 0.01), job("huge", 10**9, 0.01))
        return log, budget.used

    log, left = asyncio.run(main())
    assert left == 0 and all(used <= 100 for _, used in log) and {n for n, _ in log} == {"a", "b", "c", "huge"}


def test_stale_job_folders_of_dead_servers_are_removed_at_start(zoo_home, tmp_path, monkeypatch):
    import tempfile

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp / f"style-zoo-gatys-{dead}-abc"
    mine = tmp / f"style-zoo-gatys-{os.getpid()}-def"
    for d in (stale, mine):
        d.mkdir()
        (d / "photo").write_bytes(b"x")
    serve_app.create_app()
    assert not stale.exists() and mine.exists()


# --- `zoo serve` killed in the middle of a Gatys run -------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _workers(pid: int) -> list[psutil.Process]:
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for k in kids:
        try:
            if "zoo.serve.gatys_worker" in " ".join(k.cmdline()):
                found.append(k)
        except psutil.Error:
            continue
    return found


def _job_folders(tmp: Path) -> list[Path]:
    return list(tmp.glob("style-zoo-gatys-*"))  # torch keeps its own cache folders here too


def _alive(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_zoo_serve_mid_gatys_leaves_no_worker_and_no_upload(tmp_path, sig):
    tmp = tmp_path / "tmp"  # the server's temporary folder: only its own job folders appear here
    tmp.mkdir()
    port = _free_port()
    env = {**os.environ, "STYLE_ZOO_HOME": str(tmp_path / "z"), "TMPDIR": str(tmp)}
    server = subprocess.Popen([sys.executable, "-m", "zoo.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                httpx.get(f"{url}/api/models", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        r = httpx.post(f"{url}/api/gatys", files={"image": ("p.jpg", encoded((64, 48)))},
                       data={"style": "starry", "size": "64", "steps": "500"}, timeout=30)
        assert r.status_code == 200, r.text
        with httpx.stream("GET", url + r.json()["events"], timeout=60) as stream:  # open while the server dies
            for line in stream.iter_lines():
                if line.startswith("data: ") and json.loads(line[6:])["event"] == "step":
                    break  # the worker is optimising
            workers = _workers(server.pid)
            assert len(workers) == 1 and len(_job_folders(tmp)) == 1
            server.send_signal(sig)
            killed = time.monotonic()
            while time.monotonic() - killed < 5 and (any(map(_alive, workers)) or _job_folders(tmp)):
                time.sleep(0.05)
        assert not any(map(_alive, workers)), "a Gatys worker outlived its server"
        assert not _job_folders(tmp), f"left behind: {_job_folders(tmp)}"
        server.wait(10)
    finally:
        for p in workers:
            if _alive(p):
                p.kill()
        if server.poll() is None:
            server.kill()
            server.wait(10)


def test_a_worker_without_its_server_stops_and_removes_its_folder(tmp_path):
    """The parent check alone (no prctl, as on a non-Linux system): an orphaned worker leaves within a second."""
    work = tmp_path / "job"
    work.mkdir()
    (work / "photo").write_bytes(encoded((64, 48)))
    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "from zoo.serve import gatys_worker as w\n"
            "w.sys.platform = 'other'\n"  # no parent-death signal: only the check of the parent
            f"w.die_with_parent(1, Path({str(work)!r}))\n"  # as if the server (pid 1 is never our parent) were gone
            "time.sleep(30)\n")
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=30)
    assert out.returncode == 128 + signal.SIGTERM and time.monotonic() - t0 < 10
    assert not work.exists()


def test_a_gatys_photo_too_thin_for_the_loss_network_is_a_4xx_before_a_job_starts(zoo_home):
    """3000x40 at 256 px is 256x3 at the coarsest scale (128 px: 2 rows): VGG's pools would empty it.
    Refused at submission in one line, not as a job that fails in its worker."""
    with TestClient(serve_app.create_app(gatys=True)) as c:
        r = c.post("/api/gatys", files={"image": ("p.png", encoded((3000, 40), "PNG"), "image/png")},
                   data={"style": "starry", "size": "256", "steps": "3"})
        detail = one_line_json(r, 400)
        assert "512x7 px" in detail and "2 px" in detail and "at least 16" in detail  # decoded at the page's 512 px
