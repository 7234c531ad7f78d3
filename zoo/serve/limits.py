"""What the server accepts, the HTTP status of each library error, and the gate that bounds its memory.

The memory ceiling of ``POST /api/apply`` (and the upload check of ``POST /api/gatys``) comes from
three bounds, each held by ``Gate``:

- admission: at most ``max_pending`` requests are inside (waiting, decoding, queued or running);
  one more is answered 503 with ``Retry-After`` at once, before its photo is decoded;
- decoding: at most ``decode_pixels`` pixels are being decoded at once, summed over requests
  (read from each image's header first), on ``decode_workers`` threads; a decoded photo is
  shrunk to the result's size (<= 1024 px) before it waits for inference;
- inference: one request at a time, always on the same thread (torch already uses every core,
  and one thread keeps one malloc arena: sixteen threads each leave their own high-water mark).

Upload bodies over 1 MB are spooled to disk by the multipart parser and read by the decoder,
never held whole in memory.
"""
from __future__ import annotations

import asyncio
import ctypes
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Callable, Iterator, TypeVar

from lit_modules.errors import ConfigError, StyleZooError
from zoo.media.images import ImageError, ImageTooLarge, NotAnImage
from zoo.registry.errors import IntegrityError, InvalidName, ModelNotFound

MAX_UPLOAD_BYTES = 25 << 20  # 25 MB: a phone photo fits; anything bigger is refused with 413
MAX_PIXELS = 50_000_000  # decoded size limit (a 50 MP photo), checked before decoding
MAX_PENDING = 16  # /api/apply requests inside the server at once; more get 503 + Retry-After
DECODE_WORKERS = 2
DECODE_PIXELS = MAX_PIXELS  # pixels decoding at once: one photo at the limit, or many small ones
TRIM_PIXELS = 4_000_000  # after a decode this large, freed heap memory goes back to the system

T = TypeVar("T")


def status_of(e: StyleZooError) -> int:
    """HTTP status of a library error."""
    if isinstance(e, (ModelNotFound, InvalidName)):
        return 404
    if isinstance(e, ImageTooLarge):
        return 413
    if isinstance(e, NotAnImage):
        return 415
    if isinstance(e, IntegrityError):
        return 500  # the server's own model file is broken: not the client's fault
    if isinstance(e, (ImageError, ConfigError)):
        return 400
    return 400


class Busy(Exception):
    """The server is full; the client may retry after ``retry_after`` seconds."""

    def __init__(self, pending: int, retry_after: int) -> None:
        super().__init__(f"the server is busy ({pending} photos in progress); retry in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    max_pending: int = MAX_PENDING
    decode_pixels: int = DECODE_PIXELS
    decode_workers: int = DECODE_WORKERS


class PixelBudget:
    """An asyncio semaphore counted in pixels: ``hold(n)`` waits until ``n`` more fit in ``total``
    (a photo larger than ``total`` waits for the budget to be empty and then holds all of it)."""

    def __init__(self, total: int) -> None:
        self.total, self.used = total, 0
        self.cond = asyncio.Condition()

    @asynccontextmanager
    async def hold(self, pixels: int) -> AsyncIterator[None]:
        n = min(max(pixels, 1), self.total)
        async with self.cond:
            await self.cond.wait_for(lambda: self.used + n <= self.total)
            self.used += n
        try:
            yield
        finally:
            async with self.cond:
                self.used -= n
                self.cond.notify_all()


class Gate:
    """Admission, the decoding budget and the single inference thread of one app (see the module)."""

    def __init__(self, limits: Limits = Limits()) -> None:
        self.limits = limits
        self.pending = 0  # changed only on the event loop's thread
        self.budget = PixelBudget(limits.decode_pixels)
        self.decoders, self.inference = self._pools()
        self.seconds_per_request = 1.0  # running mean of inference time, for Retry-After

    def retry_after(self) -> int:
        """Seconds until a place is likely free: one inference."""
        return max(1, math.ceil(self.seconds_per_request))

    @contextmanager
    def admit(self) -> Iterator[None]:
        """A place for one request, or ``Busy`` at once."""
        if self.pending >= self.limits.max_pending:
            raise Busy(self.pending, self.retry_after())
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1

    async def decode(self, pixels: int, fn: Callable[..., T], *args) -> tuple[T, float, float]:
        """``fn(*args)`` on a decoding thread once ``pixels`` fit in the decoding budget
        -> (result, ms waited, ms it ran)."""
        queued = time.perf_counter()
        async with self.budget.hold(pixels):
            out, _, ran = await _timed(self.decoders, _then_trim if pixels >= TRIM_PIXELS else _call, fn, *args)
        return out, (time.perf_counter() - queued) * 1000 - ran, ran  # waited: for the budget, then a thread

    async def off_loop(self, fn: Callable[..., T], *args) -> T:
        """``fn(*args)`` on a decoding thread, outside the budget (header reads, encoding results)."""
        return await asyncio.get_running_loop().run_in_executor(self.decoders, fn, *args)

    async def infer(self, fn: Callable[..., T], *args) -> tuple[T, float, float]:
        """``fn(*args)`` on the inference thread -> (result, ms waited for the thread, ms it ran)."""
        out, waited, ran = await _timed(self.inference, fn, *args)
        self.seconds_per_request += 0.2 * (ran / 1000 - self.seconds_per_request)
        return out, waited, ran

    def _pools(self) -> tuple[ThreadPoolExecutor, ThreadPoolExecutor]:
        return (ThreadPoolExecutor(self.limits.decode_workers, thread_name_prefix="zoo-decode"),
                ThreadPoolExecutor(1, thread_name_prefix="zoo-inference"))  # threads start on first use

    def close(self) -> None:
        """Drop the queued work of a stopping server; fresh pools serve the app if it is started again."""
        old = (self.decoders, self.inference)
        self.decoders, self.inference = self._pools()
        for pool in old:
            pool.shutdown(wait=False, cancel_futures=True)


async def _timed(pool: ThreadPoolExecutor, fn: Callable[..., T], *args) -> tuple[T, float, float]:
    """``fn(*args)`` on ``pool`` -> (result, ms it waited for a thread, ms it ran)."""
    queued = time.perf_counter()
    started: list[float] = []

    def run() -> T:
        started.append(time.perf_counter())
        return fn(*args)

    out = await asyncio.get_running_loop().run_in_executor(pool, run)
    done = time.perf_counter()
    return out, (started[0] - queued) * 1000, (done - started[0]) * 1000


def _call(fn: Callable[..., T], *args) -> T:
    return fn(*args)


def _then_trim(fn: Callable[..., T], *args) -> T:
    """``fn(*args)``, then glibc's ``malloc_trim``: Pillow allocates a big image in 16 MB blocks
    from the heap, and without a trim the freed blocks stay in the server's RSS."""
    try:
        return fn(*args)
    finally:
        _malloc_trim()


def _malloc_trim() -> None:
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):  # not glibc: nothing to trim with
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None
