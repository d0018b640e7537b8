"""Changing the model of a running server: the admin route, its token, the state file the
workers follow, and a swap under load against a real `digitrec serve --workers 2`."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_models import add_model
from test_server import (
    SEVEN,
    as_file,
    assert_error,
    canvas,
    data_url,
    post_file,
    running_server,
)

from digitrec.reading.predictor import Predictor, bundled_model_path
from digitrec.server import create_app
from digitrec.server.swap import POLL_SECONDS

TOKEN = "s3cret-token-for-tests"
ROUTE = "/api/admin/model"


def bearer(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def bundled() -> Predictor:
    return Predictor(threads=1)


@pytest.fixture
def models(tmp_path, tiny_onnx, monkeypatch) -> Path:
    folder = tmp_path / "models"
    add_model(folder, "tiny-ft", tiny_onnx, parent="bundled", heldout_accuracy=0.9)
    monkeypatch.setenv("DIGITREC_MODELS", str(folder))
    monkeypatch.delenv("DIGITREC_MODEL", raising=False)
    return folder


@pytest.fixture
def admin(bundled, tmp_path, models, monkeypatch):
    monkeypatch.setenv("DIGITREC_ADMIN_TOKEN", TOKEN)
    with TestClient(create_app(db=tmp_path / "fb.sqlite3", predictor=bundled)) as client:
        yield client


def served_model(client) -> str:
    return client.get("/api/info").json()["model"]["name"]


# ---------------------------------------------------------------- the token


@pytest.mark.parametrize("value", [None, ""])
def test_the_admin_route_is_off_without_a_token(bundled, tmp_path, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("DIGITREC_ADMIN_TOKEN", raising=False)
    else:
        monkeypatch.setenv("DIGITREC_ADMIN_TOKEN", value)
    with TestClient(create_app(db=tmp_path / "fb.sqlite3", predictor=bundled)) as client:
        assert_error(client.post(ROUTE, json={"model": "bundled"}, headers=bearer()), 404)
        assert_error(client.post(ROUTE, json={"model": "bundled"}, headers=bearer("")), 404)
        assert ROUTE not in client.get("/openapi.json").json()["paths"]


def test_the_admin_route_refuses_a_missing_or_wrong_token(admin):
    body = {"model": "tiny-ft"}
    r = admin.post(ROUTE, json=body)
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    assert_error(admin.post(ROUTE, json=body, headers={"Authorization": TOKEN}), 401)
    assert_error(admin.post(ROUTE, json=body, headers={"Authorization": f"Basic {TOKEN}"}), 401)
    assert_error(admin.post(ROUTE, json=body, headers=bearer("wrong")), 403, "forbidden")
    assert_error(admin.post(ROUTE, json=body, headers=bearer(TOKEN + "x")), 403, "forbidden")
    assert_error(admin.post(ROUTE, json=body, headers=bearer(TOKEN[:-1])), 403, "forbidden")
    # the token is checked before the body is looked at
    r = admin.post(ROUTE, content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 401, "unauthorized")
    assert served_model(admin) == "bundled"
    assert ROUTE in admin.get("/openapi.json").json()["paths"]


# ---------------------------------------------------------------- the change


def test_a_bad_model_is_refused_and_the_old_one_stays(admin, models, tiny_onnx):
    error = assert_error(
        admin.post(ROUTE, json={"model": "tiny-v2"}, headers=bearer()), 422, "invalid_model"
    )
    assert "no model named 'tiny-v2'" in error["message"] and "tiny-ft" in error["message"]
    cut = models / "cut.onnx"
    cut.write_bytes(tiny_onnx.read_bytes()[:5000])
    for model in ("cut", str(cut), str(models / "missing.onnx")):
        r = admin.post(ROUTE, json={"model": model}, headers=bearer())
        assert_error(r, 422, "invalid_model")
    # a real model, but not one that reads a digit: the pair reader takes 28x48 pictures
    pairs = bundled_model_path("pairs.onnx")
    error = assert_error(
        admin.post(ROUTE, json={"model": str(pairs)}, headers=bearer()), 422, "invalid_model"
    )
    assert "cannot read a digit" in error["message"]
    assert_error(admin.post(ROUTE, json={"model": ""}, headers=bearer()), 422, "invalid_field")
    assert_error(admin.post(ROUTE, json={"name": "x"}, headers=bearer()), 422, "invalid_field")
    r = admin.post(ROUTE, content=b"{not json", headers={**bearer(), "content-type": "x/y"})
    assert_error(r, 400, "malformed_body")
    assert served_model(admin) == "bundled"
    r = admin.post("/api/predict", files=as_file(canvas(SEVEN)))
    assert r.json()["model"]["name"] == "bundled" and r.json()["digit"] == 7


def test_a_change_names_the_new_model_in_every_answer(admin, models, tiny_onnx):
    r = admin.post(ROUTE, json={"model": "tiny-ft"}, headers=bearer())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == "tiny-ft" and body["previous"]["name"] == "bundled"
    assert body["path"] == str(models / "tiny-ft.onnx")
    card = json.loads((models / "tiny-ft.json").read_text())
    assert body["model"]["date"] == card["date"]
    info = admin.get("/api/info").json()
    assert info["model"]["name"] == "tiny-ft"
    assert info["threshold"] == card["calibration"]["threshold"]
    assert admin.get("/readyz").json()["model"]["name"] == "tiny-ft"
    for route in ("/api/predict", "/api/read-number"):
        r = admin.post(route, files=as_file(canvas(SEVEN)))
        assert r.status_code == 200 and r.json()["model"]["name"] == "tiny-ft"
    # back, by name, and to a file by its path
    r = admin.post(ROUTE, json={"model": "bundled"}, headers=bearer())
    assert r.json()["model"]["name"] == "bundled" == served_model(admin)
    r = admin.post(ROUTE, json={"model": str(tiny_onnx)}, headers=bearer())
    outside = json.loads(tiny_onnx.with_suffix(".json").read_text())["name"]
    assert r.status_code == 200 and served_model(admin) == outside  # its card names it there


def test_workers_follow_a_change_through_the_state_file(bundled, tmp_path, models, monkeypatch):
    """Two apps sharing one state file are two workers of one server."""
    monkeypatch.setenv("DIGITREC_ADMIN_TOKEN", TOKEN)
    state = tmp_path / "state" / "model.json"

    def worker(**kwargs):
        return TestClient(create_app(db=tmp_path / "fb.sqlite3", model_state=state, **kwargs))

    with worker(predictor=bundled) as a, worker(predictor=bundled) as b:
        assert served_model(a) == served_model(b) == "bundled"
        r = a.post(ROUTE, json={"model": "tiny-ft"}, headers=bearer())
        assert r.status_code == 200, r.text
        # the next request to the other worker reads with the new model
        r = b.post("/api/predict", files=as_file(canvas(SEVEN)))
        assert r.status_code == 200 and r.json()["model"]["name"] == "tiny-ft"
        # a worker that starts (or restarts) after the change starts on it
        with worker() as c:
            assert served_model(c) == "tiny-ft"
        # an idle worker follows on its own, without a request to prompt it
        assert b.post(ROUTE, json={"model": "bundled"}, headers=bearer()).status_code == 200
        deadline = time.monotonic() + 20 * POLL_SECONDS
        while a.app.state.predictor.path != bundled.path and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS / 5)
        assert a.app.state.predictor.path == bundled.path
        assert served_model(a) == "bundled"


# ---------------------------------------------------------------- a real server under load


def post_admin(url: str, model: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + ROUTE,
        json.dumps({"model": model}).encode(),
        {"Content-Type": "application/json", **bearer()},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def worker_models(log: Path) -> dict[int, str]:
    """Each worker process's model, as the server's log last says it."""
    text = log.read_text()
    workers = {int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", text)}
    models = dict(re.findall(r"digitrec: worker (\d+) reads with model (\S+)", text))
    return {pid: models.get(str(pid)) for pid in workers}


def wait_for(condition, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout} s:\n{log.read_text()}")
        time.sleep(0.1)


def test_a_swap_under_load_drops_no_request_and_reaches_every_worker(tmp_path, models):
    db = tmp_path / "feedback.sqlite3"
    log = db.with_suffix(".log")
    env = {"DIGITREC_MODELS": str(models), "DIGITREC_ADMIN_TOKEN": TOKEN}
    blob = canvas(SEVEN)
    with running_server(db, "--workers", "2", env=env) as url:
        wait_for(
            lambda: list(worker_models(log).values()) == ["bundled"] * 2,
            60,
            "both workers did not start",
            log,
        )
        results, stop = [], threading.Event()

        def client():
            while not stop.is_set():
                started = time.monotonic()
                try:
                    status, body = post_file(url + "/api/predict", blob)
                    name = body.get("model", {}).get("name")
                except Exception as e:  # a dropped connection is a failed request too
                    status, name = repr(e), None
                results.append((started, time.monotonic(), status, name))

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        try:
            time.sleep(1.0)
            swap_started = time.monotonic()
            status, body = post_admin(url, "tiny-ft")
            swap_done = time.monotonic()
            time.sleep(1.5)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        assert status == 200 and body["model"]["name"] == "tiny-ft", body
        wait_for(
            lambda: list(worker_models(log).values()) == ["tiny-ft"] * 2,
            10,
            "not every worker switched",
            log,
        )
        infos = [json.loads(urllib.request.urlopen(url + "/api/info").read()) for _ in range(6)]

    failed = [r for r in results if r[2] != 200]
    assert not failed, failed[:5]
    before = [r for r in results if r[1] < swap_started]
    after = [r for r in results if r[0] > swap_done]
    during = [r for r in results if r[0] < swap_done and r[1] > swap_started]
    assert before and after and during, (len(before), len(after), len(during))
    assert {r[3] for r in before} == {"bundled"}
    assert {r[3] for r in after} == {"tiny-ft"}  # whichever worker answered
    assert {r[3] for r in during} <= {"bundled", "tiny-ft"}
    assert {i["model"]["name"] for i in infos} == {"tiny-ft"}


def test_reading_processes_read_with_the_model_changed_to(bundled, tmp_path, models):
    """`digitrec serve` reads pictures in processes of their own, each with its copy of the
    model: after a change (and a change back), their readings are the new model's, not
    only the name in the answer."""
    app = create_app(
        db=tmp_path / "fb.sqlite3", admin_token=TOKEN, reading_processes=True, reading_threads=1
    )
    blob = canvas(SEVEN)
    tiny = Predictor(models / "tiny-ft.onnx", threads=1)
    with TestClient(app) as client:
        for model, expected in (("tiny-ft", tiny), ("bundled", bundled), ("tiny-ft", tiny)):
            assert client.post(ROUTE, json={"model": model}, headers=bearer()).status_code == 200
            # as JSON: read in a process (the page's small PNGs are read in a thread)
            body = client.post("/api/predict", json={"image": data_url(blob)}).json()
            assert body["model"]["name"] == model
            assert body["probabilities"] == pytest.approx(
                expected.predict(blob).probabilities.tolist(), abs=1e-6
            )
        assert app.state.readers.read_in["process"] == 3
