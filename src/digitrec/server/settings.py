"""The settings of one server, and how `digitrec serve` hands them to its workers: uvicorn
starts each worker from an import string, so they travel in the environment, as JSON."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass

DEFAULT_MAX_BODY = 5 * 1024 * 1024
# a request must be in (head and body) this many seconds after its first byte, or its
# connection is closed: the page's drawings are a few kilobytes, a 5 MiB photo needs about
# 4 Mbit/s; a client that trickles (or never ends its headers) holds nothing for long
DEFAULT_REQUEST_TIMEOUT = 10.0
CONFIG_ENV = "DIGITREC_SERVE_CONFIG"
ADMIN_TOKEN_ENV = "DIGITREC_ADMIN_TOKEN"  # unset or empty: no admin route at all


@dataclass
class Settings:
    model: str | None = None
    db: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    threads: int | None = 1  # ONNX Runtime threads per worker: one image is too small to split
    model_state: str | None = None  # the file through which workers follow a model change
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    # pictures each worker reads at once (more would only share the same cores, each
    # holding a decoded picture), how many more may wait for a turn (beyond: 503 busy),
    # and whether they are read in processes of their own (server/work.py says why)
    reading_threads: int = 2
    reading_queue: int = 16
    reading_processes: bool = True

    def to_env(self) -> dict[str, str]:
        return {CONFIG_ENV: json.dumps(asdict(self))}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(**json.loads(environ.get(CONFIG_ENV) or "{}"))
