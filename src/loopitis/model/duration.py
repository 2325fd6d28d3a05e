"""The duration grammar shared by a job's ``interval`` and ``delay``.

A duration is a whole number of milliseconds, given as a JSON integer or as a
string of ASCII digits, or a string of parts joined by ``+`` such as
``1w+3h+20m``. Each part is a positive number of ASCII digits followed by one
lower-case unit; the parts add up. Blanks around the whole value are ignored.
Everything else is refused with an :class:`InvalidField` that quotes the value
and shows a valid example, so the gateway can answer 400 and never 500.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from loopitis.errors import InvalidField

# Largest unit first, so that formatting can peel units off greedily.
UNIT_MS: Final[dict[str, int]] = {
    "w": 7 * 24 * 3_600_000,
    "d": 24 * 3_600_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}

RULE: Final = (
    "milliseconds as an integer, or parts like 1h+30m with units ms, s, m, h, d, w"
)

_ASCII_DIGITS: Final = frozenset("0123456789")
# Only spaces and tabs count as padding: a trailing newline is more likely a
# copy-paste accident than an intended duration.
_PADDING: Final = " \t"
# No legal duration needs more than 11 digits. Refusing longer numbers before
# int() keeps absurd inputs cheap and clear of int()'s own digit limit.
_MAX_SIGNIFICANT_DIGITS: Final = 18
_MAX_QUOTED_CHARS: Final = 40
_EXAMPLE: Final = "write e.g. '1h+30m'"
_EXAMPLES: Final = "write e.g. 10000 or '1h+30m'"


@dataclass(frozen=True)
class _Field:
    """The field being parsed and its limits, used to word the errors."""

    name: str
    minimum_ms: int
    maximum_ms: int

    def refuse(self, quoted: str, problem: str, advice: str = _EXAMPLE) -> InvalidField:
        details = (
            f"{RULE}; at least {self.minimum_ms} ms, "
            f"at most {self.maximum_ms} ms ({format_duration(self.maximum_ms)})"
        )
        message = f"{self.name} {quoted} {problem}; {advice}"
        return InvalidField(self.name, message, details)


def parse_duration(
    value: object, field: str, *, minimum_ms: int, maximum_ms: int
) -> int:
    """Return ``value`` in milliseconds, or raise InvalidField naming ``field``.

    ``value`` is what JSON decoding produced for the field.
    """
    limits = _Field(field, minimum_ms, maximum_ms)
    # bool is a subclass of int: test it first so true never means 1 ms.
    if isinstance(value, bool):
        raise limits.refuse(_json_literal(value), "is a boolean", _EXAMPLES)
    if isinstance(value, int):
        return _check_integer(value, limits)
    if isinstance(value, str):
        return _parse_text(value, limits)
    if isinstance(value, float):
        raise _refuse_float(value, limits)
    raise limits.refuse(_json_literal(value), "is not a duration", _EXAMPLES)


def format_duration(ms: int) -> str:
    """Write ``ms`` in the duration grammar, e.g. 5400000 as ``1h+30m``."""
    if ms < 0:
        raise ValueError(f"a duration cannot be negative, got {ms} ms")
    if ms == 0:
        # "0ms" would break the rule that every part is positive.
        return "0"

    parts = []
    remaining = ms
    for unit, unit_ms in UNIT_MS.items():
        count, remaining = divmod(remaining, unit_ms)
        if count:
            parts.append(f"{count}{unit}")

    return "+".join(parts)


def _check_integer(value: int, limits: _Field) -> int:
    quoted = f"{_quote_integer(value)} ms"
    if value < 0:
        raise limits.refuse(quoted, "is negative", _EXAMPLES)

    return _check_range(value, quoted, limits)


def _refuse_float(value: float, limits: _Field) -> InvalidField:
    if not math.isfinite(value):
        # JSON numbers too large for a double, such as 1e309, arrive as inf.
        return limits.refuse(
            repr(value),
            "is not a finite number (JSON numbers past 1.8e308 read as infinity)",
            _advice_below_maximum(limits),
        )

    return limits.refuse(
        repr(value),
        "is a decimal number; give milliseconds as an integer, without a point",
        _EXAMPLES,
    )


def _parse_text(text: str, limits: _Field) -> int:
    quoted = _quote_text(text)
    stripped = text.strip(_PADDING)
    if not stripped:
        raise limits.refuse(quoted, "is empty")
    if _is_ascii_number(stripped):
        return _check_range(_to_int(stripped, quoted, limits), quoted, limits)
    if stripped[0] in "+-":
        raise limits.refuse(quoted, "has a sign, but durations are always positive")

    parts = stripped.split("+")
    total_ms = sum(
        _parse_part(part, _place_of(index, len(parts)), quoted, limits)
        for index, part in enumerate(parts)
    )

    return _check_range(total_ms, quoted, limits)


def _parse_part(part: str, place: str, quoted: str, limits: _Field) -> int:
    _refuse_bad_characters(part, place, quoted, limits)

    digit_count = len(part) - len(part.lstrip("0123456789"))
    number, unit = part[:digit_count], part[digit_count:]
    if not number:
        problem = f"has a part {_quote_text(part)} that does not start with a number"
        raise limits.refuse(quoted, problem)

    unit_ms = _unit_ms(unit, part, quoted, limits)
    count = _to_int(number, quoted, limits)
    if count == 0:
        raise limits.refuse(
            quoted,
            f"has a part {_quote_text(part)} of zero, but every part must be positive",
        )

    return count * unit_ms


def _refuse_bad_characters(part: str, place: str, quoted: str, limits: _Field) -> None:
    if not part:
        raise limits.refuse(quoted, f"has an empty part {place}")
    blank = next((char for char in part if char.isspace()), None)
    if blank is not None:
        raise limits.refuse(quoted, _whitespace_problem(blank))
    if "-" in part:
        raise limits.refuse(quoted, "has a sign, but durations are always positive")
    if any(char.isdigit() and char not in _ASCII_DIGITS for char in part):
        raise limits.refuse(
            quoted, "has a digit that is not one of the ASCII digits 0-9"
        )
    if "." in part or "," in part:
        advice = "write whole numbers of a smaller unit, e.g. '1h+30m' for 1.5h"
        raise limits.refuse(quoted, "has a fraction", advice)


def _whitespace_problem(blank: str) -> str:
    where = "a space inside" if blank in _PADDING else f"the character {blank!r}"

    return f"has {where} (only spaces and tabs around the whole value are ignored)"


def _unit_ms(unit: str, part: str, quoted: str, limits: _Field) -> int:
    if unit in UNIT_MS:
        return UNIT_MS[unit]
    if not unit:
        raise limits.refuse(quoted, f"has a number {_quote_text(part)} without a unit")
    if any(char in _ASCII_DIGITS for char in unit):
        problem = (
            f"has a part {_quote_text(part)} that needs a '+' before its second number"
        )
        raise limits.refuse(quoted, problem)
    if unit.lower() in UNIT_MS:
        problem = (
            f"has the unit {_quote_text(unit)} in upper case, but units are lower case"
        )
        raise limits.refuse(quoted, problem)

    problem = (
        f"has an unknown unit {_quote_text(unit)} (units are ms, s, m, h, d and w)"
    )
    raise limits.refuse(quoted, problem)


def _check_range(ms: int, quoted: str, limits: _Field) -> int:
    if ms < limits.minimum_ms:
        problem = f"is below the minimum of {limits.minimum_ms} ms"
        advice = f"write at least '{format_duration(limits.minimum_ms)}'"
        raise limits.refuse(quoted, problem, advice)
    if ms > limits.maximum_ms:
        problem = f"is above the maximum of {limits.maximum_ms} ms"
        raise limits.refuse(quoted, problem, _advice_below_maximum(limits))

    return ms


def _to_int(digits: str, quoted: str, limits: _Field) -> int:
    significant = digits.lstrip("0")
    if len(significant) > _MAX_SIGNIFICANT_DIGITS:
        problem = f"is above the maximum of {limits.maximum_ms} ms"
        raise limits.refuse(quoted, problem, _advice_below_maximum(limits))

    return int(significant or "0")


def _advice_below_maximum(limits: _Field) -> str:
    return f"write at most '{format_duration(limits.maximum_ms)}'"


def _is_ascii_number(text: str) -> bool:
    return all(char in _ASCII_DIGITS for char in text)


def _place_of(index: int, count: int) -> str:
    if index == 0:
        return "before the first '+'"
    if index == count - 1:
        return "after the last '+'"

    return "between two '+'"


def _quote_text(text: str) -> str:
    # repr() escapes newlines and control characters, so the quoted value
    # cannot break the message or a log line.
    if len(text) <= _MAX_QUOTED_CHARS:
        return repr(text)

    return repr(text[:_MAX_QUOTED_CHARS]) + "..."


def _quote_integer(value: int) -> str:
    # str() of a huge int is slow and past 4300 digits refuses outright.
    if value.bit_length() <= 256:
        return str(value)

    return (
        f"(an integer of about {math.ceil(value.bit_length() * math.log10(2))} digits)"
    )


def _json_literal(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "(an array)"
    if isinstance(value, dict):
        return "(an object)"

    return f"(a value of type {type(value).__name__})"
