"""Benchmark `zoo serve`: POST /api/apply latency through a real uvicorn on 127.0.0.1 (HTTP, multipart
upload, decode, inference, JPEG encode), first request (model load) and warm, and two requests at once.
Never run by the test suite.

    .venv/bin/python bench/serve.py [--model starry] [--size 512] [--repeat 5]
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # serve_helpers: the test suite's loopback server
PHOTO = (ROOT / ".." / "shared" / "assets" / "photos" / "tubingen.jpg").resolve()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="starry")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    import os

    import httpx
    from PIL import Image

    from serve_helpers import running_server
    from zoo.serve.app import create_app

    img = Image.open(PHOTO).convert("RGB")
    img.thumbnail((a.size, a.size))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=92)
    photo = buf.getvalue()
    form = {"model": a.model, "size": str(a.size)}

    infer: list[float] = []

    def post(h: httpx.Client) -> float:
        t0 = time.perf_counter()
        r = h.post("/api/apply", files={"image": ("p.jpg", photo, "image/jpeg")}, data=form)
        r.raise_for_status()
        infer.append(float(r.headers["X-Inference-Ms"]))
        return (time.perf_counter() - t0) * 1000

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("STYLE_ZOO_HOME", str(Path(tmp) / "zoo"))
        with running_server(create_app()) as url, httpx.Client(base_url=url, timeout=300) as h:
            first = post(h)
            warm = [post(h) for _ in range(a.repeat)]
            pair: list[float] = []
            t0 = time.perf_counter()
            threads = [threading.Thread(target=lambda: pair.append(post(httpx.Client(base_url=url, timeout=300)))) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            both = (time.perf_counter() - t0) * 1000
    mp = img.width * img.height / 1e6
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"POST /api/apply {a.model}, {img.width}x{img.height} ({mp:.2f} MP), torch threads {__import__('torch').get_num_threads()}")
    print(f"  first request (loads the model): {first:.0f} ms")
    print(f"  warm: median {statistics.median(warm):.0f} ms, min {min(warm):.0f} ms over {len(warm)}  "
          f"({statistics.median(warm) / mp:.0f} ms/MP end to end; the network alone: median {statistics.median(infer[1:1 + len(warm)]):.0f} ms)")
    print(f"  two at once: both done in {both:.0f} ms (each {', '.join(f'{p:.0f}' for p in sorted(pair))} ms; inference is serialised)")


if __name__ == "__main__":
    main()
