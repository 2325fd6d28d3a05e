"""Reading a JSON body without buffering more than the configured limit."""

from __future__ import annotations

import json

from fastapi import Request

from loopitis.errors import InvalidField
from loopitis.gateway.problems import PayloadTooLarge


async def read_json(request: Request, limit: int) -> object:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
    return _decode(b"".join(chunks))


def _decode(raw: bytes) -> object:
    if not raw.strip():
        raise InvalidField("body", "the request body is empty; send a JSON object")
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidField(
            "body", f"the request body is not valid JSON: {str(exc)[:200]}"
        ) from exc


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")
