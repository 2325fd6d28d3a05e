"""Request ids, one log line and request metrics for every gateway request."""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from loopitis.gateway.metrics import REQUEST_DURATION, REQUESTS
from loopitis.logs import request_id
from loopitis.model.job import status_class

log = logging.getLogger("loopitis.gateway.requests")
REQUEST_ID_HEADER = "x-request-id"
# A caller's own id is kept when it is short and plain; otherwise we make one.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
# Polled or streamed paths log at DEBUG so INFO stays one line per real request.
_QUIET_PREFIXES = ("/health", "/metrics", "/ui/static", "/ui/events")


class RequestObserver:
    """Pure ASGI middleware, so streamed responses (SSE) pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        current = _incoming_id(scope) or uuid.uuid4().hex[:16]
        token = request_id.set(current)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), current.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            _record(scope, status, time.perf_counter() - started)
            request_id.reset(token)


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1")
            return text if _ACCEPTABLE_ID.match(text) else None
    return None


def _record(scope: Scope, status: int, elapsed_s: float) -> None:
    route = scope.get("route")
    template = str(getattr(route, "path", "unmatched"))
    REQUESTS.labels(scope["method"], template, status_class(status)).inc()
    path: str = scope["path"]
    if not path.startswith("/ui/events"):
        REQUEST_DURATION.labels(template).observe(elapsed_s)
    level = logging.DEBUG if path.startswith(_QUIET_PREFIXES) else logging.INFO
    log.log(
        level,
        "%s %s %d %.1f ms",
        scope["method"],
        path,
        status,
        elapsed_s * 1000,
    )
