"""Starting the server (`digitrec serve`): what is checked before any worker starts, the
folders the workers share, and uvicorn. The CLI only turns its arguments into `serve(...)`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path

import uvicorn

from ..errors import ConfigError
from ..feedback import FeedbackStore, default_db_path
from ..reading.predictor import resolve_model_path
from .metrics import MULTIPROC_ENV
from .protocol import DeadlineProtocol
from .settings import ADMIN_TOKEN_ENV, DEFAULT_REQUEST_TIMEOUT, Settings

# by import string, as several workers need: each builds its app from the settings it inherits
APP = "digitrec.server.app:app_from_env"


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    model: str | os.PathLike | None = None,
    db: str | os.PathLike | None = None,
    workers: int = 1,
    threads: int = 1,
    max_body_mb: float = 5,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    reading_threads: int = 2,
    reading_queue: int = 16,
    reading_processes: bool = True,
) -> int:
    """Serve until stopped (Ctrl-C, SIGTERM); what stops the start is a ConfigError (or
    ModelError) with one plain line."""
    if workers < 1 or threads < 1 or max_body_mb <= 0:
        raise ConfigError("--workers and --threads must be at least 1, --max-body-mb over 0")
    if request_timeout <= 0 or reading_threads < 1 or reading_queue < 0:
        raise ConfigError("the request timeout must be over 0, reading threads at least 1")
    # Say what is wrong here, once, rather than in every worker's start-up.
    model_path = resolve_model_path(model)
    db_path = Path(db).expanduser() if db else default_db_path()
    FeedbackStore(db_path).close()  # creates it, with its schema, before workers race to
    check_port(host, port)
    with terminated_cleanly(), ExitStack() as folders:
        settings = Settings(
            model=str(model_path),
            db=str(db_path),
            max_body=int(max_body_mb * 1024 * 1024),
            threads=threads,
            model_state=model_state_file(folders),
            request_timeout=float(request_timeout),
            reading_threads=reading_threads,
            reading_queue=reading_queue,
            reading_processes=reading_processes,
        )
        os.environ.update(settings.to_env())
        if workers > 1 and not os.environ.get(MULTIPROC_ENV):
            # each worker is a process: they share their counts through files here
            os.environ[MULTIPROC_ENV] = private_folder(folders, "digitrec-metrics-")
        announce(host, port, db_path)
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            http=DeadlineProtocol,  # deadlines and JSON errors below the app (protocol.py)
            ws="none",  # no route speaks WebSocket: no upgrade to take
            access_log=False,
            server_header=False,
            log_level="info",
        )
    return 0


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that the folders' clean-up runs."""


@contextmanager
def terminated_cleanly():
    """With one worker, uvicorn shuts down gracefully on SIGTERM and then raises the signal
    again for its default action, which ends the process before any `finally` or ExitStack
    runs (private folders were left in /tmp). Here that second SIGTERM unwinds the stack
    instead; once it has, the process still ends by SIGTERM, as a supervisor expects."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_port(host: str, port: int) -> None:
    """A taken port is one clear line, not a traceback from every worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}")


def private_folder(folders: ExitStack, prefix: str) -> str:
    """A new folder only this user can enter (mkdtemp makes it 0700), removed with `folders`."""
    path = tempfile.mkdtemp(prefix=prefix)
    folders.callback(shutil.rmtree, path, ignore_errors=True)
    return path


def model_state_file(folders: ExitStack) -> str | None:
    """With the admin route on, workers follow model changes through a file in a folder
    private to this server: whoever can write there can change its model."""
    if not os.environ.get(ADMIN_TOKEN_ENV):
        return None
    return str(Path(private_folder(folders, "digitrec-serve-")) / "model.json")


def announce(host: str, port: int, db: Path) -> None:
    shown = f"[{host}]" if ":" in host else host
    print(
        f"digitrec: serving http://{shown}:{port}/ (API docs at /docs); "
        f"feedback is stored in {db}; Ctrl-C stops",
        flush=True,
    )
    if os.environ.get(ADMIN_TOKEN_ENV):
        print(f"digitrec: ${ADMIN_TOKEN_ENV} is set: POST /api/admin/model changes the model")
