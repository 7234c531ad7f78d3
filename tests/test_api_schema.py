"""The HTTP API against its own OpenAPI schema, in-process (Schemathesis drives the ASGI app; no
network): generated requests, valid and invalid, to every operation. None may get a 5xx; every
error is JSON with a one-line ``detail``; a success is what the operation promises."""
from __future__ import annotations

import io
import struct
import tempfile
import zlib

import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (the dev extra)")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from zoo.serve import gatys as serve_gatys  # noqa: E402
from zoo.serve.app import create_app  # noqa: E402

MAX_EXAMPLES = 12  # per operation and mode: the whole file runs in well under a minute on 2 cores
OPERATIONS = 7


def _no_worker(self, job, size, steps) -> None:
    """A generated request never starts a real Gatys run (minutes of CPU)."""
    job.events.append({"event": "error", "message": "not run in this test"})
    job.state = "error"


# An empty user zoo over the built-in models, named explicitly: nothing in the environment changes.
APP = create_app(zoo=tempfile.mkdtemp(prefix="style-zoo-schema-"))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES,
                                deterministic=True, database="none")
SEEN: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _fake_gatys(monkeypatch):
    monkeypatch.setattr(serve_gatys.Jobs, "_run", _no_worker)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), max_examples=MAX_EXAMPLES)
def test_generated_requests_get_no_5xx_and_one_line_json_errors(case):
    response = case.call()
    where = f"{case.method} {case.formatted_path} -> {response.status_code}"
    SEEN[case.operation.label] = SEEN.get(case.operation.label, 0) + 1
    assert response.status_code < 500, f"{where}: {response.text[:300]}"
    ctype = response.headers.get("content-type", [""])
    ctype = ctype[0] if isinstance(ctype, list) else ctype
    if response.status_code >= 400:
        assert ctype.startswith("application/json"), f"{where}: {ctype}"
        detail = response.json().get("detail")
        assert isinstance(detail, str) and detail and "\n" not in detail, f"{where}: {detail!r}"
        assert "Traceback" not in detail
    if response.status_code == 503:
        assert response.headers.get("retry-after"), where


# --- the photo itself, generated: any size, mode and format, then truncated, corrupted or lying ---

FORMATS = {"PNG": ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"], "JPEG": ["RGB", "L", "CMYK"], "GIF": ["P", "L"],
           "WEBP": ["RGB", "RGBA"], "BMP": ["RGB", "L", "1"], "TIFF": ["RGB", "RGBA", "L", "CMYK", "I;16"]}


def png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header declares w x h pixels, with one empty data chunk: a few dozen bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@st.composite
def photos(draw) -> tuple[bytes, bool]:
    """(upload bytes, whether it is a whole, readable image)."""
    if draw(st.sampled_from(["pixels", "pixels", "pixels", "header only"])) == "header only":
        return png_header_only(draw(st.integers(1, 200_000)), draw(st.integers(1, 200_000))), False
    fmt = draw(st.sampled_from(sorted(FORMATS)))
    mode = draw(st.sampled_from(FORMATS[fmt]))
    w, h = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    buf = io.BytesIO()
    Image.new("RGB", (w, h), tuple(draw(st.tuples(*[st.integers(0, 255)] * 3)))).convert(mode).save(buf, format=fmt)
    data = buf.getvalue()
    how = draw(st.sampled_from(["whole", "whole", "truncated", "flipped", "prefixed"]))
    if how == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "flipped":
        i = draw(st.integers(0, len(data) - 1))
        data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
    elif how == "prefixed":
        data = draw(st.binary(min_size=1, max_size=16)) + data
    return data, how == "whole"


@pytest.fixture(scope="module")
def client():
    with TestClient(APP) as c:
        yield c


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(photo=photos(), size=st.integers(64, 1024))
def test_generated_photos_get_a_result_or_a_one_line_4xx(client, photo, size):
    data, whole = photo
    r = client.post("/api/apply", files={"image": ("p", data, "application/octet-stream")}, data={"model": "starry", "size": str(size)})
    SEEN["generated photos"] = SEEN.get("generated photos", 0) + 1
    assert r.status_code < 500, r.text
    if r.status_code == 200:
        out = Image.open(io.BytesIO(r.content))
        assert r.headers["content-type"] == "image/jpeg" and min(out.size) >= 5
        return
    assert r.status_code in (400, 413, 415), (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail and "Traceback" not in detail, detail
    if whole:  # a readable image is refused only for a side under 5 px
        assert "at least 5 px" in detail, detail


def test_every_operation_was_exercised():
    if len(SEEN) < OPERATIONS + 1:
        pytest.skip("run with the generated tests above (not alone or under -k)")
    assert sum(SEEN.values()) >= 60, SEEN
    print(f"{sum(SEEN.values())} generated requests: {SEEN}")
