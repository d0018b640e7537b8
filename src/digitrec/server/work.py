"""Reading pictures off the event loop, a bounded number at a time.

Decoding a megapixel PNG and bringing it to MNIST form takes a fifth of a second to a
second of CPU. On the event loop that time is every other request's too: with eight such
uploads in flight, /healthz once took 3.2 s. So all the work on a request's picture (its
JSON and base64, decoding, reading) is done elsewhere:

- in reading *processes* under `digitrec serve` (`processes=True`). Threads are not
  enough: much of the reading is long C calls that hold the GIL (SciPy's labelling of a
  noisy picture's ink, Pillow's decoding), and while they run the event loop cannot, so
  with eight 1-megapixel uploads in flight /healthz still had a p99 of 180 ms with one
  reading thread as with two. Each process holds its own copy of the model (made from the
  same file, so its readings are the parent's) and follows a model change on its next job.
- in threads: a small PNG (`THREAD_PIXELS`, what the page sends) even under `digitrec
  serve`, and everything otherwise (the app under TestClient, an injected Predictor). A
  pad's reading holds the GIL a few milliseconds at a time (p99 6 ms, at most 11 ms for a
  canvas), while a process's round trip would add a fifth to its CPU.

Either way the work is bounded per worker: `threads` readings at once, and `queue` more
waiting for a turn; a burst past both is answered at once with 503 `busy` and Retry-After
rather than held as memory and promised work. A request whose client has left by the time
its turn comes is not read at all, and a turn is held until its reading has really ended
(a cancelled request must not free its turn early). While a picture is read, the client is
watched (every WATCH seconds): once it has left, the reading is asked to stop, and a
reading of a number (the one that may take long: segmentation's search) stops at its next
check (`stop_asked`), answered 499 like a client gone before its turn. A thread is asked
through a flag of its own; a reading process through its slot in an array shared with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

import anyio
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

from ..errors import DigitrecError
from ..reading.predictor import NumberReading, Prediction, Predictor
from ..reading.segment import Stopped
from .payload import ApiError, Sent, form_fields, png_pixels
from .schemas import FeedbackFields

T = TypeVar("T")
THREAD_PIXELS = 160_000  # the page's pads are 280x280 and 560x280
RETRY_AFTER = 1  # seconds: a picture is read in well under that, a queue drains in a few
WATCH = 0.1  # seconds between looks at whether a reading's client is still there


class Busy(ApiError):
    def __init__(self, waiting: int):
        super().__init__(
            503,
            "busy",
            f"the server has {waiting} pictures to read already; try again in a moment",
            headers={"Retry-After": str(RETRY_AFTER)},
        )


# ---------------------------------------------------------------- what is done with a picture
# Module-level functions of (predictor, sent): a process receives them by name.


def read_digit(predictor: Predictor, sent: Sent) -> Prediction:
    return predictor.predict(sent.open()[0])


def read_number(predictor: Predictor, sent: Sent) -> NumberReading:
    return predictor.read_number(sent.open()[0], stop=stop_asked)


def check_feedback(predictor: Predictor, sent: Sent) -> tuple[bytes, Any]:
    """The picture and its fields, checked: a label of 0-9, and ink to learn from."""
    data, fields = sent.open()
    if isinstance(fields, dict):
        fields = form_fields(fields, FeedbackFields)
    if predictor.predict(data).reason == "blank":
        raise ApiError(422, "blank_image", "the picture is blank: nothing to learn from")
    return data, fields


def light(sent: Sent) -> bool:
    """A PNG of at most THREAD_PIXELS, sent as itself (a JSON body's picture is known only
    once the JSON is parsed, and that is work for a reader too)."""
    if sent.json_model is not None:
        return False
    pixels = png_pixels(sent.body)
    return pixels is not None and pixels <= THREAD_PIXELS


# ---------------------------------------------------------------- whether to stop

_job = threading.local()  # .stop: the running task's "has my client left?", in its thread


def stop_asked() -> bool:
    """Whether the client of the reading running in this thread has left (a task's check)."""
    stop = getattr(_job, "stop", None)
    return bool(stop is not None and stop())


def _run_stoppable(stop: Callable[[], bool], task: Callable, *args):
    _job.stop = stop
    try:
        return task(*args)
    finally:
        _job.stop = None


# ---------------------------------------------------------------- inside a reading process

_model: tuple[tuple, Predictor] | None = None  # this process's model, and its key
_flags = None  # this process's view of the flags its parent sets when a client leaves


def _use_model(key: tuple) -> Predictor:
    global _model
    if _model is None or _model[0] != key:
        from .swap import load  # swap imports the app's side: only a process that reads needs it

        _model = None  # the old model goes before the new one loads: one in memory
        _model = (key, load(key[0], key[1]))
    return _model[1]


def _start_process(key: tuple, flags=None) -> None:
    global _flags
    _flags = flags
    _use_model(key)


def _started() -> int:
    time.sleep(0.05)  # long enough for the jobs sent with this one to go to other processes
    return os.getpid()


def _in_process(task: Callable, key: tuple, slot: int, *args) -> tuple[str, Any]:
    """Run `task` on this process's model, stopping once the flag in `slot` is set.
    Exceptions come back as plain values: one the parent failed to unpickle would break
    the whole pool."""
    flags = _flags

    def stop() -> bool:
        return flags is not None and flags[slot] != 0

    try:
        return "ok", _run_stoppable(stop, task, _use_model(key), *args)
    except Stopped:
        return "stopped", None
    except ApiError as e:
        return "api", (e.status_code, e.code, e.message)
    except DigitrecError as e:
        return "digitrec", (type(e), str(e))
    except Exception as e:
        return "crash", f"{type(e).__name__}: {e}"


def _unwrap(kind: str, value: Any):
    if kind == "ok":
        return value
    if kind == "stopped":
        raise ClientDisconnect()
    if kind == "api":
        raise ApiError(*value)
    if kind == "digitrec":
        cls, message = value
        raise cls(message)
    raise RuntimeError(f"a reading process failed: {value}")


# ---------------------------------------------------------------- the readers of one worker


class Readers:
    """`threads` readings at once (in as many processes with `processes`), `queue` more
    waiting for a turn. `model_threads`: ONNX Runtime threads of a process's model."""

    def __init__(self, threads: int, queue: int, processes: bool = False, model_threads=1):
        if threads < 1 or queue < 0:
            raise ValueError("at least one reader, and a queue of 0 or more")
        self.threads = threads
        self.limit = threads + queue
        self.admitted = 0  # reading or waiting; only the event loop changes it
        self.turns = anyio.CapacityLimiter(threads)
        self.processes = processes
        self.model_threads = model_threads
        self.pool: ProcessPoolExecutor | None = None
        # a model's key in the processes: its file, and which load of it (a model changed
        # back to, or a file replaced in place, is a new load)
        self._loads: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._count = itertools.count()
        self.read_in = {"thread": 0, "process": 0}  # readings started in each, so far
        self.stopped = 0  # readings stopped because their client left
        # one flag per reading process's turn, set when that turn's client leaves
        self._context = multiprocessing.get_context("spawn")
        self._flags = self._context.RawArray("b", threads) if processes else None
        self._slots = list(range(threads))

    def _key(self, predictor: Predictor) -> tuple:
        n = self._loads.setdefault(predictor, next(self._count))
        return (str(predictor.path), self.model_threads, n)

    def _new_pool(self, predictor: Predictor) -> ProcessPoolExecutor:
        # spawn, not fork: a forked copy of a process with threads (ONNX Runtime's, the
        # event loop's helpers) may inherit a lock held forever
        return ProcessPoolExecutor(
            self.threads,
            mp_context=self._context,
            initializer=_start_process,
            initargs=(self._key(predictor), self._flags),
        )

    def _submit(self, pool: ProcessPoolExecutor, *job):
        """pool.submit(*job). A process is started in `submit`: one started here inherits
        an ignored SIGINT, so that Ctrl-C, which reaches the whole process group, does not
        interrupt it (not even in its imports, with a traceback): its worker stops it."""
        if threading.current_thread() is not threading.main_thread():
            return pool.submit(*job)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            return pool.submit(*job)
        finally:
            signal.signal(signal.SIGINT, previous)

    async def open(self, predictor: Predictor, timeout: float = 300) -> None:
        """Start the reading processes, each with the model loaded, before the first
        request waits for them (and before the server says it is ready)."""
        if not self.processes or self.pool is not None:
            return
        self.pool = pool = self._new_pool(predictor)
        ready: set[int] = set()
        with anyio.fail_after(timeout):
            while len(ready) < self.threads:  # a process takes jobs once it has started
                jobs = [self._submit(pool, _started) for _ in range(self.threads)]
                ready.update(await asyncio.gather(*map(asyncio.wrap_future, jobs)))

    async def close(self) -> None:
        pool, self.pool = self.pool, None
        if pool is not None:
            await run_in_threadpool(lambda: pool.shutdown(wait=True, cancel_futures=True))

    async def run(self, request: Request, task: Callable[[Predictor, Sent], T], predictor, sent):
        """`task(predictor, sent)` in its turn, in a reading process or thread."""
        if self.admitted >= self.limit:
            raise Busy(self.admitted)
        self.admitted += 1
        try:
            async with self.turns:
                if await request.is_disconnected():
                    raise ClientDisconnect()
                if self.pool is None or light(sent):
                    self.read_in["thread"] += 1
                    gone = threading.Event()
                    # the thread is waited for even if this task is cancelled (anyio's
                    # default), so the turn is held while it really runs
                    async with self._watching(request, gone.set):
                        try:
                            return await run_in_threadpool(
                                _run_stoppable, gone.is_set, task, predictor, sent
                            )
                        except Stopped:
                            raise ClientDisconnect() from None
                self.read_in["process"] += 1
                return await self._in_process(request, task, predictor, sent)
        finally:
            self.admitted -= 1

    @contextlib.asynccontextmanager
    async def _watching(self, request: Request, left: Callable[[], None]):
        """Call `left` if the request's client leaves while the body of the `with` runs."""

        async def watch():
            while not await request.is_disconnected():
                await asyncio.sleep(WATCH)
            self.stopped += 1
            left()

        watcher = asyncio.ensure_future(watch())
        try:
            yield
        finally:
            watcher.cancel()

    async def _in_process(self, request: Request, task, predictor: Predictor, sent: Sent):
        pool = self.pool
        slot = self._slots.pop()
        flags = self._flags
        flags[slot] = 0

        def left() -> None:
            flags[slot] = 1

        future = self._submit(pool, _in_process, task, self._key(predictor), slot, sent)
        try:
            async with self._watching(request, left):
                with anyio.CancelScope(shield=True):  # hold the turn until the process is done
                    kind, value = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            # a reading process died (killed for memory, a crash in a decoder): every
            # reading in flight is lost with it; a new pool serves the next ones
            if self.pool is pool:
                self.pool = self._new_pool(predictor)
                pool.shutdown(wait=False, cancel_futures=True)
            raise ApiError(
                503,
                "reader_failed",
                "the process reading this picture stopped; try again in a moment",
                headers={"Retry-After": str(RETRY_AFTER)},
            )
        finally:
            self._slots.append(slot)
        return _unwrap(kind, value)
