"""OpenAPI descriptions of bodies the routes read by hand (to control errors)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_PART = "[0-9]+(ms|s|m|h|d|w)"
_DURATION_PATTERN = rf"^\s*([0-9]+|{_PART}(\+{_PART})*)\s*$"
_DURATION = {
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {
            "type": "string",
            "pattern": _DURATION_PATTERN,
        },
    ],
    "description": "milliseconds, or parts such as '1h+30m' (units ms, s, m, h, d, w)",
}

JOB_REQUEST_SCHEMA: dict[str, object] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "additionalProperties": False,
                "required": ["interval", "return_url"],
                "properties": {
                    "interval": _DURATION,
                    "delay": _DURATION,
                    "occurrences": {
                        "type": ["integer", "null"],
                        "minimum": 1,
                        "maximum": 1_000_000_000,
                        "description": "omitted or null: until cancelled",
                    },
                    "name": {"type": ["string", "null"], "maxLength": 255},
                    "return_url": {
                        "type": "string",
                        "format": "uri",
                        "maxLength": 2048,
                    },
                    "payload": {"type": ["string", "null"]},
                    "callback_type": {
                        "type": "string",
                        "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"],
                        "description": "case-insensitive; default POST",
                    },
                    "notify_status_not_ok": {
                        "type": ["string", "null"],
                        "format": "uri",
                    },
                },
            },
            "example": {
                "interval": "1h+30m",
                "delay": "1m",
                "occurrences": 1000,
                "name": "my job request",
                "return_url": "https://example.com/hook",
                "payload": '{"request_report_for_user_id":1234}',
                "callback_type": "POST",
                "notify_status_not_ok": "https://example.com/alerts",
            },
        }
    },
}

COMMENT_SCHEMA: dict[str, object] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["executionId", "comment"],
                "properties": {
                    "executionId": {"type": "string", "format": "uuid"},
                    "comment": {"type": "string", "minLength": 1, "maxLength": 10000},
                },
            }
        }
    },
}

ERROR_SCHEMA: dict[str, object] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field", "details"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
                "details": {"type": "string"},
            },
        },
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
_ERROR_MEANINGS = {
    "400": "a parameter or field breaks a rule; every problem is listed",
    "401": "HTTP Basic credentials are missing or wrong",
    "403": "the signed link's token does not match this job and action",
    "404": "no such job or execution",
    "413": "the request body is larger than LOOPITIS_REQUEST_MAX_BYTES",
    "415": "the request body is not sent as application/json",
    "431": "the request has more header fields than LOOPITIS_REQUEST_MAX_HEADERS",
    "503": "the database is unavailable; retry after the Retry-After seconds",
}
# The error answers each operation can give, by path; every one may also
# answer 431 before any route runs.
_ERRORS_BY_PATH = {
    "/set/notifier": ("400", "401", "413", "415", "503"),
    "/requests/get_list": ("400", "401", "403", "404", "503"),
    "/requests/cancel_task": ("400", "401", "403", "404", "503"),
    "/set/execution/comment": ("400", "401", "404", "413", "415", "503"),
    "/health": (),
}
_AUTHENTICATED_ERRORS = ("400", "401", "404", "503")


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace FastAPI's 422 with the error answers the gateway really gives."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            errors = _ERRORS_BY_PATH.get(path, _AUTHENTICATED_ERRORS)
            for code in (*errors, "431"):
                responses.setdefault(code, _error_response(code))
    schema.get("components", {}).get("schemas", {}).pop("HTTPValidationError", None)
    schema.get("components", {}).get("schemas", {}).pop("ValidationError", None)
    return schema


def _error_response(code: str) -> dict[str, object]:
    return {
        "description": _ERROR_MEANINGS[code],
        "content": {"application/json": {"schema": ERROR_SCHEMA}},
    }


def install_error_documentation(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe the gateway's real error answers."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        # FastAPI caches the generated schema; fixing it up again is harmless.
        return document_errors(generate())

    app.openapi = openapi  # type: ignore[method-assign]
