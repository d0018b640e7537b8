"""One wire schema of a reading (digitrec.reading.wire): what to_dict writes is what it
declares, the API's response models are built from it, and the refusal reasons come from
the one list, predictor.REASONS."""

from __future__ import annotations

import html
import json
import re
from typing import get_type_hints

import pytest
from fastapi.testclient import TestClient
from helpers import EXAMPLES
from test_server import BLANK, SEVEN, canvas

from digitrec.reading import wire
from digitrec.reading.predictor import REASONS, Predictor
from digitrec.server import create_app
from digitrec.server.routes import STATIC


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor(threads=1)


def keys(shape: type) -> list[str]:
    return list(get_type_hints(shape))


def test_to_dict_writes_exactly_the_wire_schema(predictor):
    for p in (predictor.predict(canvas(SEVEN)), predictor.predict(BLANK)):
        d = p.to_dict()
        assert list(d) == keys(wire.DigitDict)
        assert [list(t) for t in d["top3"]] == [keys(wire.TopEntry)] * 3
    number = predictor.read_number(EXAMPLES / "numbers" / "4096.png").to_dict()
    assert list(number) == keys(wire.NumberDict)
    assert [list(d) for d in number["digits"]] == [keys(wire.BoxedDigitDict)] * 4
    assert list(predictor.read_number(BLANK).to_dict()) == keys(wire.NumberDict)


@pytest.fixture(scope="module")
def client(predictor, tmp_path_factory):
    db = tmp_path_factory.mktemp("wire") / "fb.sqlite3"
    with TestClient(create_app(db=db, predictor=predictor)) as c:
        yield c


def test_openapi_describes_every_wire_field_and_the_reasons(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for model, shape in [
        ("PredictResponse", wire.DigitDict),
        ("NumberDigit", wire.BoxedDigitDict),
        ("ReadNumberResponse", wire.NumberDict),
    ]:
        properties = schemas[model]["properties"]
        for key, hint in get_type_hints(shape, include_extras=True).items():
            assert properties[key]["description"] == hint.__metadata__[0], (model, key)
        reason = properties["reason"]["anyOf"][0]
        assert reason["enum"] == list(REASONS)
    assert set(schemas["TopEntry"]["properties"]) == set(keys(wire.TopEntry))


def test_the_page_has_the_reasons_from_the_server_and_no_copy(client):
    page = client.get("/").text
    found = re.search(r'<body data-reasons="([^"]*)">', page)
    assert found and json.loads(html.unescape(found[1])) == REASONS
    script = (STATIC / "app.js").read_text()
    assert not [words for words in REASONS.values() if words.lower() in script.lower()]
