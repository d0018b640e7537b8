"""Load on `digitrec serve`: single-digit predictions of a 280x280 canvas PNG, as the page
sends them, with wrk (a real load generator: `apt-get install wrk`) on the same machine.

    python benchmarks/serve_load.py [--workers 2] [--duration 15] [--json]

Starts `digitrec serve` on a free port with a throw-away feedback database, checks that the
canvas reads as a 7, warms up, then measures at concurrency 1 and 16 (keep-alive
connections, multipart uploads) and prints the median, p99, requests/s and errors of each,
against the floors: c=1 median <= 5 ms; c=16 >= 300 requests/s, p99 <= 100 ms, no errors.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from PIL import Image, ImageDraw

BOUNDARY = "digitrec-bench-boundary"

# wrk's Lua: post the same multipart body on every request; print the figures as JSON
LUA = r"""
local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "multipart/form-data; boundary={boundary}"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {{"requests": %d, "seconds": %.3f, "median_ms": %.3f, "p90_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f, "non_2xx": %d, "socket_errors": %d}}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def canvas_png() -> bytes:
    """A 7 drawn on the page's 280x280 pad: black pen (1/16 of the height) on white, RGBA."""
    image = Image.new("RGBA", (280, 280), (255, 255, 255, 255))
    ImageDraw.Draw(image).line(
        [(70, 56), (210, 56), (118, 238)], fill=(0, 0, 0, 255), width=18, joint="curve"
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def multipart(png: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="canvas.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    return head + png + f"\r\n--{BOUNDARY}--\r\n".encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Stop a server as Ctrl-C would, and for good if it does not stop."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def stamp() -> dict:
    """When and on what a benchmark ran, for its report."""
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
    }


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"digitrec serve stopped with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"digitrec serve was not ready in {timeout} s")


def check_answer(url: str, body: bytes) -> dict:
    request = urllib.request.Request(
        url + "/api/predict",
        body,
        {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        answer = json.loads(r.read())
    if answer["digit"] != 7 or answer["refused"]:
        sys.exit(f"the benchmark canvas should read as 7, not {answer}")
    return answer


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict:
    threads = min(connections, 2)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / result["seconds"]
    result["errors"] = result["non_2xx"] + result["socket_errors"]
    return result


def _cpu_ticks() -> dict[int, tuple[int, int, str]]:
    """CPU ticks used so far, parent pid and command line of every process."""
    ticks = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            raw = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        ticks[int(stat.parent.name)] = (
            int(fields[11]) + int(fields[12]),
            int(fields[1]),
            cmdline.strip(),
        )
    return ticks


def others_busy(before: dict, after: dict, seconds: float, ours: set[int]) -> str:
    """Other processes that used over 10% of a core between two samples: figures taken on a
    busy machine mean little, so every measurement says what else ran during it."""
    hz = os.sysconf("SC_CLK_TCK")
    ours = set(ours)
    ours |= {pid for pid, (_, parent, _) in after.items() if parent in ours}
    busy = []
    for pid, (ticks, _, cmdline) in after.items():
        used = (ticks - before.get(pid, (ticks,))[0]) / hz / seconds
        if pid not in ours and used > 0.1 and "wrk" not in cmdline.split()[:1]:
            busy.append(f"{100 * used:.0f}% {cmdline[:70]}")
    return "; ".join(busy) or "nothing"


def measure(url: str, script: Path, connections: int, seconds: int, ours: set[int]) -> dict:
    before = _cpu_ticks()
    result = wrk(url, script, connections, seconds)
    result["others"] = others_busy(before, _cpu_ticks(), result["seconds"], ours)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="digitrec serve --workers")
    parser.add_argument("--threads", type=int, default=1, help="digitrec serve --threads")
    parser.add_argument("--duration", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    digitrec = Path(sys.executable).parent / "digitrec"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        png = canvas_png()
        body = Path(tmp) / "body.bin"
        body.write_bytes(multipart(png))
        script = Path(tmp) / "post.lua"
        script.write_text(LUA.format(body=body, boundary=BOUNDARY))
        serve = [
            str(digitrec),
            "serve",
            "--port",
            str(port),
            "--db",
            str(Path(tmp) / "feedback.sqlite3"),
            "--workers",
            str(args.workers),
            "--threads",
            str(args.threads),
        ]
        proc = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(url, proc)
            check_answer(url, body.read_bytes())
            target = url + "/api/predict"
            wrk(target, script, 16, 3)  # warm-up: every worker, every code path
            ours = {proc.pid, os.getpid()}
            c1 = measure(target, script, 1, args.duration, ours)
            c16 = measure(target, script, 16, args.duration, ours)
        finally:
            stop(proc)

    floors = {
        "c1 median <= 5 ms": c1["median_ms"] <= 5,
        "c16 >= 300 requests/s": c16["rps"] >= 300,
        "c16 p99 <= 100 ms": c16["p99_ms"] <= 100,
        "c16 no errors": c16["errors"] == 0 and c1["errors"] == 0,
    }
    report = {
        **stamp(),
        "command": " ".join(["digitrec", *serve[1:3], "PORT", *serve[6:]]),
        "picture": f"280x280 canvas PNG, {len(png)} bytes, multipart",
        "c1": c1,
        "c16": c16,
        "floors": floors,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{report['date']}  {report['machine']}  ({report['picture']})")
        print(f"server: {report['command']}")
        print(f"load: wrk, keep-alive connections, {args.duration} s each")
        print(f"{'':4} {'req/s':>8} {'median':>9} {'p90':>9} {'p99':>9} {'max':>9} {'errors':>7}")
        for name, r in (("c=1", c1), ("c=16", c16)):
            print(
                f"{name:4} {r['rps']:8.0f} {r['median_ms']:7.2f}ms {r['p90_ms']:7.2f}ms "
                f"{r['p99_ms']:7.2f}ms {r['max_ms']:7.1f}ms {r['errors']:7d}"
            )
        for name, r in (("c=1", c1), ("c=16", c16)):
            print(f"  other processes during {name}: {r['others']}")
        for name, ok in floors.items():
            print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    sys.exit(0 if all(floors.values()) else 1)


if __name__ == "__main__":
    main()
