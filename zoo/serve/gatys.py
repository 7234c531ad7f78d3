"""The page's optional Gatys run: a subprocess per job (it needs Lightning; the server never imports it),
progress as server-sent events.

The job's worker is ``python -m zoo.serve.gatys_worker IN OUT --style NAME --size N --steps K``: it runs
``zoo.inference.gatys.run_stylize`` and prints one JSON line per event (``start``, ``stage``, ``step``, then ``finished`` or ``error``).
The server keeps jobs in memory (at most ``MAX_JOBS``, one running at a time), in a temporary
folder it names itself; the request gives only the photo's bytes and the style's name.

Nothing outlives the server: the worker runs in its own process group, which the server's
shutdown kills; a worker whose server died without a shutdown (SIGKILL) stops itself (Linux's
parent-death signal, and a check of its parent every half second) and removes its job folder;
a folder left by a server killed before its worker started is removed by the next server's start.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from fastapi import File, Form, HTTPException, UploadFile
from fastapi.responses import Response, StreamingResponse

from lit_modules.errors import StyleZooError, one_line
from zoo.inference.gatys import gatys_config
from zoo.media.images import declared_pixels, decode_image
from zoo.registry import styles

from .limits import MAX_PIXELS, status_of

MAX_JOBS = 8
FOLDER_PREFIX = "style-zoo-gatys-"  # + the server's pid + "-": a later server knows whose a folder is
STOP_GRACE_S = 2.0  # a stopped worker's time to remove its folder before it is killed
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
        self.closed = False

    def running(self) -> bool:
        return any(j.state == "running" for j in self.jobs.values())

    def start(self, photo: bytes, style: str, size: int, steps: int) -> Job:
        with self.lock:
            if self.closed:
                raise RuntimeError("the server is shutting down")
            if self.running():
                raise RuntimeError("a Gatys run is already in progress; wait for it to finish")
            while len(self.jobs) >= MAX_JOBS:
                self.jobs.popitem(last=False)
            folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
            job = Job(uuid.uuid4().hex, style, folder)
            self.jobs[job.id] = job
        (job.folder / "photo").write_bytes(photo)
        threading.Thread(target=self._run, args=(job, size, steps), daemon=True).start()
        return job

    def _run(self, job: Job, size: int, steps: int) -> None:
        # This thread starts the worker and lives until it ends: Linux sends the worker its
        # parent-death signal when this thread exits, not only when the server does.
        root = str(Path(__file__).resolve().parents[2])  # the package's parent: the worker imports the same code
        env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
        cmd = [sys.executable, "-m", "zoo.serve.gatys_worker", str(job.folder / "photo"), str(job.folder / "out.jpg"),
               "--style", job.style, "--size", str(size), "--steps", str(steps),
               "--parent", str(os.getpid()), "--workdir", str(job.folder)]
        try:
            with self.lock:
                if self.closed:
                    raise OSError("the server is shutting down")
                job.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                            start_new_session=True)  # its own process group: stopped as one
            timer = threading.Timer(JOB_TIMEOUT_S, stop_worker, args=(job.proc,))
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

    def close(self) -> None:
        """Stop every running worker (its whole process group) and remove every job folder; no job starts after."""
        with self.lock:
            self.closed = True
            jobs = list(self.jobs.values())
        for job in jobs:
            if job.proc is not None:
                stop_worker(job.proc)
            shutil.rmtree(job.folder, ignore_errors=True)


def stop_worker(proc: subprocess.Popen, grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the worker's process group (it removes its folder and exits), SIGKILL it after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(grace_s)
            return
        except subprocess.TimeoutExpired:
            continue


def remove_stale_folders(root: Path | None = None) -> list[Path]:
    """Remove job folders of servers that are no longer running (killed before their worker could
    clean up); folders of live servers, and other users', are left alone. Returns what was removed."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    for folder in root.glob(f"{FOLDER_PREFIX}*"):
        try:
            mine = folder.is_dir() and not folder.is_symlink() and folder.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and not _owner_alive(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _owner_alive(folder: Path) -> bool:
    """Whether the server that made ``folder`` may still be running (unknown owner: younger than a job may run)."""
    pid = folder.name[len(FOLDER_PREFIX):].split("-", 1)[0]
    if pid.isdigit() and "-" in folder.name[len(FOLDER_PREFIX):]:
        return int(pid) == os.getpid() or psutil.pid_exists(int(pid))
    try:
        return time.time() - folder.stat().st_mtime < JOB_TIMEOUT_S + 60
    except OSError:
        return False


def add_routes(app, max_upload_bytes: int) -> None:
    """The Gatys routes on ``app`` (whose ``state.gate`` bounds the upload's decoding)."""
    remove_stale_folders()
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
        style: str = Form(..., description="A named style, as listed by /api/styles.", examples=["starry"]),
        size: int = Form(256, ge=64, le=MAX_SIDE, description="Long side of the result, px."),
        steps: int = Form(40, ge=1, le=500, description="Iterations at the coarsest scale."),
    ) -> dict:
        if style not in style_names():
            raise HTTPException(404, f"no named style {style!r}; known: {', '.join(style_names())}")
        if image.size is not None and image.size > max_upload_bytes:
            raise HTTPException(413, f"upload too large (limit {max_upload_bytes / 1e6:.0f} MB)")
        if jobs.running():
            raise HTTPException(429, "a Gatys run is already in progress; wait for it to finish")
        gate, label = app.state.gate, "the uploaded file"
        try:  # refuse non-images here, not in the worker; decoded within the server's decoding budget
            pixels = await gate.off_loop(declared_pixels, image.file, label, MAX_PIXELS)
            img = (await gate.decode(pixels, decode_image, image.file, label, MAX_PIXELS, MAX_SIDE))[0]
            gatys_config(style, {"size": size, "steps": steps}).check_sides((img.height, img.width))  # not in the worker
        except StyleZooError as e:
            raise HTTPException(status_of(e), one_line(e)) from None
        image.file.seek(0)
        try:
            job = jobs.start(await image.read(), style, size, steps)
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
