"""What the routes are handed (FastAPI dependencies), so that tests can put their own in place
(`app.dependency_overrides[get_predictor] = ...`). Everything comes from `app.state`, which
the app factory and its lifespan fill."""

from __future__ import annotations

import hmac
from time import perf_counter
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from ..feedback import FeedbackStore
from ..reading.predictor import Predictor
from .metrics import Metrics
from .payload import ApiError
from .work import Readers

STARTED = "digitrec.started"  # scope key: when the request reached the app (set by the edge)
# scope key: the event loop's time by which the request must be in (set by the protocol)
DEADLINE = "digitrec.deadline"


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


async def same_origin(request: Request) -> None:
    """Writes come from this server's own page, or from no page at all.

    A form on any web site can POST here (multipart needs no preflight), and the visitor's
    browser would send it: so a request a browser marks as made by another site is refused.
    Sec-Fetch-Site is the browser's own word and survives a proxy that rewrites Host, so it
    decides when present; else Origin must name this host (Host, or X-Forwarded-Host, which
    a cross-site form cannot set). A request with neither (curl, scripts) was not sent by a
    browser on a page's behalf, and stays allowed."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site.lower() in ("same-origin", "none"):
            return
        refused = f"a request from another site (Sec-Fetch-Site: {site})"
    else:
        origin = request.headers.get("origin")
        if origin is None:
            return
        named = [request.headers.get("host", ""), *request.headers.getlist("x-forwarded-host")]
        ours = {h.strip().lower() for value in named for h in value.split(",")} - {""}
        try:
            netloc = urlsplit(origin.strip()).netloc.lower()
        except ValueError:
            netloc = ""
        if netloc and netloc in ours:
            return
        refused = f"a request from another origin ({origin[:100]})"
    raise ApiError(403, "cross_origin", f"{refused}: this route only takes this site's page")


async def get_store(request: Request) -> FeedbackStore:
    store = request.app.state.store
    if store is None:
        raise ApiError(503, "not_ready", "the feedback store is not open yet")
    return store


async def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def get_readers(request: Request) -> Readers:
    return request.app.state.readers


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
StoreDep = Annotated[FeedbackStore, Depends(get_store)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ReadersDep = Annotated[Readers, Depends(get_readers)]


def started_at(request: Request) -> float:
    return request.scope.get(STARTED) or perf_counter()
