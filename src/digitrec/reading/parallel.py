"""Bringing many pictures to MNIST form on several cores: `read_many(pictures, readers)` is
`preprocess.to_mnist_many`, with the pictures shared between this process and up to
`readers - 1` reading processes.

Threads are not enough: most of a picture's 1 ms is short NumPy, SciPy and Pillow calls
that hold the GIL, and two threads read 2% more than one (docs/benchmarks.md, "Pipeline
speed"). Each reading process is `python -c` calling this module's `_main`: a fresh interpreter
that imports only the preprocessing and reads batches sent over its stdin, answering on
its stdout (length-prefixed pickles between this process and its own child). Being a plain
child, it never runs the caller's script again, as a multiprocessing child started by
"spawn" would in a script without an `if __name__ == "__main__"` guard, and it needs no
fork of a process that holds ONNX Runtime's threads.

The batch is cut into CHUNK pictures; this process and each reading process take the next
chunk in turn, so a process that is still starting (a few tenths of a second, once) or a
slow chunk holds up nothing. The readings are the same, bit for bit, as one process's: the
same function on the same picture. A reading process that dies has its chunk read here,
and is not used again. Reading processes are started when first wanted and kept for the
next batch; each ends when this process does (its stdin closes).
"""

from __future__ import annotations

import atexit
import numbers
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .preprocess import IMAGE_SIZE, ImageInput, LeftOut, MnistInputs, to_mnist_many

ENV = "DIGITREC_READERS"  # processes reading a batch, this one included; 1: this one alone
CHUNK = 32  # pictures in a chunk: ~30 ms of reading against ~0.1 ms of sending it
_HEADER = struct.Struct("<Q")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_readers() -> int:
    """$DIGITREC_READERS, else one process per core."""
    given = os.environ.get(ENV, "").strip()
    if not given:
        return cores()
    try:
        return check_readers(int(given))
    except (ValueError, ConfigError):  # "many", or 0
        raise ConfigError(f"${ENV} must be a whole number of processes, 1 or more, not {given!r}")


def check_readers(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ConfigError(f"readers must be a whole number of processes, 1 or more, not {n!r}")
    return int(n)


def read_many(
    pictures: Iterable[ImageInput],
    readers: int = 1,
    raise_unreadable: bool = False,
    progress: Callable[[int], object] | None = None,
) -> MnistInputs:
    """to_mnist_many(pictures, raise_unreadable), read by `readers` processes (this one
    and readers - 1 reading processes) where the batch has a chunk for each. `progress`
    is told how many more pictures have been read, as they are."""
    pictures = list(pictures)
    chunks = [pictures[i : i + CHUNK] for i in range(0, len(pictures), CHUNK)]
    helpers = min(readers, len(chunks)) - 1
    if helpers < 1 or not sys.executable:
        return to_mnist_many(_told(pictures, progress), raise_unreadable)
    return _merged(_Batch(chunks, raise_unreadable, progress).run(helpers))


def _told(pictures: list, progress) -> Iterable:
    for picture in pictures:
        yield picture
        if progress:
            progress(1)


def _merged(parts: list[MnistInputs | BaseException]) -> MnistInputs:
    """The chunks' readings as one batch's; with raise_unreadable, the first chunk's error
    in the pictures' order is raised, as reading them in order would have."""
    inputs, kept, left_out = [], [], []
    for k, part in enumerate(parts):
        if isinstance(part, BaseException):
            raise part
        start = k * CHUNK
        inputs.append(part.inputs)
        kept += [start + i for i in part.kept]
        left_out += [LeftOut(start + o.index, o.reason, o.message) for o in part.left_out]
    stacked = np.concatenate(inputs) if inputs else np.zeros((0, IMAGE_SIZE, IMAGE_SIZE))
    return MnistInputs(stacked.astype(np.float32, copy=False), kept, left_out)


class _Batch:
    """One batch's chunks, taken in turn by this process and by reading processes."""

    def __init__(self, chunks: list[list[ImageInput]], raise_unreadable: bool, progress):
        self.chunks = chunks
        self.raise_unreadable = raise_unreadable
        self.progress = progress
        self.parts: list = [None] * len(chunks)
        self.next = 0
        self.failed = False  # an unreadable picture was met: no need to read further
        self.lock = threading.Lock()

    def take(self) -> int | None:
        with self.lock:
            if self.next >= len(self.chunks) or self.failed:
                return None
            self.next += 1
            return self.next - 1

    def done(self, k: int, part) -> None:
        self.parts[k] = part
        if isinstance(part, BaseException):
            self.failed = True
        elif self.progress:
            with self.lock:
                self.progress(len(self.chunks[k]))

    def read_here(self, k: int) -> None:
        try:
            part = to_mnist_many(self.chunks[k], self.raise_unreadable)
        except Exception as e:
            part = e
        self.done(k, part)

    def run(self, helpers: int) -> list:
        workers = _POOL.borrow(helpers)
        threads = [threading.Thread(target=self._feed, args=(w,), daemon=True) for w in workers]
        for t in threads:
            t.start()
        try:
            while (k := self.take()) is not None:
                self.read_here(k)
        except BaseException:  # Ctrl-C: the reading processes take no more chunks
            self.failed = True
            raise
        finally:
            for t in threads:
                t.join()
            _POOL.give_back(workers)
        # chunks are taken in order and every one taken is read: those never taken come
        # after the first error, which is raised before them
        return [p for p in self.parts if p is not None]

    def _feed(self, worker: _Worker) -> None:
        while (k := self.take()) is not None:
            try:
                part = worker.read(self.chunks[k], self.raise_unreadable)
            except Exception:
                # it died, or a picture cannot be sent to it: this chunk is read here, and
                # the process is not trusted again (its pipes may hold half a message)
                worker.broken = True
                self.read_here(k)
                return
            self.done(k, part)


class _Worker:
    """A reading process, and the pipes to it."""

    def __init__(self):
        # this digitrec, wherever it was imported from (a checkout on sys.path, say)
        root = str(Path(__file__).resolve().parents[2])
        code = (
            f"import sys; r = {root!r}; sys.path[:0] = [] if r in sys.path else [r]; "
            f"from {__name__} import _main; _main()"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.broken = False

    def read(self, chunk: list[ImageInput], raise_unreadable: bool):
        """The chunk's MnistInputs, or the error reading it raised."""
        _send(self.process.stdin, _pickled((chunk, raise_unreadable)))
        ok, result = _receive(self.process.stdout)
        return result  # MnistInputs, or (not ok) the exception it raised

    def close(self) -> None:
        try:
            self.process.stdin.close()
            self.process.wait(timeout=5)
        except Exception:
            self.process.kill()


class _Pool:
    """Reading processes kept between batches; a batch borrows the idle ones (starting more
    up to what it asks), so two threads reading at once each get their own."""

    def __init__(self):
        self.idle: list[_Worker] = []
        self.lock = threading.Lock()
        atexit.register(self.close)

    def borrow(self, n: int) -> list[_Worker]:
        with self.lock:
            dead = [w for w in self.idle if w.process.poll() is not None]
            alive = [w for w in self.idle if w not in dead]
            taken, self.idle = alive[:n], alive[n:]
        for w in dead:
            w.close()
        while len(taken) < n:
            try:
                taken.append(_Worker())
            except OSError:  # no processes to be had: read with those there are
                break
        return taken

    def give_back(self, workers: list[_Worker]) -> None:
        alive = [w for w in workers if not w.broken and w.process.poll() is None]
        for w in workers:
            if w not in alive:
                w.close()
        with self.lock:
            self.idle += alive

    def close(self) -> None:
        with self.lock:
            workers, self.idle = self.idle, []
        for w in workers:
            w.close()


_POOL = _Pool()


def _pickled(message) -> bytes:
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _send(stream, data: bytes) -> None:
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream):
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError("the reading process ended")
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the reading process ended")
    return pickle.loads(data)


def _serve(stdin, stdout) -> None:
    """A reading process: read each batch sent, answer (True, MnistInputs) or (False, the
    error), until the stream ends."""
    while True:
        try:
            chunk, raise_unreadable = _receive(stdin)
        except EOFError:
            return
        try:
            answer = (True, to_mnist_many(chunk, raise_unreadable))
        except Exception as e:
            answer = (False, e)
        try:
            data = _pickled(answer)
        except Exception:  # an error that cannot be pickled: its message can
            data = _pickled((False, RuntimeError(str(answer[1]))))
        _send(stdout, data)


def _main() -> None:
    """The reading process's entry: Ctrl-C is for the process that started it, which ends
    it by closing its stdin."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _serve(sys.stdin.buffer, sys.stdout.buffer)
