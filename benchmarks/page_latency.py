"""How long the drawing page takes to show its answer once the pen lifts, in headless Chromium
(Debian's) against a real `digitrec serve`, as a user draws: the mouse moves in steps.

    python benchmarks/page_latency.py [--n 20] [--json]

Draws a 1 on the digit pad and "17" on the number pad, `--n` times each in a fresh page,
and times, in the page's own clock, from the last stroke's pointerup to the moment the
page is no longer busy (`#result[data-busy=0]`: the newest reading asked for is the one on
screen) with the right answer. Prints the median, p90 and maximum of each, and the time
the server spent on the last reading (its `elapsed_ms`), so what the page itself adds is
plain. Needs Playwright and `apt-get install chromium`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright
from serve_load import free_port, stamp, stop, wait_ready

CHROMIUM = "/usr/bin/chromium"
# strokes as fractions of the pad, as tests/test_browser.py draws them
ONE = [[(0.5, 0.14), (0.5, 0.86)]]
ONE_SEVEN = [[(0.2, 0.18), (0.2, 0.84)], [(0.45, 0.2), (0.76, 0.2), (0.56, 0.86)]]

# In the page: the time of each pointerup on the pad, and of each change of data-busy to 0.
WATCH = """
window.__ups = [];
window.__idle = [];
addEventListener("DOMContentLoaded", () => {
  document.getElementById("pad").addEventListener(
    "pointerup", () => __ups.push(performance.now()), true);
  const result = document.getElementById("result");
  new MutationObserver(() => {
    if (result.dataset.busy === "0") __idle.push(performance.now());
  }).observe(result, { attributes: true, attributeFilter: ["data-busy"] });
});
"""


def draw(page, strokes) -> None:
    box = page.locator("#pad").bounding_box()
    for n, stroke in enumerate(strokes, 1):
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=12)
        page.mouse.up()
        expect(page.locator("#stage")).to_have_attribute("data-strokes", str(n))


def one_draw(browser, url: str, mode: str, strokes, answer: str) -> tuple[float, float]:
    """Milliseconds from the last pointerup to the page at rest with `answer`, and the
    server's time on the last reading."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.add_init_script(WATCH)
    page = context.new_page()
    last = {}
    page.on(
        "response",
        lambda r: "/api/" in r.url and last.__setitem__("response", r),
    )
    page.goto(url + "/")
    if mode == "number":
        page.click("label[for=mode-number]")
        expect(page.locator("#stage")).to_have_attribute("data-mode", "number")
    draw(page, strokes)
    expect(page.locator("#answer")).to_have_text(answer, timeout=30_000)
    expect(page.locator("#result")).to_have_attribute("data-busy", "0", timeout=30_000)
    expect(page.locator("#answer")).to_have_text(answer)
    up = page.evaluate("__ups[__ups.length - 1]")
    idle = page.evaluate("(up) => __idle.filter((t) => t >= up)", up)
    server_ms = last["response"].json()["elapsed_ms"]
    context.close()
    return idle[0] - up, server_ms


def summary(values: list[float]) -> dict:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20, help="draws per pad")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("Chromium is not installed: apt-get install chromium")

    digitrec = Path(sys.executable).parent / "digitrec"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    report = {**stamp(), "draws": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        serve = [str(digitrec), "serve", "--port", str(port), "--db", f"{tmp}/feedback.sqlite3"]
        proc = subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(url, proc)
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                one_draw(browser, url, "digit", ONE, "1")  # warm-up
                for mode, strokes, answer in (("digit", ONE, "1"), ("number", ONE_SEVEN, "17")):
                    runs = [one_draw(browser, url, mode, strokes, answer) for _ in range(args.n)]
                    report[mode] = {
                        "pen_up_to_answer": summary([r[0] for r in runs]),
                        "server_median_ms": round(statistics.median(r[1] for r in runs), 1),
                    }
                browser.close()
        finally:
            stop(proc)

    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['date']} on {report['machine']}, {args.n} draws per pad")
    for mode in ("digit", "number"):
        r = report[mode]
        t = r["pen_up_to_answer"]
        print(
            f"{mode:6s} pen up -> answer at rest: median {t['median_ms']} ms, "
            f"p90 {t['p90_ms']} ms, max {t['max_ms']} ms "
            f"(server's reading: median {r['server_median_ms']} ms)"
        )


if __name__ == "__main__":
    main()
