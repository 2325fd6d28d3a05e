"""The error body of API.md, and the handlers that produce it."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from loopitis.errors import (
    InvalidField,
    InvalidRequest,
    NotFound,
    StorageUnavailable,
)

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5


class PayloadTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body exceeds {limit} bytes")
        self.limit = limit


class UnsupportedMediaType(Exception):
    def __init__(self, media_type: str) -> None:
        super().__init__(f"media type {media_type} is not JSON")
        self.media_type = media_type


class LinkForbidden(Exception):
    """A signed link whose token does not match its job and action."""


def error_body(
    code: int, message: str, field: str | None = None, details: str = ""
) -> dict[str, object]:
    return {
        "error": {"code": code, "message": message, "field": field, "details": details}
    }


def problems_body(problems: list[InvalidField]) -> dict[str, object]:
    first = problems[0]
    body = error_body(400, first.message, first.field, first.details)
    if len(problems) > 1:
        body["errors"] = [
            error_body(400, p.message, p.field, p.details)["error"] for p in problems
        ]
    return body


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(InvalidRequest, _invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidField, _invalid_field)  # type: ignore[arg-type]
    app.add_exception_handler(NotFound, _not_found)  # type: ignore[arg-type]
    app.add_exception_handler(StorageUnavailable, _storage_down)  # type: ignore[arg-type]
    app.add_exception_handler(PayloadTooLarge, _too_large)  # type: ignore[arg-type]
    app.add_exception_handler(LinkForbidden, _forbidden)  # type: ignore[arg-type]
    app.add_exception_handler(UnsupportedMediaType, _not_json)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _bad_parameters)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]


async def _invalid_request(_: Request, exc: InvalidRequest) -> JSONResponse:
    return JSONResponse(problems_body(exc.problems), status_code=400)


async def _invalid_field(_: Request, exc: InvalidField) -> JSONResponse:
    return JSONResponse(problems_body([exc]), status_code=400)


async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
    return JSONResponse(error_body(404, str(exc), exc.field), status_code=404)


async def _storage_down(request: Request, exc: StorageUnavailable) -> JSONResponse:
    log.warning("%s %s answered 503: %s", request.method, request.url.path, exc)
    body = error_body(
        503,
        "the database is unavailable; nothing was changed, retry later",
        details=f"retry after {RETRY_AFTER_S} s",
    )
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    return JSONResponse(body, status_code=503, headers=headers)


async def _too_large(_: Request, exc: PayloadTooLarge) -> JSONResponse:
    body = error_body(
        413,
        f"the request body is larger than {exc.limit} bytes",
        "body",
        "LOOPITIS_REQUEST_MAX_BYTES sets the limit",
    )
    return JSONResponse(body, status_code=413)


async def _not_json(_: Request, exc: UnsupportedMediaType) -> JSONResponse:
    body = error_body(
        415,
        f"the body must be sent as application/json, not {exc.media_type[:80]}",
        "Content-Type",
        "set the header Content-Type: application/json",
    )
    return JSONResponse(body, status_code=415)


async def _forbidden(_: Request, exc: LinkForbidden) -> JSONResponse:
    body = error_body(403, "the link token does not match this job", "token")
    return JSONResponse(body, status_code=403)


async def _bad_parameters(_: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [
        InvalidField(
            str(error["loc"][-1]) if error["loc"] else "request",
            f"{error['loc'][-1] if error['loc'] else 'request'}: {error['msg']}",
        )
        for error in exc.errors()
    ]
    return JSONResponse(problems_body(problems), status_code=400)


async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
    body = error_body(exc.status_code, str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
