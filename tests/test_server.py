"""The web service through FastAPI's TestClient, with the real bundled Predictor injected,
and once as a real `digitrec serve` process."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from helpers import EXAMPLES, run_cli
from PIL import Image, ImageDraw

from digitrec.feedback import FeedbackStore
from digitrec.reading.predictor import Predictor
from digitrec.server import create_app
from digitrec.server.deps import get_predictor


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def canvas(points, size=(280, 280), width=None) -> bytes:
    """A drawing as the page sends it: black strokes on a white RGBA canvas, as a PNG."""
    image = Image.new("RGBA", size, (255, 255, 255, 255))
    draw = ImageDraw.Draw(image)
    for stroke in points:
        draw.line(stroke, fill=(0, 0, 0, 255), width=width or size[1] // 16, joint="curve")
    return encode(image)


SEVEN = [[(70, 56), (210, 56), (118, 238)]]
ONE = [[(140, 42), (140, 238)]]
BLANK = encode(Image.new("RGBA", (280, 280), (255, 255, 255, 255)))


def data_url(blob: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64," + base64.b64encode(blob).decode()


def as_file(blob: bytes, media: str = "image/png", name: str = "canvas.png") -> dict:
    return {"file": (name, blob, media)}


def decode_data_url(url: str) -> Image.Image:
    header, _, payload = url.partition(",")
    assert header == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(payload)))


def assert_error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(threads=1)


@pytest.fixture(scope="module")
def served(predictor, tmp_path_factory):
    db = tmp_path_factory.mktemp("server") / "feedback.sqlite3"
    app = create_app(db=db, predictor=predictor)
    with TestClient(app) as client:
        yield client, db


@pytest.fixture
def client(served) -> TestClient:
    return served[0]


# ---------------------------------------------------------------- predict


@pytest.mark.parametrize(
    "fmt, media",
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("BMP", "image/bmp")],
)
def test_predict_reads_each_format_sent_as_a_file(client, fmt, media):
    with Image.open(EXAMPLES / "5-canvas.png") as im:
        blob = encode(im.convert("RGB"), fmt)
    r = client.post("/api/predict", files=as_file(blob, media, f"five.{fmt.lower()}"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["digit"] == 5 and not body["refused"] and body["reason"] is None


def test_predict_answers_in_full(client, predictor):
    blob = canvas(SEVEN)
    r = client.post("/api/predict", files=as_file(blob))
    assert r.status_code == 200
    body = r.json()
    expected = predictor.predict(blob)
    assert body["digit"] == 7 == expected.digit
    assert body["confidence"] == pytest.approx(expected.confidence, abs=1e-6)
    assert len(body["probabilities"]) == 10 and sum(body["probabilities"]) == pytest.approx(
        1, abs=1e-4
    )
    assert body["refused"] is False and body["reason"] is None and body["message"] == "7"
    assert [t["digit"] for t in body["top3"]][0] == 7
    # the 28x28 picture the model saw, losslessly
    seen = np.asarray(decode_data_url(body["input"]))
    assert seen.shape == (28, 28)
    assert np.abs(seen / 255.0 - expected.input).max() <= 0.5 / 255 + 1e-6
    assert body["model"] == {
        "name": predictor.name,
        "version": predictor.card["version"],
        "date": predictor.card["date"],
    }
    assert 0 < body["elapsed_ms"] < 10_000


def test_predict_takes_json_with_a_data_url_or_bare_base64(client):
    blob = canvas(ONE)
    for image in (data_url(blob), base64.b64encode(blob).decode()):
        r = client.post("/api/predict", json={"image": image})
        assert r.status_code == 200, r.text
        assert r.json()["digit"] == 1


def test_predict_takes_the_picture_as_the_body(client):
    r = client.post("/api/predict", content=canvas(SEVEN), headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.json()["digit"] == 7


def test_a_blank_canvas_is_refused_not_an_error(client):
    r = client.post("/api/predict", files=as_file(BLANK))
    assert r.status_code == 200
    body = r.json()
    assert body["refused"] is True and body["reason"] == "blank"
    assert body["digit"] is None and body["input"] is None
    assert "blank" in body["message"]


def test_an_injected_predictor_is_the_one_used(predictor, tmp_path):
    """Dependencies are injected: a stricter Predictor put in their place answers instead."""
    strict = Predictor(threads=1, threshold=1.0)  # refuses all but certainty
    app = create_app(db=tmp_path / "fb.sqlite3", predictor=predictor)
    app.dependency_overrides[get_predictor] = lambda: strict
    with TestClient(app) as c:
        body = c.post("/api/predict", files=as_file(canvas(SEVEN))).json()
    assert body["refused"] is True and body["reason"] in ("unsure", "not_a_digit")
    assert body["digit"] == 7  # the best guess is kept, but refused


# ---------------------------------------------------------------- read-number


def test_read_number_reads_every_digit_with_its_box(client):
    blob = (EXAMPLES / "numbers" / "4096.png").read_bytes()
    for r in (
        client.post("/api/read-number", files=as_file(blob)),
        client.post("/api/read-number", json={"image": data_url(blob)}),
    ):
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["number"] == "4096" and body["refused"] is False and body["lines"] == 1
        digits = body["digits"]
        assert [d["digit"] for d in digits] == [4, 0, 9, 6]
        with Image.open(EXAMPLES / "numbers" / "4096.png") as im:
            width, height = im.size
        lefts = [d["box"][0] for d in digits]
        assert lefts == sorted(lefts)
        for d in digits:
            left, top, right, bottom = d["box"]
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
            assert len(d["probabilities"]) == 10 and 0.5 < d["confidence"] <= 1
            assert decode_data_url(d["input"]).size == (28, 28)
        assert body["model"]["name"] and body["elapsed_ms"] > 0


def test_read_number_of_a_drawn_canvas(client):
    one = [[(95, 50), (95, 230)]]
    seven = [[(250, 50), (420, 50), (310, 235)]]
    r = client.post("/api/read-number", files=as_file(canvas(one + seven, size=(560, 280))))
    assert r.status_code == 200 and r.json()["number"] == "17"


def test_read_number_of_a_blank_picture_is_refused(client):
    r = client.post("/api/read-number", files=as_file(BLANK))
    assert r.status_code == 200
    body = r.json()
    assert body == {**body, "number": "", "refused": True, "reason": "blank", "digits": []}


# ---------------------------------------------------------------- errors


def gif() -> bytes:
    return encode(Image.new("L", (20, 20), 255), "GIF")


TRUNCATED_PNG = canvas(SEVEN)[:200]


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        (
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
            415,
            "unsupported_media_type",
        ),
        ({"files": as_file(b"hello", "text/plain", "a.txt")}, 415, "unsupported_media_type"),
        (
            {"files": as_file(b"%PDF-1.4 ...", "application/pdf", "a.pdf")},
            415,
            "unsupported_media_type",
        ),
        (
            {"files": as_file(b"just bytes", "application/octet-stream", "x")},
            415,
            "unsupported_media_type",
        ),
        ({"files": as_file(gif(), "image/gif", "a.gif")}, 415, "unsupported_media_type"),
        ({"json": {"image": data_url(b"hello", "text/plain")}}, 415, "unsupported_media_type"),
        ({"files": as_file(TRUNCATED_PNG)}, 422, "bad_image"),
        ({"files": as_file(b"\x89PNG\r\n\x1a\n" + bytes(100))}, 422, "bad_image"),
        ({"files": as_file(b"not a png at all", "image/png")}, 422, "bad_image"),
        ({"files": as_file(b"")}, 422, "bad_image"),
        ({"json": {"image": data_url(TRUNCATED_PNG)}}, 422, "bad_image"),
        ({"json": {"image": "data:image/png;base64,%%%%"}}, 422, "invalid_field"),
        ({"json": {"image": "data:image/png,rawdata"}}, 422, "invalid_field"),
        ({"json": {"image": 42}}, 422, "invalid_field"),
        ({"json": {"picture": "x"}}, 422, "invalid_field"),
        ({"files": {"other": ("a.png", canvas(ONE), "image/png")}}, 422, "invalid_field"),
        ({"files": {"file": (None, "not a file")}}, 422, "invalid_field"),
        ({"data": {"file": "x"}}, 415, "unsupported_media_type"),
        (
            {"content": b'{"image": "', "headers": {"content-type": "application/json"}},
            400,
            "malformed_body",
        ),
        (
            {"content": b"[1, 2]", "headers": {"content-type": "application/json"}},
            400,
            "malformed_body",
        ),
        ({"content": b"", "headers": {"content-type": "application/json"}}, 400, "malformed_body"),
        (
            {"content": b"--x\r\nbroken", "headers": {"content-type": "multipart/form-data"}},
            400,
            "malformed_body",
        ),
    ],
    ids=lambda v: v if isinstance(v, str | int) else None,
)
def test_bad_input_is_a_json_error_with_the_right_status(client, kwargs, status, code):
    for route in ("/api/predict", "/api/read-number"):
        assert_error(client.post(route, **kwargs), status, code)


def test_a_body_over_the_limit_is_413(client, predictor, tmp_path):
    too_big = b"\x89PNG\r\n\x1a\n" + bytes(5 * 1024 * 1024)
    assert_error(client.post("/api/predict", files=as_file(too_big)), 413, "body_too_large")

    def chunks():  # no Content-Length: counted as it streams in
        for _ in range(6):
            yield bytes(1024 * 1024)

    r = client.post("/api/predict", content=chunks(), headers={"content-type": "image/png"})
    assert_error(r, 413, "body_too_large")

    small = create_app(db=tmp_path / "fb.sqlite3", predictor=predictor, max_body=2000)
    with TestClient(small) as c:
        assert c.post("/api/predict", files=as_file(canvas(ONE))).status_code == 200
        big = encode(Image.effect_noise((64, 64), 60).convert("L"))
        assert len(big) > 2000
        error = assert_error(c.post("/api/predict", files=as_file(big)), 413, "body_too_large")
        assert "2,000 bytes" in error["message"]


def test_a_decompression_bomb_is_refused_before_decoding(client):
    bomb = encode(Image.new("1", (6000, 5000), 1))  # 30 megapixels in a few kilobytes
    assert len(bomb) < 100_000
    started = time.perf_counter()
    error = assert_error(client.post("/api/predict", files=as_file(bomb)), 422, "bad_image")
    assert "megapixels" in error["message"]
    assert time.perf_counter() - started < 1.0  # never decoded


def test_unknown_routes_and_methods_are_json_errors(client):
    assert_error(client.get("/api/nothing"), 404, "not_found")
    r = client.get("/api/predict")
    assert_error(r, 405, "method_not_allowed")
    assert "POST" in r.headers["allow"]


def test_not_ready_before_the_model_is_loaded(tmp_path):
    app = create_app(db=tmp_path / "fb.sqlite3")
    client = TestClient(app)  # no `with`: the lifespan has not run, nothing is loaded
    assert_error(client.get("/readyz"), 503, "not_ready")
    assert_error(client.post("/api/predict", files=as_file(canvas(ONE))), 503, "not_ready")
    assert client.get("/healthz").json() == {"status": "ok"}


# ---------------------------------------------------------------- feedback


def test_feedback_is_stored_with_its_label(served):
    client, db = served
    blob = canvas(ONE)
    r = client.post("/api/feedback", files=as_file(blob), data={"label": "4", "predicted": "1"})
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["label"] == 4 and first["predicted"] == 1
    jpeg = (EXAMPLES / "7-photo.jpg").read_bytes()
    r = client.post("/api/feedback", json={"image": data_url(jpeg, "image/jpeg"), "label": 7})
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["id"] > first["id"] and second["predicted"] is None
    with FeedbackStore(db) as store:
        a, b = store.get(first["id"]), store.get(second["id"])
    assert (a.label, a.predicted, a.png) == (4, 1, blob)
    assert a.model == "bundled" or a.model
    assert (b.label, b.predicted) == (7, None) and b.png.startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "kwargs, status, code",
    [
        ({"data": {"label": "12"}}, 422, "invalid_field"),
        ({"data": {"label": "four"}}, 422, "invalid_field"),
        ({"data": {}}, 422, "invalid_field"),
        ({"data": {"label": "4", "predicted": "-1"}}, 422, "invalid_field"),
    ],
)
def test_feedback_fields_are_checked(client, kwargs, status, code):
    assert_error(client.post("/api/feedback", files=as_file(canvas(ONE)), **kwargs), status, code)


def test_feedback_refuses_blank_and_unreadable_pictures(served):
    client, db = served
    with FeedbackStore(db) as store:
        before = store.count()
        r = client.post("/api/feedback", files=as_file(BLANK), data={"label": "3"})
        assert_error(r, 422, "blank_image")
        r = client.post("/api/feedback", json={"image": data_url(TRUNCATED_PNG), "label": 3})
        assert_error(r, 422, "bad_image")
        r = client.post("/api/feedback", json={"image": data_url(canvas(ONE)), "label": 10})
        assert_error(r, 422, "invalid_field")
        assert store.count() == before


# ---------------------------------------------------------------- health, metrics, page


def test_health_and_readiness(client, predictor):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["model"]["name"] == predictor.name
    info = client.get("/api/info").json()
    assert info["limits"]["max_body_bytes"] == 5 * 1024 * 1024
    assert info["limits"]["max_pixels"] == 25_000_000
    assert info["threshold"] == predictor.threshold
    assert info["tie_margin"] == predictor.tie_margin > 0  # the bundled card's rule


def metric(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if m and m[1] == name and ",".join(sorted((m[2] or "").split(","))) == want:
            return float(m[3])
    return 0.0


def test_metrics_count_requests_latency_digits_and_refusals(predictor, tmp_path):
    app = create_app(db=tmp_path / "fb.sqlite3", predictor=predictor)
    with TestClient(app) as c:
        for _ in range(3):
            c.post("/api/predict", files=as_file(canvas(SEVEN)))
        c.post("/api/predict", files=as_file(BLANK))
        c.post("/api/predict", content=b"x", headers={"content-type": "text/plain"})
        c.get("/nowhere")
        r = c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    requests = "digitrec_http_requests_total"
    assert metric(text, requests, route="/api/predict", method="POST", status="200") == 4
    assert metric(text, requests, route="/api/predict", method="POST", status="415") == 1
    assert metric(text, requests, route="other", method="GET", status="404") == 1
    latency = "digitrec_http_request_duration_seconds"
    assert metric(text, f"{latency}_count", route="/api/predict") == 5
    assert metric(text, f"{latency}_bucket", route="/api/predict", le="+Inf") == 5
    assert metric(text, "digitrec_predictions_total", digit="7") == 3
    assert metric(text, "digitrec_refusals_total", reason="blank") == 1


def test_the_page_and_its_files_are_served_from_here(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert '<canvas id="pad"' in page
    for asset in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert asset.startswith(("/", "data:")), f"{asset} is not served from here"
    for name in ("app.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and len(asset.text) > 1000
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", asset.text)


def test_openapi_documents_every_route(client):
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/predict",
        "/api/read-number",
        "/api/feedback",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in spec["paths"], path
    content = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json", "image/png"} <= set(content)
    assert client.get("/docs").status_code == 200


# ---------------------------------------------------------------- a real process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SERVE = "import json, sys; from digitrec.server.startup import serve; "
SERVE += "sys.exit(serve(**json.loads(sys.argv[1])))"


@contextmanager
def running_server(
    db: Path,
    *args: str,
    timeout: float = 60,
    env: dict | None = None,
    settings: dict | None = None,
    procs: list | None = None,
    session: bool = False,
):
    """`digitrec serve` as a user runs it, on a free port, with `env` added to the
    environment; yields its base URL. With `settings`, the same start-up is called as
    serve(**settings) instead, for settings the command line does not take. `procs`, if
    given, receives the server's Popen; with `session`, the server leads a process group
    of its own (as a shell's job does)."""
    port = free_port()
    exe = Path(sys.executable).parent / "digitrec"
    log = db.with_suffix(".log")
    command = [str(exe), "serve", "--port", str(port), "--db", str(db), *args]
    if settings is not None:
        kwargs = {**settings, "port": port, "db": str(db)}
        command = [sys.executable, "-c", SERVE, json.dumps(kwargs)]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            start_new_session=session,
        )
    if procs is not None:
        procs.append(proc)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"digitrec serve stopped ({proc.returncode}):\n{log.read_text()}")
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"digitrec serve was not ready in {timeout} s:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def post_file(url: str, blob: bytes, media: str = "image/png") -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.png"\r\n'
            f"Content-Type: {media}\r\n\r\n"
        ).encode()
        + blob
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serve_says_plainly_what_stops_it(tmp_path):
    db = tmp_path / "feedback.sqlite3"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli("serve", "--port", port, "--db", db, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"digitrec: error: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    r = run_cli("serve", "--model", tmp_path / "missing.onnx", "--db", db, timeout=60)
    assert r.returncode == 2 and "missing.onnx does not exist" in r.stderr
    r = run_cli("serve", "--workers", "0", "--db", db, timeout=60)
    assert r.returncode == 2 and "--workers" in r.stderr


def test_a_real_server_with_two_workers(tmp_path):
    db = tmp_path / "feedback.sqlite3"
    with running_server(db, "--workers", "2") as url:
        with urllib.request.urlopen(url + "/") as r:
            assert b"digitrec" in r.read()
        answers = [post_file(url + "/api/predict", canvas(SEVEN)) for _ in range(8)]
        assert all(status == 200 and body["digit"] == 7 for status, body in answers)
        status, body = post_file(url + "/api/predict", b"GIF89a....", "image/gif")
        assert status == 415 and body["error"]["code"] == "unsupported_media_type"
        with urllib.request.urlopen(url + "/metrics") as r:
            text = r.read().decode()
        # both workers' counts, summed, whichever of them answered the scrape
        requests = "digitrec_http_requests_total"
        assert metric(text, requests, route="/api/predict", method="POST", status="200") == 8
        assert metric(text, "digitrec_predictions_total", digit="7") == 8
    assert db.is_file()
