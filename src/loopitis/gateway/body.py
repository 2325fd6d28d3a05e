"""Reading a JSON body without buffering more than the configured limit."""

from __future__ import annotations

import json

from fastapi import Request

from loopitis.errors import InvalidField
from loopitis.gateway.problems import PayloadTooLarge, UnsupportedMediaType

MAX_NESTING = 64


async def read_json(request: Request, limit: int) -> object:
    """The body as JSON; only ``application/json`` bodies are read.

    Requiring the JSON media type also keeps a foreign web page from posting
    here with a browser's cached credentials: plain forms cannot send it.
    """
    _require_json_media_type(request.headers.get("content-type", ""))
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
    return decode(b"".join(chunks))


def _require_json_media_type(content_type: str) -> None:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    raise UnsupportedMediaType(media_type or "none")


def decode(raw: bytes) -> object:
    """Parse JSON text, refusing what a JSON parser would let slip by silently."""
    if not raw.strip():
        raise InvalidField("body", "the request body is empty; send a JSON object")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidField(
            "body", f"the request body is not valid UTF-8 (byte {exc.start})"
        ) from exc
    if _nesting(text) > MAX_NESTING:
        raise InvalidField(
            "body", f"the request body nests deeper than {MAX_NESTING} levels"
        )
    try:
        return json.loads(
            text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys
        )
    except json.JSONDecodeError as exc:
        raise InvalidField(
            "body",
            f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}",
        ) from exc
    except ValueError as exc:  # huge integers, NaN and friends
        raise InvalidField(
            "body", f"the request body holds a number JSON cannot carry: {exc}"
        ) from exc


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object; a key given twice is an error, never last-one-wins."""
    document: dict[str, object] = {}
    for key, value in pairs:
        if key in document:
            raise InvalidField(key, f"field '{key[:80]}' is given more than once")
        document[key] = value
    return document


def _nesting(text: str) -> int:
    """The deepest bracket nesting, ignoring brackets inside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")
