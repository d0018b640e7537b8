"""Changing the model of a running server, in every worker, without failing a request.

Each worker reads with `app.state.predictor`. A request takes the predictor once, when it
starts (the `get_predictor` dependency), and keeps that object to the end, so switching the
attribute never touches a request in flight: it finishes on the old model, which is freed
when the last such request lets go of it. The new model is loaded and read with first, so
it is never half-ready when it goes in.

`digitrec serve --workers N` runs N processes, and an admin request reaches only one of
them. That worker writes the model's file into a small JSON *state file* (atomically, in a
private folder made for this server); every worker compares the file's stat with
the one it last read before each request (a few microseconds) and at a short interval while
idle, and on a change loads the model it names, then switches. A request that starts after
the admin answer therefore reads with the new model in every worker: a worker that has not
switched yet switches first (the request waits for the load; it does not fail).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np
from starlette.concurrency import run_in_threadpool

from ..errors import DigitrecError, ModelError
from ..files import atomic_path
from ..loading import load_predictor
from ..reading.predictor import Predictor

POLL_SECONDS = 0.5  # how soon an idle worker follows a change (a busy one follows at once)
# uvicorn's own logger, so that these lines go where the server's own lines go
log = logging.getLogger("uvicorn.error")


def warm_up(predictor: Predictor) -> None:
    """One real reading: the first user does not wait for lazy set-up, and a model that
    cannot read a digit is refused before it is used."""
    stroke = np.zeros((56, 56), np.float32)
    stroke[8:48, 26:30] = 1.0
    try:
        p = predictor.predict(stroke)
    except DigitrecError:
        raise
    except Exception as e:  # ONNX Runtime's and torch's own errors: input or output shapes
        raise ModelError(f"{predictor.path} cannot read a digit: {type(e).__name__}: {e}")
    if p.probabilities.shape != (10,):
        raise ModelError(f"{predictor.path} does not answer with ten digits")


def load(model: str | os.PathLike | None, threads: int | None) -> Predictor:
    """A Predictor that has read a digit, or ModelError: a file that passes the card checks
    can still fail in the backend (a card whose settings do not build its architecture)."""
    try:
        # one reading process or thread a request: the server bounds its own work (work.py)
        predictor = load_predictor(model, threads=threads, readers=1)
    except DigitrecError:
        raise
    except Exception as e:
        raise ModelError(f"{model} cannot be loaded: {type(e).__name__}: {e}")
    warm_up(predictor)
    return predictor


class ModelState:
    """The model every worker of one server reads with, shared through `path` (None: this
    process only, as under TestClient)."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path else None
        self.signature: tuple | None = None  # stat of the state file last read
        self.seen: str | None = None  # id of the change last followed
        self._lock: asyncio.Lock | None = None

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:  # made on the event loop that uses it
            self._lock = asyncio.Lock()
        return self._lock

    def _stat(self) -> tuple | None:
        try:
            s = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (s.st_ino, s.st_mtime_ns, s.st_size)

    def read(self) -> tuple[dict | None, tuple | None]:
        """The published change, if any, and the stat of the very file it came from."""
        if self.path is None:
            return None, None
        try:
            with open(self.path, "rb") as f:
                s = os.fstat(f.fileno())
                change = json.loads(f.read())
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as e:
            log.error("digitrec: cannot read the model state file %s: %s", self.path, e)
            return None, None
        return change, (s.st_ino, s.st_mtime_ns, s.st_size)

    def publish(self, model: Path) -> None:
        """Tell every worker to read with `model`; the caller holds the lock."""
        if self.path is None:
            return
        change = {"id": uuid.uuid4().hex, "model": str(model.resolve())}
        with atomic_path(self.path) as tmp, open(tmp, "w") as f:
            json.dump(change, f)
            f.flush()
            s = os.fstat(f.fileno())
        # the stat of this very file (a rename keeps it), so a later change is never missed
        self.seen, self.signature = change["id"], (s.st_ino, s.st_mtime_ns, s.st_size)

    def startup_model(self, default: str | None) -> str | None:
        """A worker that starts (or is restarted) after a change reads what it says."""
        change, signature = self.read()
        if change is None:
            return default
        self.seen, self.signature = change.get("id"), signature
        return change.get("model") or default

    async def follow(self, app) -> None:
        """Switch this worker to the published model if it changed since it last looked."""
        if self.path is None or self._stat() == self.signature:
            return
        async with self.lock:
            if self._stat() == self.signature:  # another request followed it meanwhile
                return
            change, signature = self.read()
            if change is None or change.get("id") == self.seen:
                self.signature = signature
                return
            try:
                predictor = await run_in_threadpool(
                    load, change["model"], app.state.settings.threads
                )
            except (DigitrecError, KeyError) as e:
                # it loaded in the worker that published it: keep serving, say so once
                log.error("digitrec: worker %d keeps its model: %s", os.getpid(), e)
            else:
                switch(app, predictor)
            self.seen, self.signature = change.get("id"), signature

    async def poll(self, app) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.follow(app)
            except Exception as e:  # never let the poller die quietly
                log.error("digitrec: model state check failed: %s", e)


def switch(app, predictor: Predictor) -> None:
    app.state.predictor = predictor  # one reference assignment: atomic for every reader
    name = predictor.name
    log.info("digitrec: worker %d reads with model %s (%s)", os.getpid(), name, predictor.path)
