"""What the routes are handed (FastAPI dependencies), so that tests can put their own in place
(`app.dependency_overrides[get_predictor] = ...`). Everything comes from `app.state`, which
the app factory and its lifespan fill."""

from __future__ import annotations

import hmac
from time import perf_counter
from typing import Annotated

from fastapi import Depends, Request

from ..feedback import FeedbackStore
from ..reading.predictor import Predictor
from .metrics import Metrics
from .payload import ApiError

STARTED = "digitrec.started"  # scope key: when the request reached the app (set by the edge)


async def get_predictor(request: Request) -> Predictor:
    app = request.app
    if app.state.predictor is None:
        raise ApiError(503, "not_ready", "the model is not loaded yet")
    # another worker may have changed the model: follow it before this request starts
    await app.state.model_state.follow(app)
    return app.state.predictor


async def require_admin(request: Request) -> None:
    """`Authorization: Bearer <$DIGITREC_ADMIN_TOKEN>`, compared in constant time."""
    scheme, _, given = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        e = ApiError(401, "unauthorized", "this route needs 'Authorization: Bearer <token>'")
        e.headers = {"WWW-Authenticate": "Bearer"}
        raise e
    if not hmac.compare_digest(given.strip().encode(), request.app.state.admin_token.encode()):
        raise ApiError(403, "forbidden", "the admin token is wrong")


async def get_store(request: Request) -> FeedbackStore:
    store = request.app.state.store
    if store is None:
        raise ApiError(503, "not_ready", "the feedback store is not open yet")
    return store


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
StoreDep = Annotated[FeedbackStore, Depends(get_store)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]


def started_at(request: Request) -> float:
    return request.scope.get(STARTED) or perf_counter()
