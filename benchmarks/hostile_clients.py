"""Hostile and careless clients against a real `digitrec serve` on loopback: does the server
stay responsive, and does it let go of what they hold?

    python benchmarks/hostile_clients.py [--workers 1] [--uploads 8] [--duration 10]
        [--slow 300] [--json]

Starts `digitrec serve` (one worker by default: the worst case, one event loop for
everything) on a free port of 127.0.0.1 with a throw-away feedback database, then:

1. slow uploads: `--uploads` clients each post a 1000x1000 noise PNG (about 1 MB, the
   largest picture once read on the event loop) to /api/predict, again and again, for
   `--duration` seconds, while /healthz is asked every 20 ms on a kept-alive connection.
   Floor: /healthz p99 <= 50 ms, no 5xx but 503 busy.
2. slow clients: `--slow` connections that never finish (a third send nothing, a third
   half a head, a third a head and half a body). Floor: every one closed by the server
   within its request timeout (10 s) + 3 s, /healthz still answering meanwhile.
3. clients that leave mid-body: 20 uploads cut off after their head and 1 kB. Floor: no
   500 in /metrics, no traceback in the server's log.

Every loop here ends by itself: by its duration, its count or a deadline.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from PIL import Image
from serve_load import (
    BOUNDARY,
    _cpu_ticks,
    free_port,
    multipart,
    others_busy,
    stamp,
    stop,
    wait_ready,
)

HOST = "127.0.0.1"  # never anything but loopback
REQUEST_TIMEOUT = 10.0  # digitrec serve's default (server/settings.py)


def noise_png(size: int = 1000, seed: int = 0) -> bytes:
    """Grey noise compresses to nothing: a 1000x1000 PNG of it is about 1 MB, and decoding
    and reading it is the most work one picture under the megapixel mark asks for."""
    image = Image.effect_noise((size, size), 64 + seed)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Prober(threading.Thread):
    """/healthz every `every` seconds on one kept-alive connection, until stopped."""

    def __init__(self, port: int, every: float = 0.02):
        super().__init__(daemon=True)
        self.port, self.every = port, every
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.failures: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("GET", "/healthz")
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    self.failures.append(str(r.status))
                self.latencies.append(1000 * (time.perf_counter() - started))
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
            self.stop.wait(self.every)
        conn.close()

    def summary(self) -> dict:
        lat = self.latencies
        return {
            "probes": len(lat),
            "median_ms": round(statistics.median(lat), 2) if lat else None,
            "p99_ms": round(percentile(lat, 0.99), 2),
            "max_ms": round(max(lat), 2) if lat else None,
            "failures": self.failures[:5],
        }


def slow_uploads(port: int, uploads: int, seconds: float) -> dict:
    body = multipart(noise_png())
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    statuses: dict[int, int] = {}
    times: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/predict", body, headers)
                r = conn.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException):
                status = -1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    times.append(time.perf_counter() - started)
        conn.close()

    prober = Prober(port)
    prober.start()
    time.sleep(0.5)  # the probe's baseline, before the uploads start
    threads = [threading.Thread(target=client, daemon=True) for _ in range(uploads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    prober.stop.set()
    prober.join(15)
    return {
        "png_bytes": len(body),
        "uploads_in_flight": uploads,
        "seconds": seconds,
        "upload_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "upload_median_s": round(statistics.median(times), 3) if times else None,
        "healthz": prober.summary(),
    }


def slow_clients(port: int, count: int, timeout: float) -> dict:
    """`count` connections that never finish; how long until the server closes each."""
    kinds = [
        b"",
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
        b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
        b"Content-Length: 100000\r\n\r\n\x89PNG\r\n\x1a\n",
    ]
    selector = selectors.DefaultSelector()
    opened = time.monotonic()
    socks = []
    for i in range(count):
        s = socket.create_connection((HOST, port), timeout=10)
        s.sendall(kinds[i % 3])
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ, (i % 3, time.monotonic()))
        socks.append(s)
    opened_in = time.monotonic() - opened
    prober = Prober(port, every=0.05)
    prober.start()
    closed: dict[int, list[float]] = {0: [], 1: [], 2: []}
    answers: dict[str, int] = {}
    deadline = time.monotonic() + timeout + 5
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            kind, since = key.data
            try:
                data = key.fileobj.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                if data.startswith(b"HTTP/"):  # an answer's first bytes; the rest may follow
                    status = data.split(b" ", 2)[1].decode()
                    answers[status] = answers.get(status, 0) + 1
                continue
            closed[kind].append(time.monotonic() - since)
            selector.unregister(key.fileobj)
    still_open = len(selector.get_map())
    for s in socks:
        s.close()
    prober.stop.set()
    prober.join(15)
    names = ("nothing sent", "half a head", "head and half a body")
    return {
        "connections": count,
        "opened_in_s": round(opened_in, 2),
        "request_timeout_s": timeout,
        "still_open_after": {"seconds": timeout + 5, "count": still_open},
        "closed_after_s": {
            names[k]: [round(min(v), 2), round(max(v), 2)] if v else None for k, v in closed.items()
        },
        "answers": answers,
        "healthz_meanwhile": prober.summary(),
    }


def leave_mid_body(port: int, count: int = 20) -> None:
    for _ in range(count):
        with socket.create_connection((HOST, port), timeout=10) as s:
            s.sendall(
                b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
                b"Content-Length: 100000\r\n\r\n\x89PNG\r\n\x1a\n" + bytes(1000)
            )
            time.sleep(0.05)  # the head is in and the app is waiting for the rest


def metric_sum(text: str, status: str) -> float:
    pattern = rf'^digitrec_http_requests_total\{{[^}}]*status="{status}"[^}}]*\}} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, text, re.M))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1, help="digitrec serve --workers")
    parser.add_argument("--uploads", type=int, default=8, help="slow uploads in flight")
    parser.add_argument("--duration", type=float, default=10, help="seconds of slow uploads")
    parser.add_argument("--slow", type=int, default=300, help="connections that never finish")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument(
        "--serve-kwargs",
        metavar="JSON",
        help="start the server through digitrec.server.startup.serve(**JSON) instead of the "
        "command line, for settings it has no option for (reading_threads, ...)",
    )
    parser.add_argument(
        "--only", choices=("uploads", "clients", "leave"), help="run one of the three parts"
    )
    args = parser.parse_args()

    digitrec = Path(sys.executable).parent / "digitrec"
    port = free_port()
    url = f"http://{HOST}:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "serve.log"
        db = str(Path(tmp) / "feedback.sqlite3")
        serve = [str(digitrec), "serve", "--host", HOST, "--port", str(port)]
        serve += ["--db", db, "--workers", str(args.workers)]
        if args.serve_kwargs:
            kwargs = {**json.loads(args.serve_kwargs), "host": HOST, "port": port, "db": db}
            kwargs["workers"] = args.workers
            code = "import json, sys; from digitrec.server.startup import serve; "
            code += "sys.exit(serve(**json.loads(sys.argv[1])))"
            serve = [sys.executable, "-c", code, json.dumps(kwargs)]
        with open(log, "w") as out:
            proc = subprocess.Popen(serve, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_ready(url, proc)
            ours = {proc.pid, os.getpid()}
            before = _cpu_ticks()
            started = time.monotonic()
            uploads = clients = None
            if args.only in (None, "uploads"):
                uploads = slow_uploads(port, args.uploads, args.duration)
            if args.only in (None, "clients"):
                clients = slow_clients(port, args.slow, REQUEST_TIMEOUT)
            if args.only in (None, "leave"):
                leave_mid_body(port)
            time.sleep(0.5)
            with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
                metrics = r.read().decode()
            others = others_busy(before, _cpu_ticks(), time.monotonic() - started, ours)
        finally:
            stop(proc)
        text = log.read_text()

    floors, lines = {}, []
    if uploads:
        statuses, h = uploads["upload_statuses"], uploads["healthz"]
        floors["healthz p99 <= 50 ms with slow uploads in flight"] = h["p99_ms"] <= 50
        floors["no 5xx but 503 busy, no dropped upload"] = all(
            s in ("200", "503") for s in statuses
        )
        lines += [
            f"slow uploads: {args.uploads} x {uploads['png_bytes']:,}-byte noise PNG for "
            f"{args.duration:g} s: statuses {statuses}, median {uploads['upload_median_s']} s",
            f"  /healthz meanwhile: {h['probes']} probes, median {h['median_ms']} ms, "
            f"p99 {h['p99_ms']} ms, max {h['max_ms']} ms, failures {h['failures']}",
        ]
    if clients:
        closed, hc = clients["closed_after_s"], clients["healthz_meanwhile"]
        floors["every slow client closed in time"] = clients["still_open_after"][
            "count"
        ] == 0 and all(v is not None and v[1] <= REQUEST_TIMEOUT + 3 for v in closed.values())
        floors["healthz answered among slow clients"] = not hc["failures"]
        lines += [
            f"slow clients: {clients['connections']} opened in {clients['opened_in_s']} s; "
            f"closed after (min, max s) {closed}; still open at +{REQUEST_TIMEOUT + 5:g} s: "
            f"{clients['still_open_after']['count']}; answers {clients['answers']}",
            f"  /healthz meanwhile: p99 {hc['p99_ms']} ms, failures {hc['failures']}",
        ]
    gone = None
    if args.only in (None, "leave"):
        gone = {
            "counted_499": metric_sum(metrics, "499"),
            "counted_500": metric_sum(metrics, "500"),
            "tracebacks_in_log": text.count("Traceback"),
        }
        floors["no 500 and no traceback for clients that leave"] = (
            gone["counted_500"] == 0 and gone["tracebacks_in_log"] == 0
        )
        lines.append(f"clients that left mid-body: {gone}")
    report = {
        **stamp(),
        "command": f"digitrec serve --workers {args.workers}"
        if not args.serve_kwargs
        else f"serve(**{args.serve_kwargs}), workers={args.workers}",
        "slow_uploads": uploads,
        "slow_clients": clients,
        "leave_mid_body": gone,
        "other_processes": others,
        "floors": floors,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['date']}  {report['machine']}  server: {report['command']}")
        print("\n".join(lines))
        print(f"other processes meanwhile: {others}")
        for name, ok in floors.items():
            print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    sys.exit(0 if all(floors.values()) else 1)


if __name__ == "__main__":
    main()
