"""The routes: the drawing page at /, the JSON API under /api, health and metrics."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from time import perf_counter

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..errors import DigitrecError
from ..reading.predictor import REASONS, Prediction, Predictor
from ..reading.preprocess import MAX_PIXELS
from . import work
from .deps import (
    MetricsDep,
    PredictorDep,
    ReadersDep,
    StoreDep,
    require_admin,
    same_origin,
    started_at,
)
from .metrics import CONTENT_TYPE
from .payload import FORMATS, ApiError, parse_json, read_request
from .schemas import (
    ErrorBody,
    FeedbackRequest,
    FeedbackResponse,
    Health,
    ImageRequest,
    Info,
    Limits,
    ModelChange,
    ModelChanged,
    ModelInfo,
    PredictResponse,
    ReadNumberResponse,
    Ready,
)
from .swap import load, switch

STATIC = Path(__file__).parent / "static"
ERRORS = {
    400: {"model": ErrorBody, "description": "malformed body (not JSON, broken multipart)"},
    413: {"model": ErrorBody, "description": "body over the limit"},
    415: {"model": ErrorBody, "description": "not a picture (PNG, JPEG, WebP or BMP)"},
    422: {"model": ErrorBody, "description": "undecodable picture or a bad field"},
    503: {
        "model": ErrorBody,
        "description": "busy: too many pictures in this worker (retry after Retry-After "
        "seconds), or not ready: the model is not loaded yet",
    },
}
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # everything the page needs is served from here: no CDN, works offline
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
}


def form_field(schema: dict) -> dict:
    """A JSON field's schema as a form field: a form has no null (leave the field out)."""
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    if len(options) != 1:
        return schema
    out = {**options[0], **{k: v for k, v in schema.items() if k not in ("anyOf", "default")}}
    return out


def image_body(json_model) -> dict:
    """OpenAPI for a body that is multipart, JSON or a bare picture (read by read_request)."""
    fields = {"file": {"type": "string", "format": "binary"}}
    json_schema = json_model.model_json_schema()
    for name, schema in json_schema["properties"].items():
        if name != "image":
            fields[name] = form_field(schema)
    picture = {"schema": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": fields,
                        "required": [
                            "file",
                            *[r for r in json_schema.get("required", []) if r != "image"],
                        ],
                    },
                    "encoding": {"file": {"contentType": ", ".join(FORMATS)}},
                },
                "application/json": {"schema": json_schema},
                **({t: picture for t in FORMATS} if json_model is ImageRequest else {}),
            },
        }
    }


def png_data_url(x: np.ndarray | None) -> str | None:
    if x is None:
        return None
    pixels = (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "L").save(out, "PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def model_info(predictor: Predictor) -> ModelInfo:
    card = predictor.card
    return ModelInfo(name=predictor.name, version=card.get("version"), date=card.get("date"))


def reading(p: Prediction) -> dict:
    return {**p.to_dict(), "input": png_data_url(p.input)}


def elapsed_ms(request: Request) -> float:
    return round(1000 * (perf_counter() - started_at(request)), 3)


# ---------------------------------------------------------------- the API

api = APIRouter(prefix="/api", tags=["api"], responses=ERRORS)


@api.post(
    "/predict",
    response_model=PredictResponse,
    summary="Read one digit",
    openapi_extra=image_body(ImageRequest),
)
async def predict(
    request: Request, predictor: PredictorDep, metrics: MetricsDep, readers: ReadersDep
):
    """The digit in the picture, its calibrated confidence and all ten probabilities, or a
    refusal (`refused`, with `reason` blank, not_a_digit or unsure), and the 28x28 picture
    the model saw."""
    sent = await read_request(request, ImageRequest)
    # even the page's small drawings are read off the loop: a few milliseconds each add up
    # to a stall for everyone when many come at once
    p = await readers.run(request, work.read_digit, predictor, sent)
    metrics.reading(p.digit, p.refused, p.reason)
    return PredictResponse(
        **reading(p), model=model_info(predictor), elapsed_ms=elapsed_ms(request)
    )


@api.post(
    "/read-number",
    response_model=ReadNumberResponse,
    summary="Read every digit (a number)",
    openapi_extra=image_body(ImageRequest),
)
async def read_number(
    request: Request, predictor: PredictorDep, metrics: MetricsDep, readers: ReadersDep
):
    """Every digit in the picture, lines top to bottom and left to right, each with its
    box in the picture's pixels; `number` is the digits as written ('?' for a refused one)."""
    sent = await read_request(request, ImageRequest)
    result = await readers.run(request, work.read_number, predictor, sent)
    if not result.digits:
        metrics.reading(None, True, "blank")
    for p in result.digits:
        metrics.reading(p.digit, p.refused, p.reason)
    return ReadNumberResponse(
        **{**result.to_dict(), "digits": [reading(p) for p in result.digits]},
        model=model_info(predictor),
        elapsed_ms=elapsed_ms(request),
    )


@api.post(
    "/feedback",
    response_model=FeedbackResponse,
    status_code=201,
    summary="Store a corrected sample",
    openapi_extra=image_body(FeedbackRequest),
    dependencies=[Depends(same_origin)],
    responses={403: {"model": ErrorBody, "description": "sent from another site's page"}},
)
async def feedback(
    request: Request,
    predictor: PredictorDep,
    store: StoreDep,
    metrics: MetricsDep,
    readers: ReadersDep,
):
    """A picture and the digit it really shows (and what was predicted), kept for
    evaluation and training; `digitrec feedback export DIR` writes them as a folder dataset.
    Only this site's page (or a client that is not a browser) may send it."""
    sent = await read_request(request, FeedbackRequest)
    data, fields = await readers.run(request, work.check_feedback, predictor, sent)
    sample_id = await run_in_threadpool(
        store.add, data, fields.label, fields.predicted, model=predictor.name
    )
    metrics.feedback.inc()
    return FeedbackResponse(id=sample_id, label=fields.label, predicted=fields.predicted)


@api.get("/info", response_model=Info, summary="The model and the limits")
async def info(request: Request, predictor: PredictorDep):
    return Info(
        version=__version__,
        model=model_info(predictor),
        threshold=predictor.threshold,
        tie_margin=predictor.tie_margin,
        limits=Limits(
            max_body_bytes=request.app.state.settings.max_body,
            max_pixels=MAX_PIXELS,
            formats=list(FORMATS.values()),
        ),
    )


# ---------------------------------------------------------------- admin (with a token only)

admin = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_admin), Depends(same_origin)],
    responses={
        400: ERRORS[400],
        401: {"model": ErrorBody, "description": "no bearer token"},
        403: {"model": ErrorBody, "description": "a wrong token, or sent from another site"},
        422: {"model": ErrorBody, "description": "no such model, or one that cannot read"},
    },
)


@admin.post(
    "/model",
    response_model=ModelChanged,
    summary="Change the model every worker reads with",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ModelChange.model_json_schema()}},
        }
    },
)
async def change_model(request: Request, _ready: PredictorDep):
    """Load the model (a name in the models folder, `bundled`, or a file on the server),
    read a digit with it, then switch every worker to it. Requests already started finish
    on the old model; a model that fails to load or read is refused and the old one stays."""
    # not a declared body parameter: FastAPI would parse that before the token is checked,
    # and answer a stranger's broken JSON with 400 rather than 401
    change = parse_json(await request.body(), ModelChange)
    app = request.app
    state = app.state.model_state
    async with state.lock:
        try:
            new = await run_in_threadpool(load, change.model, app.state.settings.threads)
        except DigitrecError as e:
            raise ApiError(422, "invalid_model", str(e))
        state.publish(new.path)
        previous = app.state.predictor
        switch(app, new)
    return ModelChanged(model=model_info(new), previous=model_info(previous), path=str(new.path))


# ---------------------------------------------------------------- page, health, metrics

pages = APIRouter()


def page() -> str:
    """The drawing page, with the words for each refusal reason in it: the page keeps no
    copy of its own, and needs no request before its first reading."""
    reasons = html.escape(json.dumps(REASONS), quote=True)
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    return text.replace('data-reasons=""', f'data-reasons="{reasons}"', 1)


@pages.get("/", include_in_schema=False)
async def index():
    return HTMLResponse(page(), headers=PAGE_HEADERS)


@pages.get("/healthz", response_model=Health, tags=["health"], summary="The process is alive")
async def healthz():
    return Health(status="ok")


@pages.get(
    "/readyz",
    response_model=Ready,
    tags=["health"],
    summary="The model is loaded",
    responses={503: {"model": ErrorBody}},
)
async def readyz(request: Request):
    app = request.app
    if app.state.predictor is None or app.state.store is None:
        raise ApiError(503, "not_ready", "the model is not loaded yet")
    await app.state.model_state.follow(app)
    return Ready(status="ready", model=model_info(app.state.predictor))


@pages.get(
    "/metrics",
    tags=["health"],
    summary="Prometheus metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Prometheus's text exposition format",
            "content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
)
async def metrics(metrics: MetricsDep):
    return PlainTextResponse(metrics.exposition(), media_type=CONTENT_TYPE)
