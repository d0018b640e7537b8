"""Hostile and careless clients: pictures read off the event loop and bounded, connections
that never finish, clients that leave, writes from other sites, labels that are not digits,
broken HTTP, SIGTERM. Real `digitrec serve` processes on 127.0.0.1 where the protocol is
what is tested; TestClient (and the app called as ASGI) for the rest."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.requests import ClientDisconnect
from test_server import (
    ONE,
    SEVEN,
    as_file,
    assert_error,
    canvas,
    data_url,
    encode,
    metric,
    post_file,
    running_server,
)

from digitrec.feedback import FeedbackStore
from digitrec.reading.predictor import Predictor
from digitrec.server import create_app
from digitrec.server.deps import get_predictor
from digitrec.server.payload import ApiError, Sent
from digitrec.server.protocol import MAX_HEAD
from digitrec.server.schemas import EXAMPLE_IMAGE, ImageRequest
from digitrec.server.work import Readers, read_digit, read_number

TIMEOUT = 1.5  # the request timeout of the servers started here (the default is 10 s)
SLACK = 2.0  # seconds a close may come after its deadline: the protocol's grace, a busy CI


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(threads=1)


def noise_png(size: int = 1000) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((size, size), 64).save(out, "PNG")
    return out.getvalue()


# ---------------------------------------------------------------- a real server, short timeout


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("hardening") / "feedback.sqlite3"
    with running_server(db, settings={"request_timeout": TIMEOUT}) as url:
        yield url, int(url.rsplit(":", 1)[1]), db.with_suffix(".log")


def exchange(port: int, data: bytes, wait: float = TIMEOUT + SLACK + 3) -> tuple[float, bytes]:
    """Send `data`, then read until the server closes (or `wait` runs out: b"<open>" ends
    what was read). Returns the seconds until the close and what came."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        started = time.monotonic()
        if data:
            s.sendall(data)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            out += b"<open>"
        except ConnectionResetError:
            out += b"<reset>"
        return time.monotonic() - started, out


def json_answer(raw: bytes, status: int, code: str) -> dict:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    assert lines[0].startswith(f"HTTP/1.1 {status} "), raw[:300]
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert headers["content-type"].startswith("application/json")
    assert headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == code and error["message"]
    return error


PREDICT = b"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
PNG_HEAD = b"\x89PNG\r\n\x1a\n"


def test_a_connection_that_sends_nothing_is_closed_without_a_word(server):
    took, answer = exchange(server[1], b"")
    assert answer == b"" and took < TIMEOUT + SLACK


def test_a_head_never_finished_is_answered_408_and_closed(server):
    took, answer = exchange(server[1], PREDICT + b"Content-Ty")
    assert TIMEOUT - 0.2 < took < TIMEOUT + SLACK
    assert "within 1.5 s" in json_answer(answer, 408, "request_timeout")["message"]


def test_a_body_never_finished_is_answered_408_and_closed(server):
    head = PREDICT + b"Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
    took, answer = exchange(server[1], head + PNG_HEAD + bytes(1000))
    assert TIMEOUT - 0.2 < took < TIMEOUT + SLACK
    json_answer(answer, 408, "request_timeout")


def test_a_trickled_request_is_cut_at_its_deadline(server):
    """A byte every 0.2 s keeps an idle timer from ever firing; the deadline still does."""
    head = PREDICT + b"Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n" + PNG_HEAD
    with socket.create_connection(("127.0.0.1", server[1]), timeout=10) as s:
        started = time.monotonic()
        s.sendall(head)
        closed_after = None
        while time.monotonic() - started < TIMEOUT + SLACK + 3:
            try:
                s.sendall(b"\0")
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            time.sleep(0.2)
        assert closed_after is not None and closed_after < TIMEOUT + SLACK + 0.5


def test_the_deadline_counts_from_a_requests_first_byte_not_the_connections(server):
    """A kept-alive connection may idle between requests (uvicorn's keep-alive timeout
    closes it after 5 s): the next request has a full deadline of its own."""
    with socket.create_connection(("127.0.0.1", server[1]), timeout=10) as s:
        for _ in range(2):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while not answer.endswith(b'{"status":"ok"}') and (chunk := s.recv(65536)):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b'{"status":"ok"}')
            time.sleep(TIMEOUT + 0.5)


def test_a_client_that_leaves_mid_body_is_counted_as_gone_not_as_a_crash(server):
    url, port, log = server
    before = urllib.request.urlopen(url + "/metrics").read().decode()
    gone = metric(
        before, "digitrec_http_requests_total", route="/api/predict", method="POST", status="499"
    )
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(
                PREDICT + b"Content-Type: image/png\r\nContent-Length: 100000\r\n\r\n" + PNG_HEAD
            )
            time.sleep(0.2)  # the app is waiting for the rest of the body
    time.sleep(0.5)
    text = urllib.request.urlopen(url + "/metrics").read().decode()
    labels = {"route": "/api/predict", "method": "POST"}
    assert metric(text, "digitrec_http_requests_total", **labels, status="499") == gone + 3
    assert metric(text, "digitrec_http_requests_total", **labels, status="500") == 0
    written = log.read_text()
    assert "Traceback" not in written and "Exception in ASGI application" not in written


@pytest.mark.parametrize(
    "request_bytes, status, code",
    [
        (PREDICT + b"Content-Length: abc\r\n\r\n", 400, "malformed_request"),
        (
            PREDICT + b"Content-Length: 5\r\nContent-Length: 9\r\n\r\nhello",
            400,
            "malformed_request",
        ),
        # a body longer than its Content-Length: the rest is read as a (broken) request
        (
            PREDICT + b"Content-Type: image/png\r\nContent-Length: 5\r\n\r\nhello, and more",
            400,
            "malformed_request",
        ),
        (b"NOT HTTP AT ALL\r\n\r\n", 400, "malformed_request"),
        (
            b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * (2 * MAX_HEAD) + b"\r\n\r\n",
            431,
            "headers_too_large",
        ),
    ],
    ids=["content-length-abc", "two-lengths", "body-longer-than-said", "not-http", "huge-head"],
)
def test_broken_http_is_answered_in_json(server, request_bytes, status, code):
    took, answer = exchange(server[1], request_bytes)
    assert took < TIMEOUT  # at once, not at a deadline
    json_answer(answer, status, code)


def test_a_real_server_reads_pictures_off_its_event_loop(server):
    """Four 1-megapixel noise PNGs in flight (the most one picture under the megapixel
    mark asks for): /healthz keeps answering at once. Read on the event loop, each probe
    waited for whole readings (3.2 s with eight in flight); benchmarks/hostile_clients.py
    measures the p99 against its 50 ms floor."""
    url = server[0]
    blob = noise_png()
    answers = []
    uploads = [
        threading.Thread(target=lambda: answers.append(post_file(url + "/api/predict", blob)))
        for _ in range(4)
    ]
    for t in uploads:
        t.start()
    probes = []
    while any(t.is_alive() for t in uploads) and len(probes) < 500:
        started = time.perf_counter()
        with urllib.request.urlopen(url + "/healthz", timeout=10) as r:
            assert r.status == 200
        probes.append(time.perf_counter() - started)
        time.sleep(0.02)
    for t in uploads:
        t.join(60)
    assert [status for status, _ in answers] == [200] * 4
    assert all(body["refused"] for _, body in answers)  # noise is no digit
    assert len(probes) >= 5 and max(probes) < 0.5, sorted(probes)[-5:]


# ---------------------------------------------------------------- bounded reading (TestClient)


class Held(Predictor):
    """The bundled model, but each reading waits until the test lets it go."""

    def __init__(self):
        super().__init__(threads=1)
        self.gate = threading.Event()
        self.started = 0

    def predict(self, x):
        self.started += 1
        assert self.gate.wait(30), "the test never let the reading go"
        return super().predict(x)


def test_a_burst_past_the_queue_is_refused_at_once_with_503_busy(tmp_path, predictor):
    held = Held()
    app = create_app(
        db=tmp_path / "fb.sqlite3", predictor=predictor, reading_threads=1, reading_queue=1
    )
    app.dependency_overrides[get_predictor] = lambda: held
    blob = canvas(SEVEN)
    with TestClient(app) as c:
        answers = []

        def post():
            answers.append(c.post("/api/predict", files=as_file(blob)))

        first = [threading.Thread(target=post) for _ in range(2)]  # one reading, one waiting
        for t in first:
            t.start()
        deadline = time.monotonic() + 10
        while (held.started < 1 or app.state.readers.admitted < 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert held.started == 1 and app.state.readers.admitted == 2
        started = time.perf_counter()
        r = c.post("/api/predict", files=as_file(blob))
        assert time.perf_counter() - started < 2  # refused, not queued
        assert_error(r, 503, "busy")
        assert r.headers["retry-after"] == "1"
        assert c.get("/healthz").status_code == 200  # the loop is free while they wait
        held.gate.set()
        for t in first:
            t.join(30)
        assert [a.status_code for a in answers] == [200, 200]
        assert app.state.readers.admitted == 0
        assert c.post("/api/predict", files=as_file(blob)).json()["digit"] == 7


def asgi_request(app, chunks, *, complete=True, after=None):
    """Call the app as a server would, with a body in `chunks` (all of it, or the start of
    a longer one); `after` is what receive does once they are sent (None: the client goes
    away). Returns the messages the app sent."""
    sent, queue = [], list(chunks)

    async def receive():
        if queue:
            body = queue.pop(0)
            more = bool(queue) or not complete
            return {"type": "http.request", "body": body, "more_body": more}
        if after is not None:
            await after()
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/predict",
        "raw_path": b"/api/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"image/png")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    return sent


class Counting(Predictor):
    def __init__(self):
        super().__init__(threads=1)
        self.calls = 0

    def predict(self, x):
        self.calls += 1
        return super().predict(x)


def test_a_client_gone_mid_body_or_before_its_turn_is_499_and_never_read(tmp_path):
    counting = Counting()
    app = create_app(db=tmp_path / "fb.sqlite3", predictor=counting)
    # mid-body: the app returns (no exception reaches the server) with a 499 for /metrics
    sent = asgi_request(app, [canvas(SEVEN)[:100]], complete=False)
    assert sent[0]["status"] == 499
    # the whole body came, then the client left before its turn: not read at all
    sent = asgi_request(app, [canvas(SEVEN)])
    assert sent[0]["status"] == 499 and counting.calls == 0
    text = app.state.metrics.exposition().decode()
    labels = {"route": "/api/predict", "method": "POST"}
    assert metric(text, "digitrec_http_requests_total", **labels, status="499") == 2
    assert metric(text, "digitrec_http_requests_total", **labels, status="500") == 0


def test_a_body_not_in_by_the_deadline_is_408_from_the_app(tmp_path, predictor):
    """Under any ASGI server (the protocol of `digitrec serve` sets the deadline from the
    request's first byte; elsewhere it runs from when the app got the request)."""
    app = create_app(db=tmp_path / "fb.sqlite3", predictor=predictor, request_timeout=0.3)
    started = time.perf_counter()
    sent = asgi_request(app, [PNG_HEAD], complete=False, after=lambda: asyncio.sleep(30))
    assert time.perf_counter() - started < 5
    start, body = sent[0], sent[1]
    assert start["status"] == 408 and (b"connection", b"close") in start["headers"]
    assert json.loads(body["body"])["error"]["code"] == "request_timeout"


def test_pictures_read_in_processes_answer_as_in_threads(tmp_path, predictor):
    """`digitrec serve` reads in processes all but the page's small PNGs: readings,
    refusals and errors come back from them as they do from a thread."""
    app = create_app(db=tmp_path / "fb.sqlite3", reading_processes=True, reading_threads=1)
    blob = canvas(SEVEN)
    with TestClient(app) as c:
        readers = app.state.readers
        assert readers.pool is not None
        # the page's drawing, as the page sends it: read in a thread
        body = c.post("/api/predict", files=as_file(blob)).json()
        assert body["digit"] == 7 and readers.read_in == {"thread": 1, "process": 0}
        # the same picture as JSON, a JPEG, a PNG over the pads' size: read in a process
        body = c.post("/api/predict", json={"image": data_url(blob)}).json()
        expected = predictor.predict(blob)
        assert body["digit"] == 7 and body["probabilities"] == pytest.approx(
            expected.probabilities.tolist(), abs=1e-6
        )
        jpeg = encode(Image.open(io.BytesIO(blob)).convert("RGB"), "JPEG")
        assert c.post("/api/predict", files=as_file(jpeg, "image/jpeg")).json()["digit"] == 7
        big = canvas([[(x * 3, y * 3) for x, y in SEVEN[0]]], size=(840, 840))
        assert c.post("/api/read-number", files=as_file(big)).json()["number"] == "7"
        assert readers.read_in == {"thread": 1, "process": 3}
        # errors come back as they are
        r = c.post("/api/predict", json={"image": data_url(canvas(SEVEN)[:200])})
        assert_error(r, 422, "bad_image")
        r = c.post("/api/predict", files=as_file(jpeg[:300], "image/jpeg"))
        assert_error(r, 422, "bad_image")
        r = c.post(
            "/api/predict", content=b'{"image": 3', headers={"content-type": "application/json"}
        )
        assert_error(r, 400, "malformed_body")
        assert_error(c.post("/api/predict", json={"image": "%%%"}), 422, "invalid_field")
        r = c.post("/api/feedback", json={"image": data_url(blob), "label": "7"})
        assert_error(r, 422, "invalid_field")
        r = c.post("/api/feedback", json={"image": data_url(canvas([])), "label": 3})
        assert_error(r, 422, "blank_image")
        r = c.post("/api/feedback", json={"image": data_url(blob), "label": 7})
        assert r.status_code == 201 and r.json()["label"] == 7
        assert readers.read_in["process"] == 10
    assert app.state.readers.pool is None  # closed with the app


def die(predictor, sent):
    """A reading that kills its process, as a crash in a decoder or the kernel's OOM
    killer would."""
    os._exit(70)


class Present:
    async def is_disconnected(self) -> bool:
        return False


def test_a_reading_process_that_dies_is_503_and_replaced(predictor):
    async def scenario():
        readers = Readers(1, 0, processes=True)
        await readers.open(predictor)
        try:
            first = readers.pool
            with pytest.raises(ApiError) as e:
                await readers.run(Present(), die, predictor, Sent(b"x", ImageRequest))
            assert (e.value.status_code, e.value.code) == (503, "reader_failed")
            assert e.value.headers == {"Retry-After": "1"}
            assert readers.pool is not first and readers.admitted == 0
            sent = Sent(json.dumps({"image": data_url(canvas(SEVEN))}).encode(), ImageRequest)
            reading = await readers.run(Present(), read_digit, predictor, sent)
            assert reading.digit == 7
        finally:
            await readers.close()

    asyncio.run(scenario())


# ---------------------------------------------------------------- writes from other sites


@pytest.fixture(scope="module")
def served(predictor, tmp_path_factory):
    db = tmp_path_factory.mktemp("origin") / "feedback.sqlite3"
    with TestClient(create_app(db=db, predictor=predictor)) as client:
        yield client, db


def stored(db: Path) -> int:
    with FeedbackStore(db) as store:
        return store.count()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://testserver.evil.example"},
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        # the browser's word wins over an Origin that a proxy's Host happens to match
        {"Origin": "http://testserver", "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_feedback_from_another_site_is_refused_403(served, headers):
    client, db = served
    before = stored(db)
    # the classic cross-site form post: multipart needs no preflight
    r = client.post(
        "/api/feedback", files=as_file(canvas(ONE)), data={"label": "4"}, headers=headers
    )
    assert_error(r, 403, "cross_origin")
    r = client.post(
        "/api/feedback", json={"image": data_url(canvas(ONE)), "label": 4}, headers=headers
    )
    assert_error(r, 403, "cross_origin")
    assert stored(db) == before


@pytest.mark.parametrize(
    "headers",
    [
        {},  # curl, scripts: not a browser acting for a page
        {"Origin": "http://testserver"},
        {"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        # behind a proxy that rewrites Host: the browser says same-origin
        {"Origin": "https://digits.example", "Sec-Fetch-Site": "same-origin"},
        # an older browser behind a proxy that says which host it was asked for
        {"Origin": "https://digits.example", "X-Forwarded-Host": "digits.example"},
    ],
)
def test_feedback_from_this_site_or_no_browser_is_stored(served, headers):
    client, db = served
    before = stored(db)
    r = client.post(
        "/api/feedback", files=as_file(canvas(ONE)), data={"label": "1"}, headers=headers
    )
    assert r.status_code == 201, r.text
    assert stored(db) == before + 1


def test_reading_is_not_a_write_and_stays_open_to_any_origin(served):
    client, _ = served
    r = client.post(
        "/api/predict", files=as_file(canvas(SEVEN)), headers={"Origin": "http://evil.example"}
    )
    assert r.status_code == 200 and r.json()["digit"] == 7


# ---------------------------------------------------------------- labels are digits


@pytest.mark.parametrize("label", [True, False, "7", 3.0, 7.5, -1, 10, None, [7], "", " 7"])
def test_a_json_label_must_be_an_integer_from_0_to_9(served, label):
    client, db = served
    before = stored(db)
    r = client.post("/api/feedback", json={"image": data_url(canvas(ONE)), "label": label})
    assert_error(r, 422, "invalid_field")
    r = client.post(
        "/api/feedback", json={"image": data_url(canvas(ONE)), "label": 1, "predicted": label}
    )
    if label is None:  # "predicted" may be null: the model's answer is not always known
        assert r.status_code == 201
    else:
        assert_error(r, 422, "invalid_field")
        assert stored(db) == before


@pytest.mark.parametrize("label", ["7.0", " 7", "7 ", "07", "+7", "-1", "10", "true", "seven"])
def test_a_form_label_must_be_one_digit(served, label):
    client, db = served
    before = stored(db)
    r = client.post("/api/feedback", files=as_file(canvas(ONE)), data={"label": label})
    assert_error(r, 422, "invalid_field")
    r = client.post(
        "/api/feedback", files=as_file(canvas(ONE)), data={"label": "1", "predicted": label}
    )
    assert_error(r, 422, "invalid_field")
    assert stored(db) == before


# ---------------------------------------------------------------- the API's own description


def test_metrics_are_documented_as_text(served):
    client, _ = served
    spec = client.get("/openapi.json").json()
    content = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")


def test_the_documented_examples_work_as_sent(served):
    client, db = served
    header, _, payload = EXAMPLE_IMAGE.partition(",")
    assert header == "data:image/png;base64"
    with Image.open(io.BytesIO(base64.b64decode(payload))) as im:
        assert im.format == "PNG"
    spec = client.get("/openapi.json").json()
    predict = spec["paths"]["/api/predict"]["post"]["requestBody"]["content"]
    assert predict["application/json"]["schema"]["properties"]["image"]["examples"] == [
        EXAMPLE_IMAGE
    ]
    r = client.post("/api/predict", json={"image": EXAMPLE_IMAGE})
    assert r.status_code == 200 and r.json()["digit"] == 7
    assert client.post("/api/read-number", json={"image": EXAMPLE_IMAGE}).json()["number"] == "7"
    schema = spec["paths"]["/api/feedback"]["post"]["requestBody"]["content"]["application/json"]
    example = {
        k: v["examples"][0] for k, v in schema["schema"]["properties"].items() if "examples" in v
    }
    r = client.post("/api/feedback", json=example)
    assert r.status_code == 201 and r.json()["label"] == 7


# ---------------------------------------------------------------- stopping


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_stops_the_server_and_removes_its_private_folders(tmp_path, workers):
    """With the admin route on, the server keeps a private folder in the temporary folder
    (and one for its metrics with several workers): SIGTERM, as a service manager sends it,
    must not leave them behind."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {"DIGITREC_ADMIN_TOKEN": "a-token-for-tests", "TMPDIR": str(temp)}
    procs = []
    with running_server(tmp_path / "fb.sqlite3", "--workers", workers, env=env, procs=procs):
        assert any(p.name.startswith("digitrec-serve-") for p in temp.iterdir())
        procs[0].send_signal(signal.SIGTERM)
        returncode = procs[0].wait(timeout=30)
    # ended as a process ends by SIGTERM (one worker) or with 0 (uvicorn's supervisor)
    assert returncode in (-signal.SIGTERM, 0)
    assert not [p.name for p in temp.iterdir() if p.name.startswith("digitrec-")]


def test_ctrl_c_stops_the_server_and_its_reading_processes_quietly(tmp_path):
    """Ctrl-C reaches every process of the terminal's job, the reading processes too: the
    server stops them itself, so none prints a traceback and none is left."""
    procs = []
    db = tmp_path / "fb.sqlite3"
    with running_server(db, session=True, procs=procs) as url:
        assert post_file(url + "/api/predict", canvas(SEVEN))[1]["digit"] == 7
        os.killpg(procs[0].pid, signal.SIGINT)
        assert procs[0].wait(timeout=30) == 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(procs[0].pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("a process of the server outlived it by 15 s")
    log = db.with_suffix(".log").read_text()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log


# ---------------------------------------------------------------- work stopped for a client gone


class Leaving:
    """A client that leaves `after` seconds into its reading."""

    def __init__(self, after: float):
        self.after = after
        self.started = None

    async def is_disconnected(self) -> bool:
        now = time.monotonic()
        self.started = self.started or now
        return now - self.started >= self.after


def long_reading(predictor, sent):
    """A reading that would take 60 s, checking whether to stop as a number's does."""
    from digitrec.server.work import stop_asked

    ends = time.monotonic() + 60
    while time.monotonic() < ends:
        if stop_asked():
            from digitrec.reading.segment import Stopped

            raise Stopped
        time.sleep(0.01)
    return "finished"


@pytest.mark.parametrize("processes", [False, True], ids=["thread", "process"])
def test_the_work_of_a_client_that_left_is_stopped(predictor, processes):
    async def scenario():
        readers = Readers(1, 0, processes=processes)
        await readers.open(predictor)
        try:
            sent = Sent(b"x", ImageRequest)
            started = time.monotonic()
            with pytest.raises(ClientDisconnect):
                await readers.run(Leaving(0.3), long_reading, predictor, sent)
            assert time.monotonic() - started < 10 and readers.stopped == 1
            assert readers.admitted == 0  # the turn is free again for the next one
        finally:
            await readers.close()

    asyncio.run(scenario())


def test_a_number_whose_client_left_is_not_read_to_the_end(predictor):
    """read_number's segmentation checks between pieces: a client gone mid-reading stops it."""
    from test_segment import paper

    from digitrec.training.synthetic import draw_number

    class Slow(Predictor):
        def __init__(self):
            super().__init__(threads=1)
            self.calls = 0

        def classify(self, inputs, batch_size=1024):
            self.calls += 1
            time.sleep(0.3)
            return super().classify(inputs, batch_size)

    slow = Slow()
    sent = Sent(encode(Image.fromarray(paper(draw_number("481639", gap=-0.1)))), None)

    async def scenario():
        readers = Readers(1, 0)
        with pytest.raises(ClientDisconnect):
            await readers.run(Leaving(0.5), read_number, slow, sent)

    asyncio.run(scenario())
    stopped_at = slow.calls
    slow.calls = 0
    slow.read_number(sent.open()[0])
    assert stopped_at < slow.calls  # it stopped before the end
