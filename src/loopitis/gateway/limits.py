"""Limits checked before a request reaches a route."""

from __future__ import annotations

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from loopitis.gateway.problems import error_body


class HeaderCountLimit:
    """Answers 431 to a request with more header fields than ``max_headers``.

    uvicorn bounds the bytes of the header block (h11's 16 KiB); this bounds
    how many fields a request may spread them over, before any route runs.
    """

    def __init__(self, app: ASGIApp, max_headers: int) -> None:
        self.app = app
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or len(scope["headers"]) <= self.max_headers:
            await self.app(scope, receive, send)
            return
        body = error_body(
            431,
            f"the request has {len(scope['headers'])} header fields; "
            f"at most {self.max_headers} are accepted",
            "headers",
            "LOOPITIS_REQUEST_MAX_HEADERS sets the limit",
        )
        response = JSONResponse(body, status_code=431, headers={"Connection": "close"})
        await response(scope, receive, send)
