"""The HTTP protocol `digitrec serve` gives uvicorn: its own (httptools) with a deadline for
every request and a bound on its head, and errors as our JSON.

uvicorn closes a connection only when it idles between requests (--timeout-keep-alive): one
that never finishes its headers, or trickles its body, is held for ever, so a few hundred of
them hold a worker's sockets and memory. Here a request must be in, head and body, within
`request_timeout` seconds of its first byte (of the connection, for the first request):
- head not in by then: a 408 written here (there is no ASGI request yet), then closed;
- body not in: the app answers 408 itself at the same deadline (the Edge times its body
  reads by it, `DEADLINE` in the scope), and the connection is closed a moment later
  whatever the app did.
A connection that sent nothing at all is closed without a word, as an idle one is.

httptools keeps a header value in memory until it ends and sets no limit of its own, so the
bytes of a head are counted as they come and a head over `MAX_HEAD` is refused with 431.
What httptools refuses to parse (a broken Content-Length, a request line that is not HTTP)
is answered with our JSON error rather than uvicorn's plain-text 400. These answers never
reach the app, so /metrics does not count them.
"""

from __future__ import annotations

import json
from asyncio import TimerHandle
from functools import cache

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .deps import DEADLINE
from .settings import Settings

GRACE = 1.0  # seconds the app has to send its own 408 before the connection is closed
MAX_HEAD = 64 * 1024  # request line and headers; a browser's are a few kilobytes


@cache
def request_timeout() -> float:
    """The workers' setting (it travels in the environment, as every setting does), read
    once per process rather than once per connection."""
    return Settings.from_env().request_timeout


def error_bytes(status: int, code: str, message: str, default_headers) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = [STATUS_LINE[status]]
    for name, value in default_headers:
        head += [name, b": ", value, b"\r\n"]
    head += [
        b"content-type: application/json\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n\r\n",
    ]
    return b"".join(head) + body


class DeadlineProtocol(HttpToolsProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timeout = request_timeout()
        self.timer: TimerHandle | None = None
        self.deadline: float | None = None  # of the request being received; None: none is
        self.head_open = True  # the next bytes are (part of) a request's head
        self.in_body = False  # a head is in, its body is not
        self.head_bytes = 0
        self.started = False  # a byte of the current request has come
        self.requests = 0  # received in full on this connection
        self.lingering = False  # answered and closing: what still comes is dropped

    # -- the clock: from the connection (first request) or the first byte (later ones)

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._start_clock()

    def _start_clock(self) -> None:
        self.deadline = self.loop.time() + self.timeout
        self._arm(self.timeout, self._expired)

    def _arm(self, delay: float, callback) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_later(delay, callback)

    def _stop_clock(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.deadline = None

    def connection_lost(self, exc) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    # -- parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.started = True
        if self.deadline is None:  # a later request on a kept-alive connection
            self._start_clock()
        self.scope[DEADLINE] = self.deadline

    def on_headers_complete(self) -> None:
        self.head_open, self.in_body = False, True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.head_open, self.in_body, self.head_bytes, self.started = True, False, 0, False
        self.requests += 1
        self._stop_clock()

    def data_received(self, data: bytes) -> None:
        if self.lingering:
            return
        was_in_body, requests = self.in_body, self.requests
        super().data_received(data)
        # only a chunk that is all head counts: one that began in a body or held a whole
        # request may also hold the next head's start, so a head may run one chunk (at
        # most 256 KiB) over the limit, which still bounds it
        all_head = not was_in_body and requests == self.requests
        if self.head_open and all_head and not self.transport.is_closing():
            self.head_bytes += len(data)
            if self.head_bytes > MAX_HEAD:
                message = f"the request line and headers are over {MAX_HEAD:,} bytes"
                self._refuse(431, "headers_too_large", message, interrupt=True)

    # -- answers of our own

    def send_400_response(self, msg: str) -> None:
        # what follows a broken request cannot be trusted: it answers in place of a request
        # that has not answered yet (a body longer than its Content-Length says)
        message = f"not a valid HTTP request ({msg.rstrip('.')})"
        self._refuse(400, "malformed_request", message, interrupt=True)

    def _refuse(self, status: int, code: str, message: str, interrupt: bool = False) -> None:
        """Answer, unless another answer is being written on this connection, and close."""
        self._stop_clock()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        idle = cycle is None or cycle.response_complete
        if idle or (interrupt and not cycle.response_started):
            if not idle:
                cycle.disconnected = True  # its app's answer must not follow this one
                cycle.message_event.set()
            head = self.server_state.default_headers
            self.transport.write(error_bytes(status, code, message, head))
            if self.transport.can_write_eof():
                # closing with the rest of the request unread would reset the connection,
                # and a reset may destroy the answer before the client reads it: end our
                # side, drop what still comes for a moment, then close
                self.transport.write_eof()
                self.lingering = True
                self._arm(GRACE, self._close)
                return
        self.transport.close()

    def _expired(self) -> None:
        self.timer = None
        if self.transport.is_closing():
            return
        if self.head_open:
            if not self.started:
                self.transport.close()  # nothing was asked: nothing to answer
                return
            message = f"the request was not sent within {self.timeout:g} s"
            self._refuse(408, "request_timeout", message)
        elif self.cycle.response_started:
            # answered without reading all of the body (a 413, a route that ignores it)
            self.transport.close()
        else:
            self._arm(GRACE, self._close)  # the app's own 408 is on its way

    def _close(self) -> None:
        self.timer = None
        if not self.transport.is_closing():
            self.transport.close()
