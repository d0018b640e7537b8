"""Prometheus metrics: requests by route and status, latency, digits read, refusals.

With several workers (`digitrec serve --workers N`) each worker is its own process; the
start-up (startup.py) then sets PROMETHEUS_MULTIPROC_DIR so that every worker's counts are
summed in /metrics.
"""

from __future__ import annotations

import os
from time import perf_counter

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

# a canvas answer takes a few milliseconds; photos and numbers take longer
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own name for it
disable_created_metrics()  # the *_created series only double the size of every scrape


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class Metrics:
    def __init__(self):
        # one registry per app, so that several apps (tests) do not share counts
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "digitrec_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "digitrec_http_request_duration_seconds",
            "time from request to response, by route",
            ["route"],
            buckets=BUCKETS,
            registry=r,
        )
        self.digits = Counter(
            "digitrec_predictions", "digits read (not refused), by digit", ["digit"], registry=r
        )
        self.refusals = Counter(
            "digitrec_refusals", "answers refused, by reason", ["reason"], registry=r
        )
        self.feedback = Counter("digitrec_feedback_samples", "corrected samples stored", registry=r)

    def request(self, route: str, method: str, status: int, started: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(perf_counter() - started)

    def reading(self, digit: int | None, refused: bool, reason: str | None) -> None:
        if refused:
            self.refusals.labels(reason or "unsure").inc()
        else:
            self.digits.labels(str(digit)).inc()

    def exposition(self) -> bytes:
        if multiprocess():
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
