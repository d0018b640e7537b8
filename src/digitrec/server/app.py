"""The web service: an app factory, its lifespan (the model is loaded there), and the edge
that times every request, bounds bodies and turns every error into a JSON body
{"error": {"code": ..., "message": ...}}. The routes are in routes.py, what they are handed
in deps.py."""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict
from time import perf_counter

import anyio
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from .. import __version__
from ..errors import BadImageError, ConfigError, DigitrecError, EmptyImageError
from ..feedback import FeedbackStore
from ..reading.predictor import Predictor
from .deps import DEADLINE, STARTED
from .docs import install_docs
from .metrics import Metrics
from .payload import ApiError, BodyTooLarge
from .routes import STATIC, admin, api, pages
from .settings import ADMIN_TOKEN_ENV, DEFAULT_MAX_BODY, DEFAULT_REQUEST_TIMEOUT, Settings
from .swap import ModelState, load, log, switch, warm_up
from .work import Readers

ABOUT = {  # what /docs says of the whole service
    "title": "digitrec",
    "version": __version__,
    "summary": "Read handwritten digits: one digit or a whole number, from a drawing or a photo.",
    "description": "Send a picture (PNG, JPEG, WebP or BMP) as a multipart file named "
    '`file`, as JSON `{"image": "data:image/png;base64,..."}`, or as the body itself. '
    'Every error is JSON `{"error": {"code": ..., "message": ...}}`.',
}
CODES = {
    400: "malformed_body",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_field",
    503: "not_ready",
}
CLIENT_GONE = 499  # nginx's "client closed request": counted, never sent


def error_response(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


# ---------------------------------------------------------------- the edge


class Edge:
    """Outermost ASGI layer: counts and times every request (by route template, so the
    label set stays small), refuses bodies over the limit, by Content-Length at once or
    while they stream in, and bodies not in by the request's deadline (408): the one
    `digitrec serve`'s protocol puts in the scope, counted from the request's first byte,
    else `request_timeout` from here."""

    def __init__(self, app, metrics: Metrics, max_body: int, routes: set[str], request_timeout):
        self.app = app
        self.metrics = metrics
        self.max_body = max_body
        self.routes = routes
        self.request_timeout = request_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = scope[STARTED] = perf_counter()
        deadline = scope.get(DEADLINE) or anyio.current_time() + self.request_timeout
        status = 500  # unless a response starts
        counted = False

        def count():
            nonlocal counted
            if counted:
                return
            counted = True
            path = getattr(scope.get("route"), "path", None)
            if path is None:
                path = scope["path"] if scope["path"] in self.routes else "other"
            self.metrics.request(path, scope["method"], status, started)

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                count()  # before the client has the whole answer, so a scrape after it sees it
            await send(message)

        received = 0
        body_in = False

        async def bounded_receive():
            nonlocal received, body_in
            if body_in:  # only a disconnect can come now: no deadline for that
                return await receive()
            try:
                with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                    message = await receive()
            except TimeoutError:
                raise RequestTimeout(self.request_timeout)
            body_in = message["type"] != "http.request" or not message.get("more_body")
            received += len(message.get("body", b""))
            if received > self.max_body:
                raise BodyTooLarge(self.max_body)
            return message

        try:
            length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
            if length is not None and length.isdigit() and int(length) > self.max_body:
                e = BodyTooLarge(self.max_body)
                await error_response(413, e.code, e.message)(scope, receive, send_status)
            else:
                await self.app(scope, bounded_receive, send_status)
        finally:
            count()


class RequestTimeout(ApiError):
    def __init__(self, seconds: float):
        # the rest of the body may still come: the connection cannot serve another request
        message = f"the request body was not sent within {seconds:g} s"
        super().__init__(408, "request_timeout", message, headers={"Connection": "close"})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request, e: ApiError):
        return error_response(e.status_code, e.code, e.message, e.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request, e: HTTPException):
        code = CODES.get(e.status_code, "error" if e.status_code < 500 else "internal")
        return error_response(e.status_code, code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {"type": "", "loc": (), "msg": "invalid"}
        if first["type"] == "json_invalid":
            return error_response(400, "malformed_body", "the body is not valid JSON")
        where = ".".join(str(p) for p in first["loc"])
        return error_response(422, "invalid_field", f"{where}: {first['msg']}")

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request, e: ClientDisconnect):
        # the client left before its request was in (or before its turn came): no one is
        # there to read an answer, and it is not the server's failure
        return Response(status_code=CLIENT_GONE)

    @app.exception_handler(DigitrecError)
    async def digitrec_error(request, e: DigitrecError):
        if isinstance(e, EmptyImageError):
            return error_response(422, "blank_image", str(e))
        if isinstance(e, BadImageError):
            return error_response(422, "bad_image", str(e))
        if isinstance(e, ConfigError):
            return error_response(422, "invalid_field", str(e))
        return error_response(500, "internal", str(e))

    @app.exception_handler(Exception)
    async def crash(request, e: Exception):
        return error_response(500, "internal", f"the server failed ({type(e).__name__})")


# ---------------------------------------------------------------- the app


async def _load_first(app: FastAPI) -> Predictor:
    settings: Settings = app.state.settings
    model = app.state.model_state.startup_model(settings.model)
    try:
        return await run_in_threadpool(load, model, settings.threads)
    except DigitrecError as e:
        if model == settings.model:
            raise
        # the model changed to is unusable since: start as the command line says
        log.error("digitrec: the model changed to fails (%s); using %s", e, settings.model)
        return await run_in_threadpool(load, settings.model, settings.threads)


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    if app.state.predictor is None:
        switch(app, await _load_first(app))
    else:
        await run_in_threadpool(warm_up, app.state.predictor)
    await app.state.readers.open(app.state.predictor)
    own_store = app.state.store is None
    if own_store:
        app.state.store = FeedbackStore(settings.db)
    poller = None
    if app.state.model_state.path is not None:
        poller = asyncio.create_task(app.state.model_state.poll(app))
    try:
        yield
    finally:
        if poller is not None:
            poller.cancel()
            with suppress(asyncio.CancelledError):
                await poller
        await app.state.readers.close()
        if own_store:
            app.state.store.close()
            app.state.store = None


def create_app(
    model: str | os.PathLike | None = None,
    db: str | os.PathLike | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    predictor: Predictor | None = None,
    threads: int | None = 1,
    store: FeedbackStore | None = None,
    model_state: str | os.PathLike | None = None,
    admin_token: str | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    reading_threads: int = 2,
    reading_queue: int = 16,
    reading_processes: bool = False,
) -> FastAPI:
    """The digitrec web service. The Predictor (`model`, else $DIGITREC_MODEL, else the
    bundled one) and the feedback store (`db`, else the user data folder) are opened in the
    lifespan unless given. The admin route (changing the model) is there only with an
    `admin_token`, else $DIGITREC_ADMIN_TOKEN; `model_state` is the file through which the
    workers of one server follow a change (without it, a change is this process's only).
    A request's body must be in within `request_timeout` seconds; `reading_threads`
    pictures are read at once (in as many processes with `reading_processes`, as
    `digitrec serve` does), `reading_queue` more may wait (see work.py)."""
    settings = Settings(
        str(model) if model else None,
        str(db) if db else None,
        int(max_body),
        threads,
        str(model_state) if model_state else None,
        float(request_timeout),
        int(reading_threads),
        int(reading_queue),
        bool(reading_processes),
    )
    if admin_token is None:
        admin_token = os.environ.get(ADMIN_TOKEN_ENV)
    app = FastAPI(**ABOUT, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.predictor = predictor
    app.state.store = store
    app.state.metrics = Metrics()
    app.state.readers = Readers(
        settings.reading_threads,
        settings.reading_queue,
        processes=settings.reading_processes,
        model_threads=threads,
    )
    app.state.model_state = ModelState(settings.model_state)
    app.state.admin_token = admin_token or None
    install_routes(app)
    install_error_handlers(app)
    routes = {r.path for r in [*pages.routes, *api.routes, *app.routes] if hasattr(r, "path")}
    app.add_middleware(
        Edge,
        metrics=app.state.metrics,
        max_body=settings.max_body,
        routes=routes,
        request_timeout=settings.request_timeout,
    )
    return app


def install_routes(app: FastAPI) -> None:
    app.include_router(pages)
    app.include_router(api)
    if app.state.admin_token:
        app.include_router(admin)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_docs(app)


def app_from_env() -> FastAPI:
    """The factory `digitrec serve` gives uvicorn (by import string, as several workers
    need), with the settings it put in the environment."""
    return create_app(**asdict(Settings.from_env()))
