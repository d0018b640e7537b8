"""The drawing page in headless Chromium (Debian's), against a real `digitrec serve`.

Strokes are drawn with the mouse (and, on the phone, with touch), as a user would; the
screenshots are kept in test-artifacts/."""

from __future__ import annotations

import base64
import io
import shutil
import sqlite3
from pathlib import Path

import pytest
from helpers import EXAMPLES, ROOT
from PIL import Image
from playwright.sync_api import expect, sync_playwright
from test_server import running_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

# strokes as fractions of the pad: large and clear, as the bundled model likes them
ONE = [[(0.5, 0.14), (0.5, 0.86)]]
SEVEN = [[(0.24, 0.2), (0.76, 0.2), (0.44, 0.86)]]
# on the number pad (twice as wide as high): a 1 and a 7, well apart
ONE_SEVEN = [[(0.2, 0.18), (0.2, 0.84)], [(0.45, 0.2), (0.76, 0.2), (0.56, 0.86)]]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("browser") / "feedback.sqlite3"
    with running_server(db) as url:
        yield url, db


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install chromium"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


def open_page(browser, url, **context):
    ctx = browser.new_context(**({"viewport": DESKTOP} | context))
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.errors = errors
    return page


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server[0])
    yield page
    assert page.errors == []
    page.context.close()


def stroke_done(page, count: int):
    """Wait until the pad holds `count` strokes and none is open, as a hand would before the
    next one: events sent faster than the page takes them would test the test, not the page."""
    expect(page.locator("#stage")).to_have_attribute("data-strokes", str(count))
    expect(page.locator("#stage")).to_have_attribute("data-drawing", "0")


def strokes_on(page) -> int:
    return int(page.locator("#stage").get_attribute("data-strokes") or 0)


def draw(page, strokes, steps: int = 12):
    box = page.locator("#pad").bounding_box()
    before = strokes_on(page)
    for n, stroke in enumerate(strokes, 1):
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=steps)
        page.mouse.up()
        stroke_done(page, before + n)


def settled(page, answer: str):
    """The answer on screen, once no reading is in flight."""
    expect(page.locator("#answer")).to_have_text(answer)
    expect(page.locator("#result")).to_have_attribute("data-busy", "0")
    expect(page.locator("#answer")).to_have_text(answer)


def shot(page, name: str, full_page: bool = False):
    page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=full_page)


def test_draw_a_1_and_a_7(page):
    draw(page, ONE)
    settled(page, "1")
    shot(page, "digit-1")
    page.click("#clear")
    settled(page, "Nothing to read yet")
    draw(page, SEVEN)
    settled(page, "7")
    assert "sure" in page.inner_text("#detail") and "ms" in page.inner_text("#detail")
    # a bar for each class, the read one marked; the 28x28 picture the model saw, enlarged
    bars = page.locator("#bars li")
    expect(bars).to_have_count(10)
    expect(page.locator("#bars li.best")).to_have_text("7100%")
    page.wait_for_timeout(200)  # the bars' short transition
    track = page.locator("#bars li.best .track").bounding_box()["width"]
    assert page.locator("#bars li.best .fill").bounding_box()["width"] >= 0.9 * track
    assert page.locator("#bars li").nth(1).locator(".fill").bounding_box()["width"] < 0.05 * track
    seen = page.locator("#seen")
    expect(seen).to_be_visible()
    assert seen.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [28, 28]
    assert seen.bounding_box()["width"] >= 4 * 28
    shot(page, "digit-7")


def test_the_reading_updates_while_drawing(page):
    box = page.locator("#pad").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.14 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.86 * box["height"], steps=10)
    # the pen is still down: the answer comes all the same
    expect(page.locator("#answer")).to_have_text("1")
    page.mouse.up()
    settled(page, "1")


def test_a_stale_answer_never_overwrites_a_newer_one(browser, server):
    page = open_page(browser, server[0])
    # hold back the first answer the page gets, until after a newer one is on screen
    page.evaluate(
        """() => {
        const fetch0 = window.fetch; let first = true;
        window.fetch = async (...args) => {
          const response = await fetch0(...args);
          if (first && String(args[0]).includes('/api/predict')) {
            first = false;
            document.body.dataset.held = 'yes';
            await new Promise(r => setTimeout(r, 2500));
            document.body.dataset.held = 'released';
          }
          return response;
        };
      }"""
    )
    draw(page, ONE)
    body = page.locator("body")
    expect(body).to_have_attribute("data-held", "yes")
    page.keyboard.press("Escape")
    draw(page, SEVEN)
    settled(page, "7")
    expect(body).to_have_attribute("data-held", "released", timeout=10_000)
    page.wait_for_timeout(300)
    expect(page.locator("#answer")).to_have_text("7")
    assert page.errors == []
    page.context.close()


def test_undo_clear_and_keys(page):
    draw(page, ONE)
    settled(page, "1")
    draw(page, [[(0.2, 0.5), (0.8, 0.5)]])  # a cross-bar over the 1
    expect(page.locator("#answer")).not_to_have_text("1")
    page.keyboard.press("Control+z")
    settled(page, "1")
    page.click("#undo")
    settled(page, "Nothing to read yet")
    draw(page, SEVEN)
    settled(page, "7")
    page.keyboard.press("Escape")
    settled(page, "Nothing to read yet")
    page.keyboard.press("m")
    expect(page.locator("#mode-number")).to_be_checked()
    page.keyboard.press("m")
    expect(page.locator("#mode-digit")).to_be_checked()


def test_a_number_is_read_with_each_digit_boxed(page):
    page.click("label[for=mode-number]")
    expect(page.locator("#stage")).to_have_attribute("data-mode", "number")
    draw(page, ONE_SEVEN)
    settled(page, "17")
    chips = page.locator("#digits button")
    expect(chips).to_have_count(2)
    assert "%" in chips.nth(0).inner_text() and "%" in chips.nth(1).inner_text()
    # the boxes are drawn over the pad
    inked = page.evaluate(
        """() => {
        const c = document.getElementById('overlay');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n;
      }"""
    )
    assert inked > 500
    shot(page, "number-17")


def test_upload_in_either_mode(page):
    page.set_input_files("#file", str(EXAMPLES / "3-photo.jpg"))
    settled(page, "3")
    expect(page.locator("#stage")).to_have_class("stage inked")
    shot(page, "upload-photo-3")
    page.click("label[for=mode-number]")
    page.set_input_files("#file", str(EXAMPLES / "numbers" / "4096.png"))
    settled(page, "4096")
    expect(page.locator("#digits button")).to_have_count(4)
    shot(page, "upload-number-4096")


def test_drag_and_drop_a_photo(page):
    blob = base64.b64encode((EXAMPLES / "7-photo.jpg").read_bytes()).decode()
    transfer = page.evaluate_handle(
        """(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], '7-photo.jpg', {type: 'image/jpeg'}));
        return dt;
      }""",
        blob,
    )
    page.dispatch_event("#stage", "dragover", {"dataTransfer": transfer})
    expect(page.locator("#stage")).to_have_class("stage dragging")
    page.dispatch_event("#stage", "drop", {"dataTransfer": transfer})
    settled(page, "7")


def test_a_blank_picture_is_refused_in_plain_words(page, tmp_path):
    blank = tmp_path / "blank.png"
    Image.new("RGB", (200, 200), "white").save(blank)
    page.set_input_files("#file", str(blank))
    settled(page, "The picture is blank")
    expect(page.locator("#result")).to_have_attribute("data-state", "refused")
    expect(page.locator("#bars li.best")).to_have_count(0)  # no guess is shown
    # a blank number has no digit to carry the words: the page has them from the server
    page.click("label[for=mode-number]")
    expect(page.locator("#result")).to_have_attribute("data-mode", "number")
    settled(page, "The picture is blank")
    not_a_picture = tmp_path / "notes.txt"
    not_a_picture.write_text("not a picture")
    page.set_input_files("#file", str(not_a_picture))
    expect(page.locator("#status")).to_contain_text("not a picture")


def stored(db: Path, sample_id: int) -> tuple[int, int | None, Image.Image]:
    with sqlite3.connect(db) as conn:
        label, predicted, png = conn.execute(
            "SELECT label, predicted, png FROM feedback WHERE id = ?", (sample_id,)
        ).fetchone()
    return label, predicted, Image.open(io.BytesIO(png))


def test_feedback_is_saved_in_the_database(page, server):
    _, db = server
    draw(page, ONE)
    settled(page, "1")
    page.get_by_role("button", name="It was a 4").click()
    status = page.locator("#feedback-status")
    expect(status).to_contain_text("Saved as a 4")
    label, predicted, image = stored(db, int(status.get_attribute("data-id")))
    assert (label, predicted, image.size) == (4, 1, (280, 280))

    # in number mode, one digit is picked and corrected: its crop is saved
    page.click("label[for=mode-number]")
    page.keyboard.press("Escape")
    draw(page, ONE_SEVEN)
    settled(page, "17")
    expect(page.get_by_role("button", name="It was a 9")).to_be_disabled()
    page.locator("#digits button").nth(1).click()
    page.get_by_role("button", name="It was a 9").click()
    expect(status).to_contain_text("Saved as a 9")
    label, predicted, image = stored(db, int(status.get_attribute("data-id")))
    assert (label, predicted) == (9, 7)
    assert image.width < 280 and image.height < 280 * 1.5
    shot(page, "feedback")


def contrast(page, selector: str) -> float:
    return page.locator(selector).first.evaluate(
        """el => {
        const rgb = s => s.match(/[\\d.]+/g).slice(0, 4).map(Number);
        const lum = ([r, g, b]) => {
          const f = c => (c /= 255) <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
          return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        let bg = el, c;
        while (bg) {
          c = rgb(getComputedStyle(bg).backgroundColor);
          if (c.length < 4 || c[3] > 0) break;
          bg = bg.parentElement;
        }
        const a = lum(rgb(getComputedStyle(el).color)), b = lum(c);
        return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      }"""
    )


def test_controls_are_labelled_and_text_is_readable(page):
    draw(page, SEVEN)
    settled(page, "7")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('button, input, canvas[tabindex], a')]
          .filter(el => !(el.getAttribute('aria-label') || el.textContent.trim()
                         || (el.labels && el.labels.length)))
          .map(el => el.outerHTML)"""
    )
    assert unlabelled == []
    for selector in ("#answer", "#detail", ".keys", ".note", "#clear", "footer", ".bars .pct"):
        assert contrast(page, selector) >= 4.5, selector


def touch_draw(page, strokes):
    """Draw with a finger: touch events through the DevTools protocol."""
    cdp = page.context.new_cdp_session(page)
    box = page.locator("#pad").bounding_box()
    before = strokes_on(page)
    for n, stroke in enumerate(strokes, 1):
        points = []
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:], strict=False):
            points += [(x0 + (x1 - x0) * t / 12, y0 + (y1 - y0) * t / 12) for t in range(12)]
        points.append(stroke[-1])
        for i, (x, y) in enumerate(points):
            kind = "touchStart" if i == 0 else "touchMove"
            at = {"x": box["x"] + x * box["width"], "y": box["y"] + y * box["height"]}
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [at]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        stroke_done(page, before + n)
    cdp.detach()


def test_the_page_fits_a_phone_and_reads_a_finger(browser, server):
    page = open_page(
        browser,
        server[0],
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    pad = page.locator("#pad").bounding_box()
    assert pad["x"] >= 0 and pad["x"] + pad["width"] <= PHONE["width"]
    assert pad["width"] >= 0.8 * PHONE["width"]  # big enough to draw on
    assert pad["y"] + pad["height"] <= PHONE["height"]  # all of it on the first screen
    touch_draw(page, SEVEN)
    settled(page, "7")
    for control in page.locator("button:visible, label.button, .modes label").all():
        box = control.bounding_box()
        assert box["height"] >= 40, control.inner_text()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], control.inner_text()
    shot(page, "phone", full_page=True)
    page.click("label[for=mode-number]")
    page.click("#clear")
    pad = page.locator("#pad").bounding_box()
    assert pad["x"] + pad["width"] <= PHONE["width"]
    touch_draw(page, ONE_SEVEN)
    settled(page, "17")
    shot(page, "phone-number")
    assert page.errors == []
    page.context.close()


def test_the_api_docs_pages_work_offline(browser, server):
    """/docs and /redoc load every script and style from this server (no CDN); ReDoc's
    badge, an image on its CDN, is blocked by the page's policy before it leaves."""
    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    elsewhere, blocked = [], []
    page.on(
        "request",
        lambda r: r.url.startswith((server[0], "data:", "blob:")) or elsewhere.append(r.url),
    )
    page.on("requestfailed", lambda r: r.failure == "csp" and blocked.append(r.url))
    page.goto(server[0] + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("digitrec")
    expect(page.locator(".opblock-summary-path", has_text="/api/predict").first).to_be_visible()
    page.screenshot(path=ARTIFACTS / "docs-swagger.png")
    page.goto(server[0] + "/redoc")
    expect(page.locator("h1", has_text="digitrec")).to_be_visible()
    expect(page.get_by_text("/api/read-number").first).to_be_attached()
    page.screenshot(path=ARTIFACTS / "docs-redoc.png")
    ctx.close()
    assert [url for url in elsewhere if url not in blocked] == []
