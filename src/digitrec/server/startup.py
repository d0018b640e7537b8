"""Starting the server (`digitrec serve`): what is checked before any worker starts, the
folders the workers share, and uvicorn. The CLI only turns its arguments into `serve(...)`."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from contextlib import ExitStack
from pathlib import Path

import uvicorn

from ..errors import ConfigError
from ..feedback import FeedbackStore, default_db_path
from ..reading.predictor import resolve_model_path
from .metrics import MULTIPROC_ENV
from .settings import ADMIN_TOKEN_ENV, Settings

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
) -> int:
    """Serve until stopped (Ctrl-C); what stops the start is a ConfigError (or ModelError)
    with one plain line."""
    if workers < 1 or threads < 1 or max_body_mb <= 0:
        raise ConfigError("--workers and --threads must be at least 1, --max-body-mb over 0")
    # Say what is wrong here, once, rather than in every worker's start-up.
    model_path = resolve_model_path(model)
    db_path = Path(db).expanduser() if db else default_db_path()
    FeedbackStore(db_path).close()  # creates it, with its schema, before workers race to
    check_port(host, port)
    with ExitStack() as folders:
        settings = Settings(
            model=str(model_path),
            db=str(db_path),
            max_body=int(max_body_mb * 1024 * 1024),
            threads=threads,
            model_state=model_state_file(folders),
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
            access_log=False,
            server_header=False,
            log_level="info",
        )
    return 0


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
