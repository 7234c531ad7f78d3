"""`zoo serve`: one page and the small JSON/HTTP API it uses (FastAPI; OpenAPI docs at /docs).

    GET  /                          the page (zoo/serve/static/index.html, read once at start)
    GET  /api/models                every model (latest version; user zoo over the built-in layer)
    GET  /api/models/{ref}/sample   a model's sample picture (JPEG)
    POST /api/apply                 multipart photo + model, strength, preserve_color, size, scale -> JPEG/PNG
    GET  /api/styles                named paintings for the optional Gatys run
    POST /api/gatys                 multipart photo + style, size, steps -> {"job": id}
    GET  /api/gatys/{job}/events    server-sent events: start, stage i/n, step k/n, tick, done | error
    GET  /api/gatys/{job}/result    the Gatys result (JPEG)

No path from a request reaches the file system: model refs must match ``NAME[@N]`` and are looked
up in the zoo's index, whose own paths are checked to stay inside the zoo; job ids are looked up in
memory; uploads are decoded from the request's own spooled file. Models load once (sha256-verified)
and stay cached. Memory is bounded by ``zoo.serve.limits.Gate``: a fixed number of requests inside
(one more gets 503 with Retry-After), a budget of pixels being decoded, one inference at a time on
one thread. Errors are JSON ``{"detail": "one line"}``. This module imports no Lightning: the Gatys
run, which needs it, happens in a subprocess (``zoo/serve/gatys.py`` starts ``zoo/serve/gatys_worker.py``).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, BinaryIO

import torch
from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image

from lit_modules.errors import ConfigError, StyleZooError, one_line
from zoo import EVAL_SIZE
from zoo.inference.loader import resolve_parts
from zoo.inference.scale import DEFAULT_SCALE, MAX_SCALE, MIN_SCALE, check_scale
from zoo.inference.stylizer import Stylizer, check_side
from zoo.media.images import declared_pixels, decode_image, encode_image, pil_to_tensor, to_pil_inplace
from zoo.registry.refs import is_blend, parse_ref
from zoo.registry.store import ZooStack, safe_rel
from zoo.registry.summary import model_rows

from .gatys import add_routes
from .limits import MAX_PIXELS, MAX_UPLOAD_BYTES, Busy, Gate, Limits, status_of

STATIC = Path(__file__).resolve().parent / "static"
MAX_SIDE = 1024  # results' long side at most this (the page is for quick looks; zoo apply does any size)
DEFAULT_SIDE = 512
CACHE_MODELS = 8
FORMATS = {"jpeg": ("JPEG", "image/jpeg"), "png": ("PNG", "image/png")}


class BodyLimit:
    """ASGI middleware: a POST body over ``limit`` bytes gets 413, by its Content-Length before it is
    read, or (chunked uploads) as soon as the bytes received pass the limit."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            response = JSONResponse({"detail": f"upload too large: {int(length) / 1e6:.1f} MB (limit {self.limit / 1e6:.0f} MB)"},
                                    status_code=413)
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # raised inside the route's body parsing: FastAPI answers 413 {"detail"}
                raise HTTPException(413, f"upload too large (limit {self.limit / 1e6:.0f} MB)")
            return message

        return await self.app(scope, limited, send)


class ModelCache:
    """Verified, loaded Stylizers keyed by the resolved (zoo, name, version, sha256, weight) of each
    part, so a new version is loaded when it appears; at most ``size``, LRU."""

    def __init__(self, zoo: str | None, size: int = CACHE_MODELS) -> None:
        self.zoo, self.size = zoo, size
        self.stylizers: OrderedDict = OrderedDict()
        self.lock = threading.Lock()
        self.loads = 0  # how many times a model file was read (tests check the cache works)

    def get(self, ref: str) -> Stylizer:
        """``name[@N]`` or a blend of styles trained together (``a:0.7+b:0.3``) -> its Stylizer (fp32, untiled)."""
        entries, weights = resolve_parts(ref, self.zoo)  # unknown names: 404 before any loading
        key = tuple((e.zoo.url, e.name, e.version, e.info.get("sha256"), w) for e, w in zip(entries, weights))
        pinned = "+".join(f"{e.ref}:{w:g}" for e, w in zip(entries, weights)) if is_blend(ref) else entries[0].ref
        with self.lock:
            if key in self.stylizers:
                self.stylizers.move_to_end(key)
                return self.stylizers[key]
            stylizer = Stylizer.load(pinned, self.zoo, "cpu", "fp32", tile=None)  # zoo apply's own loader (sha256-verified)
            self.loads += 1
            self.stylizers[key] = stylizer
            while len(self.stylizers) > self.size:
                self.stylizers.popitem(last=False)
            return stylizer


def run_network(stylizer: Stylizer, img: Image.Image) -> torch.Tensor:
    """The inference thread's whole job: a decoded photo through the network."""
    return stylizer.tensor(pil_to_tensor(img))


def encode_result(y: torch.Tensor, fmt: str) -> bytes:
    return encode_image(to_pil_inplace(y), FORMATS[fmt][0])


async def stylize_upload(gate: Gate, stylizer: Stylizer, upload: BinaryIO, size: int, fmt: str) -> tuple[bytes, dict]:
    """An admitted upload -> (image bytes, timings): decoded within the decoding budget and shrunk
    to ``size``, then one turn of the inference thread, then encoded."""
    label = "the uploaded file"
    pixels = await gate.off_loop(declared_pixels, upload, label, MAX_PIXELS)  # the header only: a 413 costs nothing
    img, decode_wait, decode_ms = await gate.decode(pixels, decode_image, upload, label, MAX_PIXELS, size)
    check_side(img.height, img.width)  # the Stylizer's own check, before the photo waits for its turn
    y, infer_wait, infer_ms = await gate.infer(run_network, stylizer, img)
    out = await gate.off_loop(encode_result, y, fmt)
    return out, {"width": img.width, "height": img.height, "decode_ms": decode_ms,
                 "queue_ms": decode_wait + infer_wait, "ms": infer_ms}


def model_list(zoo: str | None) -> list[dict]:
    return [{
        "ref": r.ref, "name": r.name, "version": r.version, "layer": r.layer, "title": r.title, "artist": r.artist,
        "year": r.year, "painting_license": r.painting_license,
        "sample": f"/api/models/{r.ref}/sample" if r.has_sample else None, "ms_per_mp": r.ms_per_mp, "origin": r.origin,
    } for r in model_rows(zoo)]


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    jobs = getattr(app.state, "gatys_jobs", None)
    if jobs is not None:
        jobs.closed = False  # an app can be started again after a stop (tests do)
    yield
    if jobs is not None:
        jobs.close()  # no worker outlives the server, nor its upload
    app.state.gate.close()


def create_app(zoo: str | None = None, max_upload_bytes: int = MAX_UPLOAD_BYTES, gatys: bool = True,
               limits: Limits = Limits()) -> FastAPI:
    """The web app over the zoo at ``zoo`` (default: $STYLE_ZOO_HOME, else the user cache) + built-in models;
    ``limits``: how many requests, decoded pixels and inference threads it runs at once."""
    ZooStack(zoo).entries()  # a broken index fails at start, not on the first request
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    app = FastAPI(title="Style Zoo", version="1", summary="Stylise photos with the zoo's networks.", lifespan=_lifespan,
                  description="The API behind the `zoo serve` page. Errors are JSON `{\"detail\": \"one line\"}`.")
    app.state.cache = cache = ModelCache(zoo)
    app.state.gate = gate = Gate(limits)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        e = errs[0] if errs else {}
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
        return JSONResponse({"detail": f"{where or 'request'}: {e.get('msg', 'invalid')}"}, status_code=422)

    @app.exception_handler(Busy)
    async def _busy(request: Request, exc: Busy):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)})

    app.add_middleware(BodyLimit, limit=max_upload_bytes + 65536)  # + room for the multipart framing

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/api/models", summary="Every model in the zoo (latest versions), user models first")
    def models() -> list[dict]:
        try:
            return model_list(zoo)
        except StyleZooError as e:
            raise HTTPException(500, one_line(e)) from None

    @app.get("/api/models/{ref}/sample", summary="A model's sample picture (JPEG)",
             responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "unknown model or no sample"}})
    def sample(ref: str) -> Response:
        try:
            parse_ref(ref)
            entry = ZooStack(zoo).resolve(ref)
            rel = entry.record.sample
            if not rel:
                raise HTTPException(404, f"{entry.ref} has no sample picture")
            data = entry.zoo.read_bytes(safe_rel(rel))  # a path from the index, never from the request
        except StyleZooError as e:
            raise HTTPException(status_of(e), one_line(e)) from None
        except FileNotFoundError:
            raise HTTPException(404, f"{ref}: sample picture missing from the zoo") from None
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=300"})

    @app.post("/api/apply", summary="Stylise a photo with a zoo model",
              responses={200: {"content": {"image/jpeg": {}, "image/png": {}}},
                         400: {"description": "bad photo (empty, corrupt, a side under 5 px)"},
                         404: {"description": "unknown model"}, 413: {"description": "photo too large"},
                         415: {"description": "not an image"}, 422: {"description": "bad parameter"},
                         503: {"description": "busy: retry after the Retry-After header's seconds"}})
    async def apply(
        image: UploadFile = File(..., description="The photo (JPEG, PNG, WebP, ...)."),
        model: str = Form(..., description="NAME or NAME@VERSION as listed by /api/models, or a blend of styles trained "
                                           "together: a+b, a:0.7+b:0.3.", examples=["starry", "wave@5", "starry:0.7+wave:0.3"]),
        strength: float = Form(1.0, ge=0.0, le=1.0, description="0 = the photo, 1 = fully stylised."),
        preserve_color: bool = Form(False, description="Keep the photo's colours (transfer luminance only)."),
        size: int = Form(DEFAULT_SIDE, ge=64, le=MAX_SIDE, description="Long side of the result, px (never upscaled)."),
        format: str = Form("jpeg", pattern="^(jpeg|png)$", description="jpeg or png."),
        scale: str = Form(DEFAULT_SCALE, max_length=16, description=f"Stroke size: auto (as in the photo's {EVAL_SIZE} px preview, "
                                                                    f"at any size), 1 (as trained, in pixels) or a number from "
                                                                    f"{MIN_SCALE:g} to {MAX_SCALE:g}.", examples=["auto", "1", "2.5"]),
    ) -> Response:
        try:
            scale = check_scale(scale)
        except ConfigError as e:
            raise HTTPException(422, one_line(e)) from None
        if image.size is not None and image.size > max_upload_bytes:
            raise HTTPException(413, f"upload too large (limit {max_upload_bytes / 1e6:.0f} MB)")
        if image.size == 0:
            raise HTTPException(400, "the uploaded file is empty")
        with gate.admit():  # Busy -> 503 + Retry-After, before anything is decoded
            try:
                stylizer = await run_in_threadpool(cache.get, model)  # unknown model: 404 before the photo is read
                stylizer = stylizer.with_options(strength=strength, preserve_color=preserve_color, scale=scale)
                out, info = await stylize_upload(gate, stylizer, image.file, size, format)
            except StyleZooError as e:
                raise HTTPException(status_of(e), one_line(e)) from None
        headers = {"X-Model": stylizer.ref, "X-Size": f"{info['width']}x{info['height']}",
                   "X-Inference-Ms": f"{info['ms']:.0f}", "X-Queue-Ms": f"{info['queue_ms']:.0f}",
                   "X-Decode-Ms": f"{info['decode_ms']:.0f}"}
        return Response(out, media_type=FORMATS[format][1], headers=headers)

    if gatys:
        add_routes(app, max_upload_bytes)
    return app
