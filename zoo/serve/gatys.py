"""The page's optional Gatys run: a subprocess per job (it needs Lightning; the server never imports it),
progress as server-sent events.

The job's worker is ``python -m zoo.serve.gatys_worker IN OUT --style NAME --size N --steps K``: it runs
``zoo.inference.gatys.run_stylize`` and prints one JSON line per event (``start``, ``stage``, ``step``, then ``finished`` or ``error``).
The server keeps jobs in memory (at most ``MAX_JOBS``, one running at a time), in a temporary
folder it names itself; the request gives only the photo's bytes and the style's name.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import File, Form, HTTPException, UploadFile
from fastapi.responses import Response, StreamingResponse

from lit_modules.errors import StyleZooError, one_line
from zoo.media.images import decode_image
from zoo.registry import styles

from .limits import MAX_PIXELS, status_of

MAX_JOBS = 8
MAX_SIDE = 512  # Gatys optimises pixels through VGG-19: minutes per 512 px photo on a CPU
JOB_TIMEOUT_S = 900
JOB_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Job:
    id: str
    style: str
    folder: Path
    events: list = field(default_factory=list)
    state: str = "running"  # running | done | error
    result: bytes | None = None
    started: float = field(default_factory=time.time)
    proc: subprocess.Popen | None = None


class Jobs:
    def __init__(self) -> None:
        self.jobs: OrderedDict[str, Job] = OrderedDict()
        self.lock = threading.Lock()

    def running(self) -> bool:
        return any(j.state == "running" for j in self.jobs.values())

    def start(self, photo: bytes, style: str, size: int, steps: int) -> Job:
        with self.lock:
            if self.running():
                raise RuntimeError("a Gatys run is already in progress; wait for it to finish")
            while len(self.jobs) >= MAX_JOBS:
                self.jobs.popitem(last=False)
            job = Job(uuid.uuid4().hex, style, Path(tempfile.mkdtemp(prefix="style-zoo-gatys-")))
            self.jobs[job.id] = job
        (job.folder / "photo").write_bytes(photo)
        threading.Thread(target=self._run, args=(job, size, steps), daemon=True).start()
        return job

    def _run(self, job: Job, size: int, steps: int) -> None:
        root = str(Path(__file__).resolve().parents[2])  # the package's parent: the worker imports the same code
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, "-m", "zoo.serve.gatys_worker", str(job.folder / "photo"), str(job.folder / "out.jpg"),
               "--style", job.style, "--size", str(size), "--steps", str(steps)]
        try:
            job.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            timer = threading.Timer(JOB_TIMEOUT_S, job.proc.kill)
            timer.start()
            for line in job.proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and "event" in event:
                    job.events.append(event)
            job.proc.wait()
            timer.cancel()
            out = job.folder / "out.jpg"
            if job.proc.returncode == 0 and out.is_file():
                job.result = out.read_bytes()
                job.events.append({"event": "done", "result": f"/api/gatys/{job.id}/result",
                                   "seconds": round(time.time() - job.started, 1)})
                job.state = "done"
            else:
                if not any(e["event"] == "error" for e in job.events):
                    job.events.append({"event": "error", "message": f"the Gatys run failed (exit {job.proc.returncode})"})
                job.state = "error"
        except OSError as e:
            job.events.append({"event": "error", "message": f"cannot start the Gatys run: {e}"})
            job.state = "error"
        finally:
            shutil.rmtree(job.folder, ignore_errors=True)


def add_routes(app, max_upload_bytes: int) -> None:
    jobs = Jobs()
    app.state.gatys_jobs = jobs

    def style_names() -> list[str]:
        return styles.names()

    @app.get("/api/styles", summary="Named paintings available for a Gatys run")
    def list_styles() -> list[dict]:
        out = []
        for name in style_names():
            meta = styles.get(name).meta()
            out.append({"name": name, "title": meta.get("title"), "artist": meta.get("artist"), "license": meta.get("license")})
        return out

    @app.post("/api/gatys", summary="Start a Gatys run (pixels optimised through VGG-19); progress at /api/gatys/{job}/events")
    async def start(
        image: UploadFile = File(..., description="The photo."),
        style: str = Form(..., description="A named style, as listed by /api/styles."),
        size: int = Form(256, ge=64, le=MAX_SIDE, description="Long side of the result, px."),
        steps: int = Form(40, ge=1, le=500, description="Iterations at the coarsest scale."),
    ) -> dict:
        if style not in style_names():
            raise HTTPException(404, f"no named style {style!r}; known: {', '.join(style_names())}")
        data = await image.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"upload too large (limit {max_upload_bytes / 1e6:.0f} MB)")
        try:
            decode_image(data, "the uploaded file", MAX_PIXELS)  # refuse non-images here, not in the worker
        except StyleZooError as e:
            raise HTTPException(status_of(e), one_line(e)) from None
        try:
            job = jobs.start(data, style, size, steps)
        except RuntimeError as e:
            raise HTTPException(429, str(e)) from None
        return {"job": job.id, "events": f"/api/gatys/{job.id}/events"}

    def find(job_id: str) -> Job:
        job = jobs.jobs.get(job_id) if JOB_RE.match(job_id) else None
        if job is None:
            raise HTTPException(404, f"no Gatys job {job_id[:40]!r}")
        return job

    @app.get("/api/gatys/{job_id}/events", summary="Server-sent events of a Gatys job: stage, then done or error")
    async def events(job_id: str) -> StreamingResponse:
        job = find(job_id)

        async def stream():
            sent, deadline, last_tick = 0, time.time() + JOB_TIMEOUT_S + 30, 0.0
            while time.time() < deadline:  # bounded: the worker is killed at JOB_TIMEOUT_S
                while sent < len(job.events):
                    yield f"data: {json.dumps(job.events[sent])}\n\n"
                    sent += 1
                if job.state != "running" and sent >= len(job.events):
                    return
                now = time.time()
                if now - last_tick >= 1.0:  # elapsed time for the page (and keeps proxies from closing the stream)
                    yield f"data: {json.dumps({'event': 'tick', 'elapsed': round(now - job.started)})}\n\n"
                    last_tick = now
                await asyncio.sleep(0.25)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get("/api/gatys/{job_id}/result", summary="The result of a finished Gatys job (JPEG)",
             responses={200: {"content": {"image/jpeg": {}}}})
    def result(job_id: str) -> Response:
        job = find(job_id)
        if job.result is None:
            raise HTTPException(409, f"job {job_id} is {job.state}")
        return Response(job.result, media_type="image/jpeg")
