"""OpenAPI descriptions of bodies the routes read by hand (to control errors)."""

from __future__ import annotations

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
