"""Memory of reading a picture built to cost memory: a 5000x5000 RGBA PNG, almost all of it
transparent (about 100 KB on the wire, 25 megapixels just under MAX_PIXELS), with one digit on it.

    python benchmarks/picture_memory.py [--side 5000] [--threads 4] [--rounds 4] [--burst 16]
        [--settle 5] [--no-server] [--server-env NAME=VALUE ...] [--json FILE]

1. One `to_mnist` call, in a fresh process: the peak of Python's own allocations (tracemalloc:
   NumPy's arrays, not Pillow's decoded picture) and the peak resident memory (VmHWM, reset
   just before the call), each next to the size of the bounded picture (the picture scaled
   down to WORK_SIDE, as float32), which is what the work should be proportional to.
2. `--threads` threads of one fresh process reading `--rounds` such pictures each, as a
   server's thread pool would: resident memory idle, at its peak, a second after, and after
   glibc's malloc_trim (what the allocator keeps for itself rather than what is in use).
3. A real `digitrec serve --workers 1` on a free local port: its resident memory (the server
   and every process it starts, summed) idle, at the peak of a burst of `--burst` such
   pictures posted at once to /api/predict, and `--settle` seconds after. `--server-env`
   gives both 2 and 3 extra environment (e.g. MALLOC_ARENA_MAX=2) to compare allocators.

Linux with glibc only (it reads /proc, calls malloc_trim). Prints Markdown tables; --json
also writes every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitrec.reading.preprocess import WORK_SIDE

MB = 2**20


def bomb(side: int) -> bytes:
    """A transparent side x side RGBA PNG with a dark 7 drawn in its middle third."""
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    a, b = side // 3, 2 * side // 3
    pen.line([(a, a), (b, a), (a + (b - a) // 3, b)], fill=(20, 20, 60, 255), width=side // 60)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def bounded_bytes(side: int) -> int:
    """The bytes of a side x side picture once scaled down to WORK_SIDE, as float32."""
    return min(side, WORK_SIDE) ** 2 * 4


# Runs in a fresh interpreter: one to_mnist call on the picture in argv[1], measured.
ONE_CALL = r"""
import json, sys, tracemalloc
import numpy as np
from digitrec.reading.preprocess import to_mnist

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024

data = open(sys.argv[1], "rb").read()
to_mnist(np.pad(np.eye(20), 4))  # imports and first-call set-up are not the picture's
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets VmHWM, the peak resident size, to the present size
before = status("VmRSS")
tracemalloc.start()
out = to_mnist(data)
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"rss_before": before, "rss_peak": status("VmHWM"), "traced_peak": traced,
                  "ink": float(out.sum())}))
"""


# Runs in a fresh interpreter: argv[2] threads each read the picture in argv[1] argv[3]
# times, as a server's thread pool would; the process's resident size is watched.
THREADS = r"""
import ctypes, json, sys, threading, time
import numpy as np
from digitrec.reading.preprocess import to_mnist

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024

data, threads, rounds = open(sys.argv[1], "rb").read(), int(sys.argv[2]), int(sys.argv[3])
to_mnist(np.pad(np.eye(20), 4))
idle, peak, done = rss(), 0, threading.Event()

def watch():
    global peak
    while not done.is_set():
        peak = max(peak, rss())
        time.sleep(0.01)

watcher = threading.Thread(target=watch)
watcher.start()
readers = [threading.Thread(target=lambda: [to_mnist(data) for _ in range(rounds)])
           for _ in range(threads)]
for t in readers:
    t.start()
for t in readers:
    t.join()
done.set()
watcher.join()
time.sleep(1)
after = rss()
ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand what the allocator keeps back to the system
print(json.dumps({"idle": idle, "peak": peak, "after": after, "trimmed": rss()}))
"""


def in_threads(data: bytes, threads: int, rounds: int, extra_env: dict[str, str]) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(data)
        f.flush()
        done = subprocess.run(
            [sys.executable, "-c", THREADS, f.name, str(threads), str(rounds)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, **extra_env},
        )
    return json.loads(done.stdout)


def one_call(data: bytes) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".png") as f:
        f.write(data)
        f.flush()
        done = subprocess.run(
            [sys.executable, "-c", ONE_CALL, f.name], capture_output=True, text=True, check=True
        )
    return json.loads(done.stdout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss(root: int) -> dict[int, int]:
    """Resident bytes of a process and each of its descendants, by process id (from /proc:
    no dependency beyond the project's own)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    family, frontier = {root}, [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        family.update(frontier)
    sizes = {}
    for pid in family:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes[pid] = int(line.split()[1]) * 1024
    return sizes


def post(url: str, data: bytes, timeout: float = 120) -> tuple[int, float]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "image/png"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read()
            status = answer.status
    except urllib.error.HTTPError as e:
        status = e.code
    return status, time.perf_counter() - start


def server_burst(data: bytes, burst: int, extra_env: dict[str, str], settle: float) -> dict:
    """Start `digitrec serve --workers 1`, post `burst` pictures at once, watch its memory."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    exe = Path(sys.executable).parent / "digitrec"
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [str(exe), "serve", "--workers", "1", "--port", str(port), "--db", f"{folder}/f.db"],
            env={**os.environ, **extra_env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            root = server.pid
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                        if r.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start: {server.stderr.read()[-2000:]}")
                time.sleep(0.2)
            small = io.BytesIO()
            Image.fromarray(np.pad(np.eye(20, dtype=np.uint8) * 255, 4)).save(small, "PNG")
            for _ in range(3):  # warm: reading processes started, model loaded
                post(f"{base}/api/predict", small.getvalue())
            time.sleep(2)
            idle = tree_rss(root)
            samples: list[dict[int, int]] = []
            stop = threading.Event()

            def watch():
                while not stop.is_set():
                    samples.append(tree_rss(root))
                    time.sleep(0.02)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            results: list[tuple[int, float]] = []
            start = time.perf_counter()
            senders = [
                threading.Thread(
                    target=lambda: results.append(post(f"{base}/api/predict", data)), daemon=True
                )
                for _ in range(burst)
            ]
            for t in senders:
                t.start()
            for t in senders:
                t.join()
            burst_s = time.perf_counter() - start
            time.sleep(settle)
            stop.set()
            watcher.join()
            after = tree_rss(root)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    statuses: dict[str, int] = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    pids = sorted(set(idle) | set(after) | {pid for sample in samples for pid in sample})
    return {
        "env": extra_env,
        "processes": len(pids),
        "idle": sum(idle.values()),
        "peak": max(sum(sample.values()) for sample in samples),
        "after": sum(after.values()),
        # each process: idle, its own peak, after (MB); shared pages count in each
        "by_process": {
            pid: [
                round(idle.get(pid, 0) / MB),
                round(max(sample.get(pid, 0) for sample in samples) / MB),
                round(after.get(pid, 0) / MB),
            ]
            for pid in pids
        },
        "settle_s": settle,
        "burst_s": burst_s,
        "statuses": statuses,
        "slowest_s": max(t for _, t in results),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=5000)
    parser.add_argument("--burst", type=int, default=16)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds to wait after it")
    parser.add_argument("--threads", type=int, default=4, help="readers in one process")
    parser.add_argument("--rounds", type=int, default=4, help="pictures each reader reads")
    parser.add_argument("--no-server", action="store_true")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    data = bomb(args.side)
    bounded = bounded_bytes(args.side)
    decoded = args.side * args.side * 4  # what Pillow holds for it decoded (RGBA)
    one = one_call(data)
    figures = {
        "picture": {"side": args.side, "bytes": len(data), "decoded_bytes": decoded},
        "bounded_bytes": bounded,
        "one_call": one,
    }
    print(
        f"picture: {args.side}x{args.side} RGBA PNG, {len(data) / 1024:.0f} KB; decoded "
        f"{decoded / MB:.0f} MB; bounded picture {bounded / MB:.2f} MB (float32)\n"
    )
    print("| one to_mnist call | MB | x bounded picture |")
    print("| --- | ---: | ---: |")
    traced, grown = one["traced_peak"], one["rss_peak"] - one["rss_before"]
    print(
        f"| peak of Python allocations (tracemalloc) | {traced / MB:.1f} | {traced / bounded:.1f} |"
    )
    print(f"| peak resident growth (VmHWM - VmRSS) | {grown / MB:.1f} | {grown / bounded:.1f} |")

    env = dict(item.split("=", 1) for item in args.server_env)
    threaded = in_threads(data, args.threads, args.rounds, env)
    figures["threads"] = {"threads": args.threads, "rounds": args.rounds, "env": env, **threaded}
    print(
        f"\n| {args.threads} threads of one process, {args.rounds} pictures each"
        f"{' (' + ' '.join(args.server_env) + ')' if args.server_env else ''} | MB |"
    )
    print("| --- | ---: |")
    for what, key in [
        ("idle", "idle"),
        ("peak", "peak"),
        ("1 s after", "after"),
        ("after malloc_trim(0)", "trimmed"),
    ]:
        print(f"| {what} | {threaded[key] / MB:.0f} |")

    if not args.no_server:
        burst = server_burst(data, args.burst, env, args.settle)
        figures["server"] = burst
        print(
            f"\n| digitrec serve --workers 1 ({burst['processes']} processes"
            f"{', ' + ' '.join(args.server_env) if args.server_env else ''}) | MB |"
        )
        print("| --- | ---: |")
        print(f"| idle | {burst['idle'] / MB:.0f} |")
        print(f"| peak during {args.burst} pictures at once | {burst['peak'] / MB:.0f} |")
        print(f"| {args.settle:g} s after the last answer | {burst['after'] / MB:.0f} |")
        print(
            f"\nanswers {burst['statuses']}; burst took {burst['burst_s']:.1f} s, slowest "
            f"answer {burst['slowest_s']:.1f} s; by process (idle, peak, after, MB): "
            + ", ".join(str(v) for v in burst["by_process"].values())
        )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    figures["machine"] = (
        f"{platform.platform()}, {os.cpu_count()} CPUs; Python {platform.python_version()}; {stamp}"
    )
    print(f"\n{figures['machine']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
