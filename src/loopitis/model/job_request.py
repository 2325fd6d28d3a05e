"""Validation of a create-job request into a ``JobRequest``.

Every field is checked and every problem is reported at once, so a client
fixes its request in one round trip.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from loopitis.errors import InvalidField, InvalidRequest
from loopitis.model.duration import parse_duration
from loopitis.model.envelope import ENVELOPE_FIELDS
from loopitis.model.job import (
    BODY_METHODS,
    CALLBACK_METHODS,
    MAX_DURATION_MS,
    MAX_NAME_LENGTH,
    MAX_OCCURRENCES,
    MAX_URL_LENGTH,
)
from loopitis.model.targets import PUBLIC_ONLY, TargetPolicy

KNOWN_FIELDS = (
    "interval",
    "delay",
    "occurrences",
    "name",
    "return_url",
    "payload",
    "callback_type",
    "notify_status_not_ok",
)
# Used only when a field is left out: an explicit null delay is refused like
# any other non-duration, so a client bug never quietly means "fire at once".
ABSENT_DEFAULTS: dict[str, object] = {"delay": 0}


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A create request that passed every rule."""

    interval_ms: int
    delay_ms: int
    occurrences: int | None
    name: str | None
    return_url: str
    payload: str | None
    callback_type: str
    notify_url: str | None


@dataclass(frozen=True, slots=True)
class Limits:
    min_interval_ms: int
    payload_max_bytes: int
    targets: TargetPolicy = PUBLIC_ONLY


def parse_job_request(body: object, limits: Limits) -> JobRequest:
    """Return the validated request or raise InvalidRequest listing every problem."""
    if not isinstance(body, Mapping):
        raise InvalidRequest(
            [InvalidField("body", "the request body must be a JSON object")]
        )
    problems = _unknown_fields(body)
    values: dict[str, object] = {}
    for field, (attribute, check) in _checks(limits).items():
        try:
            values[attribute] = check(body.get(field, ABSENT_DEFAULTS.get(field)))
        except InvalidField as problem:
            problems.append(problem)
    if not problems:
        problems += _query_clashes(values)
    if problems:
        raise InvalidRequest(problems)
    return JobRequest(**values)  # type: ignore[arg-type]


def _query_clashes(values: dict[str, object]) -> list[InvalidField]:
    """GET and DELETE callbacks append their fields to the URL's query; a URL
    that already carries one of those names would hand receivers two values."""
    if values["callback_type"] in BODY_METHODS:
        return []
    query = urlsplit(str(values["return_url"])).query
    clashes = sorted({key for key, _ in parse_qsl(query)} & set(ENVELOPE_FIELDS))
    if not clashes:
        return []
    return [
        InvalidField(
            "return_url",
            f"return_url already has the query parameter '{clashes[0]}', which a "
            f"{values['callback_type']} callback sets itself; remove it",
        )
    ]


Check = Callable[[object], object]


def _checks(limits: Limits) -> dict[str, tuple[str, Check]]:
    """Request field -> (JobRequest attribute, rule)."""
    return {
        "interval": ("interval_ms", lambda v: _interval(v, limits.min_interval_ms)),
        "delay": ("delay_ms", _delay),
        "occurrences": ("occurrences", _occurrences),
        "name": ("name", _name),
        "return_url": (
            "return_url",
            lambda v: _url("return_url", v, limits.targets, required=True),
        ),
        "payload": ("payload", lambda v: _payload(v, limits.payload_max_bytes)),
        "callback_type": ("callback_type", _callback_type),
        "notify_status_not_ok": (
            "notify_url",
            lambda v: _url("notify_status_not_ok", v, limits.targets, required=False),
        ),
    }


def _unknown_fields(body: Mapping[object, object]) -> list[InvalidField]:
    unknown = sorted(str(key) for key in body if key not in KNOWN_FIELDS)
    if not unknown:
        return []
    names = ", ".join(f"'{name}'" for name in unknown)
    return [
        InvalidField(
            unknown[0],
            f"unknown field {names}; known fields are {', '.join(KNOWN_FIELDS)}",
            "check the spelling: an unknown field is never ignored",
        )
    ]


def _interval(value: object, min_interval_ms: int) -> int:
    if value is None:
        raise InvalidField("interval", "interval is required; write e.g. '1h+30m'")
    return parse_duration(
        value, "interval", minimum_ms=min_interval_ms, maximum_ms=MAX_DURATION_MS
    )


def _delay(value: object) -> int:
    return parse_duration(value, "delay", minimum_ms=0, maximum_ms=MAX_DURATION_MS)


def _occurrences(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidField(
            "occurrences",
            f"occurrences {_show(value)} is not a whole number; write e.g. 10, "
            "or leave it out to run until cancelled",
            f"an integer from 1 to {MAX_OCCURRENCES}",
        )
    if not 1 <= value <= MAX_OCCURRENCES:
        raise InvalidField(
            "occurrences",
            f"occurrences {value} is outside 1 to {MAX_OCCURRENCES}",
            f"an integer from 1 to {MAX_OCCURRENCES}",
        )
    return value


def _name(value: object) -> str | None:
    if value is None:
        return None
    text = _text("name", value)
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidField(
            "name",
            f"name has {len(text)} characters; at most {MAX_NAME_LENGTH} are allowed",
        )
    return text


def _payload(value: object, max_bytes: int) -> str | None:
    if value is None:
        return None
    text = _text("payload", value)
    size = len(text.encode())
    if size > max_bytes:
        raise InvalidField(
            "payload",
            f"payload has {size} bytes; at most {max_bytes} are allowed",
            "LOOPITIS_PAYLOAD_MAX_BYTES sets the limit",
        )
    return text


def _callback_type(value: object) -> str:
    if value is None:
        return "POST"
    method = value.upper() if isinstance(value, str) else None
    if method not in CALLBACK_METHODS:
        raise InvalidField(
            "callback_type",
            f"callback_type {_show(value)} is not one of {', '.join(CALLBACK_METHODS)}",
        )
    return method


def _url(
    field: str, value: object, targets: TargetPolicy, *, required: bool
) -> str | None:
    if value is None:
        if required:
            raise InvalidField(
                field, f"{field} is required; write e.g. 'https://example.com/hook'"
            )
        return None
    text = _text(field, value).strip()
    if len(text) > MAX_URL_LENGTH:
        raise InvalidField(
            field, f"{field} has {len(text)} characters; at most {MAX_URL_LENGTH}"
        )
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidField(
            field, f"{field} {_show(text)} is not a valid URL: {exc}"
        ) from exc
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidField(
            field,
            f"{field} {_show(text)} is not an absolute http or https URL; "
            "write e.g. 'https://example.com/hook'",
        )
    if any(ch.isspace() or ord(ch) < 32 for ch in text):
        raise InvalidField(
            field, f"{field} {_show(text)} contains spaces or control characters"
        )
    problem = _host_problem(host, parts.port)
    if problem:
        raise InvalidField(field, f"{field} {_show(text)} {problem}")
    refusal = targets.refusal_for_url_host(host)
    if refusal is not None:
        raise InvalidField(
            field,
            f"{field} {_show(text)} points into a network Loopitis does not call: "
            f"{refusal}",
            "only public addresses are called; an operator can allow others with "
            "LOOPITIS_ALLOWED_TARGETS or LOOPITIS_ALLOW_PRIVATE_TARGETS",
        )
    return text


_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


def _host_problem(host: str, port: int | None) -> str | None:
    """Why a URL's host and port can never be called, or None."""
    if port == 0:
        return "has port 0, which nothing listens on"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        return None
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        return f"has the host name '{host[:80]}', which is not a valid DNS name"
    return None


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidField(field, f"{field} must be a string, not {_show(value)}")
    if "\x00" in value:
        raise InvalidField(
            field, f"{field} contains a NUL character, which cannot be stored"
        )
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidField(
            field, f"{field} contains a lone surrogate at position {exc.start}"
        ) from exc
    return value


def _show(value: object) -> str:
    shown = repr(value) if isinstance(value, str) else _json_word(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _json_word(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return repr(value)
