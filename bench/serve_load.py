"""Benchmark `zoo serve` under a bounded burst, on loopback only: what every request got, the
server's memory, and whether the model list stays quick. Never run by the test suite.

    .venv/bin/python bench/serve_load.py [--photos 32] [--bombs 8] [--bursts 2]

Each burst sends at once ``--photos`` requests with a ~1 MP JPEG (result at 1024 px: ~0.8 MP of
inference each) and ``--bombs`` uploads of a ~6 KB PNG that declares 7000x7000 (49 MP, 1 bit per
pixel). Every answer must be 200, or 503 with Retry-After; a 5xx is a failure. Memory is the
server's VmRSS plus its children's, sampled every 20 ms from /proc; "idle" is after one warm-up
request (the model loaded). Meanwhile GET /api/models is timed every 100 ms.
"""
from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = (ROOT / ".." / "shared" / "assets" / "photos" / "tubingen.jpg").resolve()


def rss_bytes(pid: int) -> int:
    """VmRSS of ``pid`` and all its descendants, from /proc (0 for a process that is gone)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total


class Sampler(threading.Thread):
    """Peak RSS of the server tree while running."""

    def __init__(self, pid: int, every_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s, self.peak, self.stop = pid, every_s, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(self.every_s)


class Prober(threading.Thread):
    """GET /api/models every ``every_s``; latencies in ms (a failure counts as inf)."""

    def __init__(self, url: str, every_s: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.url, self.every_s, self.ms, self.stop = url, every_s, [], threading.Event()

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=30) as h:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = h.get(f"{self.url}/api/models").status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.ms.append((time.perf_counter() - t0) * 1000 if ok else float("inf"))
                time.sleep(self.every_s)


def photo_1mp() -> bytes:
    from PIL import Image

    img = Image.open(PHOTO).convert("RGB")
    img = img.resize((1155, round(1155 * img.height / img.width)))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def bomb_png(side: int = 7000) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (side, side), 1).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def burst(url: str, photo: bytes, bomb: bytes, n_photos: int, n_bombs: int) -> list[tuple[str, int, bool, float]]:
    """Every request at once -> (kind, status, has Retry-After, seconds)."""
    import httpx

    out: list[tuple[str, int, bool, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(n_photos + n_bombs)

    def go(kind: str, data: bytes, form: dict) -> None:
        with httpx.Client(timeout=600) as h:
            start.wait()
            t0 = time.perf_counter()
            try:
                r = h.post(f"{url}/api/apply", files={"image": ("p", data)}, data=form)
                row = (kind, r.status_code, "retry-after" in r.headers, time.perf_counter() - t0)
            except httpx.HTTPError:
                row = (kind, 0, False, time.perf_counter() - t0)
        with lock:
            out.append(row)

    threads = [threading.Thread(target=go, args=("1 MP photo", photo, {"model": "starry", "size": "1024"})) for _ in range(n_photos)]
    threads += [threading.Thread(target=go, args=("49 MP PNG", bomb, {"model": "starry"})) for _ in range(n_bombs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def start_server(tmp: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "STYLE_ZOO_HOME": str(tmp / "zoo"), "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "zoo.cli", "serve", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            httpx.get(f"{url}/api/models", timeout=2)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("zoo serve did not start")


def settle(pid: int, seconds: float = 3.0) -> int:
    time.sleep(seconds)
    return rss_bytes(pid)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=int, default=32)
    ap.add_argument("--bombs", type=int, default=8)
    ap.add_argument("--bursts", type=int, default=2)
    a = ap.parse_args()
    import httpx

    photo, bomb = photo_1mp(), bomb_png()
    mb = 1 << 20
    with tempfile.TemporaryDirectory(prefix="serve-load-") as d:
        proc, url = start_server(Path(d))
        try:
            cold = rss_bytes(proc.pid)
            httpx.post(f"{url}/api/apply", files={"image": ("p", photo)}, data={"model": "starry", "size": "1024"}, timeout=300)
            idle = settle(proc.pid)
            print(f"zoo serve on {url}: RSS {cold / mb:.0f} MB at start, {idle / mb:.0f} MB idle after one request (model loaded)")
            print(f"photo {len(photo) / 1e3:.0f} KB JPEG 1155 px; bomb {len(bomb) / 1e3:.1f} KB PNG declaring 7000x7000 px\n")
            rows = []
            for b in range(1, a.bursts + 1):
                sampler, prober = Sampler(proc.pid), Prober(url)
                sampler.start(), prober.start()
                t0 = time.perf_counter()
                got = burst(url, photo, bomb, a.photos, a.bombs)
                wall = time.perf_counter() - t0
                sampler.stop.set(), prober.stop.set()
                sampler.join(), prober.join()
                after = settle(proc.pid)
                rows.append((b, got, wall, sampler.peak, prober.ms, after))
        finally:
            proc.terminate()
            proc.wait(30)
    report(rows, idle)


def report(rows, idle: int) -> None:
    mb = 1 << 20
    print(f"{'burst':>5} | {'requests':<76} | {'5xx':>3} | {'503 w/o Retry-After':>19} | {'wall s':>6} | "
          f"{'peak RSS - idle':>15} | {'/api/models ms p50/max':>22} | {'RSS after - idle':>16}")
    print("-" * 186)
    bad = False
    for b, got, wall, peak, ms, after in rows:
        counts = Counter((kind, status) for kind, status, _, _ in got)
        what = ", ".join(f"{n}x {kind} {status}" for (kind, status), n in sorted(counts.items()))
        fivexx = sum(1 for _, s, _, _ in got if s >= 500 and s != 503 or s == 0)
        no_retry = sum(1 for _, s, retry, _ in got if s == 503 and not retry)
        fin = [m for m in ms if m != float("inf")]
        lat = f"{statistics.median(fin):.0f} / {max(ms):.0f}" if fin else "n/a"
        print(f"{b:>5} | {what:<76} | {fivexx:>3} | {no_retry:>19} | {wall:>6.1f} | {(peak - idle) / mb:>12.0f} MB | "
              f"{lat:>22} | {(after - idle) / mb:>13.0f} MB")
        bad |= fivexx > 0 or no_retry > 0 or (peak - idle) > 1.5 * (1 << 30) or (max(ms) if ms else 0) >= 200
    for b, got, *_ in rows:
        ok = sorted(t for _, s, _, t in got if s == 200)
        if ok:
            print(f"burst {b}: {len(ok)} answered 200, in {ok[0]:.1f} to {ok[-1]:.1f} s")
    print("\nverdict:", "FAIL (a 5xx, a 503 without Retry-After, peak > 1.5 GB above idle, or /api/models >= 200 ms)" if bad else "ok")


if __name__ == "__main__":
    main()
