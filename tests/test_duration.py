"""The duration grammar of interval and delay (API.md, field cases C1 and C2)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopitis.errors import InvalidField
from loopitis.model.duration import RULE, UNIT_MS, format_duration, parse_duration

MINIMUM_INTERVAL_MS = 300
MAXIMUM_MS = 366 * 24 * 3_600_000


def parse_interval(value: object) -> int:
    return parse_duration(
        value, "interval", minimum_ms=MINIMUM_INTERVAL_MS, maximum_ms=MAXIMUM_MS
    )


def parse_delay(value: object) -> int:
    return parse_duration(value, "delay", minimum_ms=0, maximum_ms=MAXIMUM_MS)


def refusal(parse: object, value: object) -> InvalidField:
    assert callable(parse)
    with pytest.raises(InvalidField) as caught:
        parse(value)
    return caught.value


# Case C1 as JSON text, decoded the way the gateway will decode a request body.
C1_JSON = [
    "0",
    "-1",
    "-3600000",
    "0.4",
    "1e-9",
    '"0h"',
    '"0m+0h"',
    "true",
    "false",
    "null",
    "1e309",
    "9223372036854775809",
    "18446744073709551616",
    '"999999999999w"',
]

C2_STRINGS = [
    "1h+",
    "+1h",
    "1h++30m",
    "1h+ 30m",
    "1 h",
    "",
    "   ",
    "h",
    "cow",
    "1h30",
    "1.5h",
    "1hr",
    "1h+-30m",
    "-1h",
    "1H",
    "\u0661h",  # Arabic-Indic digit one
    "\uff11h",  # full-width digit one
    "1h\n",
    "99999999999999999999h",
]

# The only C1 value the delay accepts: API.md allows a delay of 0 ms.
DELAY_ACCEPTS = {"0"}


@pytest.mark.parametrize("json_text", C1_JSON)
def test_parse_duration_refuses_c1_interval(json_text: str) -> None:
    """Every C1 number is refused as an interval, naming the field."""
    error = refusal(parse_interval, json.loads(json_text))

    assert error.field == "interval"
    assert error.message.startswith("interval ")


@pytest.mark.parametrize(
    "json_text", [text for text in C1_JSON if text not in DELAY_ACCEPTS]
)
def test_parse_duration_refuses_c1_delay(json_text: str) -> None:
    """Every C1 number except a plain 0 is refused as a delay, naming the field."""
    error = refusal(parse_delay, json.loads(json_text))

    assert error.field == "delay"
    assert error.message.startswith("delay ")


@pytest.mark.parametrize("text", C2_STRINGS)
def test_parse_duration_refuses_c2_interval(text: str) -> None:
    """Every C2 look-alike is refused, quoting the value and showing an example."""
    error = refusal(parse_interval, text)

    assert error.field == "interval"
    assert repr(text) in error.message
    assert "write " in error.message
    assert "\n" not in error.message


@pytest.mark.parametrize("text", C2_STRINGS)
def test_parse_duration_refuses_c2_delay(text: str) -> None:
    """The delay follows the same grammar, so every C2 look-alike is refused."""
    error = refusal(parse_delay, text)

    assert error.field == "delay"
    assert repr(text) in error.message


@pytest.mark.parametrize("value", ["90m", "1h+30m", 5400000, "5400000"])
def test_parse_duration_spellings_of_ninety_minutes(value: object) -> None:
    """Four spellings of ninety minutes all mean 5 400 000 ms."""
    assert parse_interval(value) == 5_400_000
    assert parse_delay(value) == 5_400_000


def test_parse_duration_adds_weeks_hours_minutes() -> None:
    """Parts add up: 1w+3h+20m is 616 800 000 ms."""
    assert parse_interval("1w+3h+20m") == 616_800_000


@pytest.mark.parametrize(
    ("text", "expected_ms"),
    [
        ("250ms", 250),
        ("90s", 90_000),
        ("1h", 3_600_000),
        ("2d", 172_800_000),
        ("4w", 28 * 24 * 3_600_000),
        ("1s+500ms", 1_500),
        ("1h+1h", 7_200_000),
        ("30m+1h", 5_400_000),
        ("007s", 7_000),
        ("10000", 10_000),
        ("  1h+30m\t", 5_400_000),
    ],
)
def test_parse_duration_accepts_parts(text: str, expected_ms: int) -> None:
    """Each unit, repeated units, any order and padding parse to exact ms."""
    assert parse_delay(text) == expected_ms


def test_parse_duration_four_weeks_is_exact() -> None:
    """A 4w interval is exactly 28 days, not rounded or wrapped."""
    assert parse_interval("4w") == 2_419_200_000


def test_parse_duration_delay_beyond_32_bits() -> None:
    """A delay of 2^31 ms stays exact: no 32-bit wraparound."""
    assert parse_delay(2_147_483_648) == 2_147_483_648


@pytest.mark.parametrize("value", [0, "0"])
def test_parse_duration_delay_accepts_zero_milliseconds(value: object) -> None:
    """A delay of 0 ms, written as milliseconds, means "start now"."""
    assert parse_delay(value) == 0


@pytest.mark.parametrize("value", ["0h", "0m+0h", "0ms", "1h+0m"])
def test_parse_duration_delay_refuses_zero_parts(value: str) -> None:
    """A part must be positive even for a delay, as the grammar says."""
    error = refusal(parse_delay, value)

    assert "of zero" in error.message


@pytest.mark.parametrize(
    ("value", "expected_ms"),
    [
        (MINIMUM_INTERVAL_MS, MINIMUM_INTERVAL_MS),
        ("300ms", MINIMUM_INTERVAL_MS),
        (MAXIMUM_MS, MAXIMUM_MS),
        ("366d", MAXIMUM_MS),
        ("52w+2d", MAXIMUM_MS),
    ],
)
def test_parse_duration_accepts_boundaries(value: object, expected_ms: int) -> None:
    """The minimum and the maximum of 366 days are themselves allowed."""
    assert parse_interval(value) == expected_ms


@pytest.mark.parametrize(
    "value", [MINIMUM_INTERVAL_MS - 1, "299ms", "299", MAXIMUM_MS + 1, "367d"]
)
def test_parse_duration_refuses_one_past_boundaries(value: object) -> None:
    """One step below the minimum or above the maximum is refused."""
    error = refusal(parse_interval, value)

    assert "minimum" in error.message or "maximum" in error.message


def test_parse_duration_message_for_too_small() -> None:
    """Too small names the value in ms, the minimum and the way out."""
    error = refusal(parse_interval, 0)

    assert error.message.startswith("interval 0 ms is below the minimum of 300 ms")
    assert "write at least '300ms'" in error.message


def test_parse_duration_message_for_too_large() -> None:
    """Too large names the maximum and suggests the largest allowed value."""
    error = refusal(parse_interval, "999999999999w")

    assert "is above the maximum of 31622400000 ms" in error.message
    assert "write at most '52w+2d'" in error.message


@pytest.mark.parametrize(
    ("value", "expected_phrase"),
    [
        ("1h+", "an empty part after the last '+'"),
        ("1h++30m", "an empty part between two '+'"),
        ("+1h", "has a sign"),
        ("1h+-30m", "has a sign"),
        ("-1", "has a sign"),
        ("1hr", "unknown unit 'hr'"),
        ("1H", "unit 'H' in upper case"),
        ("1MS", "unit 'MS' in upper case"),
        ("1.5h", "has a fraction"),
        ("1,5h", "has a fraction"),
        ("\u0661h", "not one of the ASCII digits"),
        ("\uff11h", "not one of the ASCII digits"),
        ("1 h", "a space inside"),
        ("1h\n", "the character '\\n'"),
        ("1h30", "needs a '+'"),
        ("1h+30", "without a unit"),
        ("cow", "does not start with a number"),
        ("", "is empty"),
        (True, "is a boolean"),
        (0.4, "is a decimal number"),
        (float("inf"), "not a finite number"),
        (None, "null"),
        ([1], "an array"),
        ({"ms": 1}, "an object"),
        (-1, "is negative"),
    ],
)
def test_parse_duration_message_names_the_mistake(
    value: object, expected_phrase: str
) -> None:
    """Each common mistake gets its own wording, plus a way out."""
    error = refusal(parse_interval, value)

    assert expected_phrase in error.message
    assert "; write " in error.message


def test_parse_duration_message_shows_example() -> None:
    """The reference message quotes the value, names the field, shows an example."""
    error = refusal(parse_interval, "1h+")

    assert error.message == (
        "interval '1h+' has an empty part after the last '+'; write e.g. '1h+30m'"
    )


def test_parse_duration_booleans_read_as_json() -> None:
    """Booleans are quoted the way the client wrote them and never mean 1 or 0."""
    assert "interval true " in refusal(parse_interval, True).message
    assert "delay false " in refusal(parse_delay, False).message


def test_parse_duration_details_hold_the_rule() -> None:
    """The details carry the grammar and the limits of the field."""
    error = refusal(parse_interval, "cow")

    assert RULE in error.details
    assert "at least 300 ms" in error.details
    assert "at most 31622400000 ms" in error.details


def test_parse_duration_quotes_long_values_briefly() -> None:
    """A very long value is quoted shortened, so the message stays readable."""
    error = refusal(parse_interval, "x" * 10_000)

    assert len(error.message) < 300


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("9" * 100_000, id="digits"),
        pytest.param("9" * 100_000 + "h", id="hours"),
        pytest.param("1h+" * 50_000 + "1h", id="many-parts"),
        pytest.param(10**5000, id="integer"),
    ],
)
def test_parse_duration_huge_inputs_are_refused_quickly(value: object) -> None:
    """Absurdly long numbers are refused cleanly and without slow arithmetic."""
    started = time.perf_counter()

    with pytest.raises(InvalidField):
        parse_interval(value)

    assert time.perf_counter() - started < 1.0


def test_parse_duration_leading_zeros_are_cheap() -> None:
    """A long run of leading zeros is still the number after them, found fast."""
    started = time.perf_counter()

    assert parse_interval("0" * 100_000 + "1h") == 3_600_000
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("ms", "expected_text"),
    [
        (0, "0"),
        (1, "1ms"),
        (250, "250ms"),
        (1_500, "1s+500ms"),
        (5_400_000, "1h+30m"),
        (616_800_000, "1w+3h+20m"),
        (2_419_200_000, "4w"),
        (MAXIMUM_MS, "52w+2d"),
    ],
)
def test_format_duration_writes_parts(ms: int, expected_text: str) -> None:
    """Durations are written with the largest units first, zero parts left out."""
    assert format_duration(ms) == expected_text


def test_format_duration_refuses_negative() -> None:
    """A negative duration has no spelling, so formatting it is a bug."""
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=MAXIMUM_MS))
def test_format_duration_round_trips(ms: int) -> None:
    """Parsing what format_duration wrote gives back the same milliseconds."""
    assert parse_delay(format_duration(ms)) == ms


_GRAMMAR_ALPHABET = "0123456789+-. \t\nmshdwMSHDW\u0661\uff11,x"


@settings(max_examples=300)
@given(st.one_of(st.text(alphabet=_GRAMMAR_ALPHABET, max_size=30), st.text()))
def test_parse_duration_random_text_only_raises_invalid_field(text: str) -> None:
    """Any string either parses into the allowed range or raises InvalidField."""
    try:
        ms = parse_interval(text)
    except InvalidField as error:
        assert error.field == "interval"
        assert "\n" not in error.message
        return

    assert MINIMUM_INTERVAL_MS <= ms <= MAXIMUM_MS


_PART = st.tuples(
    st.integers(min_value=1, max_value=500), st.sampled_from(sorted(UNIT_MS))
)


@settings(max_examples=300)
@given(st.lists(_PART, min_size=1, max_size=5))
def test_parse_duration_parts_add_up(parts: list[tuple[int, str]]) -> None:
    """A string of valid parts means the sum of count times unit."""
    text = "+".join(f"{count}{unit}" for count, unit in parts)
    expected_ms = sum(count * UNIT_MS[unit] for count, unit in parts)

    assert parse_duration(text, "delay", minimum_ms=0, maximum_ms=10**15) == (
        expected_ms
    )
