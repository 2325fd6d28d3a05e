"""Create-job validation through the real HTTP API: C1, C2 and other bad input."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from loopitis.model.duration import parse_duration
from support.jobs import create_job, get_job
from support.receiver import Receiver
from support.stack import Stack

JSON_HEADERS = {"Content-Type": "application/json"}
MAX_DURATION_MS = 366 * 24 * 3_600_000
REQUEST_MAX_BYTES = 1_048_576
PAYLOAD_MAX_BYTES = 65_536
QUIET_WAIT_S = 2.0

# C1: raw JSON text, and the fragment the message must show (None: not quotable
# as sent, such as 1e309, which JSON decoding turns into infinity).
HOT_LOOP_VALUES = [
    ("0", "0"),
    ("-1", "-1"),
    ("-3600000", "-3600000"),
    ("0.4", "0.4"),
    ("1e-9", None),
    ('"0h"', "'0h'"),
    ('"0m+0h"', "'0m+0h'"),
    ("true", "true"),
    ("false", "false"),
    ("null", None),
    ("1e309", None),
    ("9223372036854775809", "9223372036854775809"),
    ('"999999999999w"', "'999999999999w'"),
]
DELAY_HOT_LOOP_VALUES = [case for case in HOT_LOOP_VALUES if case[0] != "0"]

# C2: raw JSON text of strings that only look like durations.
LOOK_ALIKE_VALUES = [
    '"1h+"',
    '"+1h"',
    '"1h++30m"',
    '"1h+ 30m"',
    '"1 h"',
    '""',
    '"   "',
    '"h"',
    '"cow"',
    '"1h30"',
    '"1.5h"',
    '"1hr"',
    '"1h+-30m"',
    '"-1h"',
    '"1H"',
    '"\u0661h"',
    '"\uff11h"',
    '"1h\\n"',
    '"99999999999999999999h"',
]


@pytest.fixture
async def anonymous(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        yield client


def job_text(**raw_fields: str) -> str:
    """A create body written by hand: every value is already JSON text."""
    members = ", ".join(
        f"{json.dumps(name)}: {raw}" for name, raw in raw_fields.items()
    )
    return "{" + members + "}"


async def post_text(api: httpx.AsyncClient, text: str | bytes) -> httpx.Response:
    content = text.encode() if isinstance(text, str) else text
    return await api.post("/set/notifier", content=content, headers=JSON_HEADERS)


async def count_jobs(db: asyncpg.Pool) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM jobs")
    return count


async def cancel(api: httpx.AsyncClient, job_id: str) -> None:
    response = await api.post("/requests/cancel_task", params={"requestId": job_id})
    assert response.status_code == 200, response.text


def unique_path(label: str) -> str:
    return f"/validation-{label}-{uuid.uuid4().hex[:8]}"


def assert_refused(response: httpx.Response, field: str) -> dict[str, Any]:
    """A 400 with the error body of API.md naming ``field``; returns the error."""
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "field", "details"}
    assert error["code"] == 400
    assert error["field"] == field
    assert isinstance(error["message"], str) and field in error["message"]
    assert isinstance(error["details"], str)
    return error


def assert_valid_example(message: str, field: str) -> None:
    """The message offers a duration to write instead, and that one is legal."""
    examples = re.findall(r"write [^']*'([^']+)'", message)
    assert examples, f"no example in {message!r}"
    for example in examples:
        parse_duration(example, field, minimum_ms=0, maximum_ms=MAX_DURATION_MS)


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def refused_duration_bodies(url: str) -> list[tuple[str, str]]:
    """Every C1 and C2 value as interval, then as delay: (field, body text)."""
    return_url = json.dumps(url)
    interval_values = [raw for raw, _ in HOT_LOOP_VALUES] + LOOK_ALIKE_VALUES
    delay_values = [raw for raw, _ in DELAY_HOT_LOOP_VALUES] + LOOK_ALIKE_VALUES
    bodies = [
        ("interval", job_text(interval=raw, return_url=return_url))
        for raw in interval_values
    ]
    bodies += [
        ("delay", job_text(interval='"1h"', delay=raw, return_url=return_url))
        for raw in delay_values
    ]
    return bodies


# C1 -------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "quoted"), HOT_LOOP_VALUES)
async def test_create_interval_hot_loop_value_refused(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    receiver: Receiver,
    raw: str,
    quoted: str | None,
) -> None:
    """An interval that could mean "fire constantly" is a 400 naming interval."""
    jobs_before = await count_jobs(db)
    url = receiver.url(unique_path("c1-interval"))

    response = await post_text(api, job_text(interval=raw, return_url=json.dumps(url)))

    error = assert_refused(response, "interval")
    if quoted is not None:
        assert quoted in error["message"]
    assert_valid_example(error["message"], "interval")
    assert await count_jobs(db) == jobs_before


@pytest.mark.parametrize(("raw", "quoted"), DELAY_HOT_LOOP_VALUES)
async def test_create_delay_hot_loop_value_refused(
    api: httpx.AsyncClient,
    db: asyncpg.Pool,
    receiver: Receiver,
    raw: str,
    quoted: str | None,
) -> None:
    """Every C1 value except 0 is a 400 naming delay, null and booleans included."""
    jobs_before = await count_jobs(db)
    url = receiver.url(unique_path("c1-delay"))

    response = await post_text(
        api, job_text(interval='"1h"', delay=raw, return_url=json.dumps(url))
    )

    error = assert_refused(response, "delay")
    if quoted is not None:
        assert quoted in error["message"]
    assert_valid_example(error["message"], "delay")
    assert await count_jobs(db) == jobs_before


@pytest.mark.parametrize("raw", ["0", '"0"'])
async def test_create_delay_zero_accepted(
    api: httpx.AsyncClient, receiver: Receiver, raw: str
) -> None:
    """A delay of 0, as a number or a digit string, is legal and fires at once."""
    path = unique_path("c1-delay-zero")

    response = await post_text(
        api,
        job_text(
            interval='"1h"',
            delay=raw,
            occurrences="1",
            return_url=json.dumps(receiver.url(path)),
        ),
    )

    assert response.status_code == 201, response.text
    job = (await get_job(api, response.json()["id"]))["job"]
    assert job["delay"] == 0
    await receiver.wait_for_calls(path, 1, timeout_s=5)


async def test_create_refused_durations_never_fire(
    api: httpx.AsyncClient, db: asyncpg.Pool, receiver: Receiver
) -> None:
    """No C1 or C2 value, as interval or delay, leaves a job or reaches the receiver."""
    path = unique_path("c1-quiet")
    jobs_before = await count_jobs(db)

    for field, text in refused_duration_bodies(receiver.url(path)):
        response = await post_text(api, text)
        assert_refused(response, field)
    await asyncio.sleep(QUIET_WAIT_S)

    assert await count_jobs(db) == jobs_before
    assert receiver.calls_to(path) == []


async def test_create_interval_four_weeks_plans_second_slot_exactly(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Interval "4w" fires once now and plans slot 2 exactly 28 days later."""
    path = unique_path("c1-four-weeks")
    job_id = await create_job(api, interval="4w", return_url=receiver.url(path))

    calls = await receiver.wait_for_calls(path, 1, timeout_s=5)
    body = await get_job(api, job_id)
    await cancel(api, job_id)

    job = body["job"]
    assert job["interval"] == 28 * 24 * 3_600_000
    assert [e["executionNumber"] for e in body["executions"]] == [1]
    first_slot = parse_iso(calls[0].json()["scheduledAt"])
    planned = parse_iso(job["next_due_at"]) - first_slot
    assert planned == timedelta(days=28)
    assert abs(first_slot - parse_iso(job["accepted_at"])) <= timedelta(milliseconds=1)
    assert len(receiver.calls_to(path)) == 1


async def test_create_delay_past_32_bits_plans_first_slot(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Delay 2147483648 ms plans the first slot 24.86 days out, with no wraparound."""
    path = unique_path("c1-long-delay")
    job_id = await create_job(
        api, interval="1h", delay=2_147_483_648, return_url=receiver.url(path)
    )

    await wait_until_owned(api, job_id)
    await asyncio.sleep(0.5)
    body = await get_job(api, job_id)
    await cancel(api, job_id)

    job = body["job"]
    assert job["delay"] == 2_147_483_648
    planned = parse_iso(job["next_due_at"]) - parse_iso(job["accepted_at"])
    assert abs(planned - timedelta(milliseconds=2_147_483_648)) <= timedelta(
        milliseconds=1
    )
    assert round(planned / timedelta(days=1), 2) == 24.86
    assert body["executions"] == []
    assert receiver.calls_to(path) == []


async def wait_until_owned(api: httpx.AsyncClient, job_id: str) -> None:
    """Until the consumer has adopted the job (it leaves PENDING)."""
    for _ in range(50):
        if (await get_job(api, job_id))["job"]["status"] != "PENDING":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} stayed PENDING")


# C2 -------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["interval", "delay"])
@pytest.mark.parametrize("raw", LOOK_ALIKE_VALUES)
async def test_create_look_alike_duration_refused(
    api: httpx.AsyncClient, db: asyncpg.Pool, receiver: Receiver, raw: str, field: str
) -> None:
    """A string that only looks like a duration is a 400 quoting it with an example."""
    jobs_before = await count_jobs(db)
    fields = {"interval": '"1h"', field: raw}
    url = json.dumps(receiver.url(unique_path("c2")))

    response = await post_text(api, job_text(**fields, return_url=url))

    error = assert_refused(response, field)
    assert repr(json.loads(raw)) in error["message"]
    assert_valid_example(error["message"], field)
    assert await count_jobs(db) == jobs_before


@pytest.mark.parametrize(
    ("interval", "expected_ms"),
    [
        ("90m", 5_400_000),
        ("1h+30m", 5_400_000),
        (5_400_000, 5_400_000),
        ("5400000", 5_400_000),
        (" 1h+30m\t", 5_400_000),
        ("1w+3h+20m", 616_800_000),
    ],
)
async def test_create_equal_durations_store_same_interval(
    api: httpx.AsyncClient, receiver: Receiver, interval: object, expected_ms: int
) -> None:
    """Different spellings of one duration store the same milliseconds."""
    path = unique_path("c2-equal")
    job_id = await create_job(
        api,
        interval=interval,
        delay="1d",
        occurrences=1,
        return_url=receiver.url(path),
    )

    job = (await get_job(api, job_id))["job"]
    await cancel(api, job_id)

    written_back = parse_duration(
        job["interval_text"], "interval", minimum_ms=0, maximum_ms=MAX_DURATION_MS
    )
    assert job["interval"] == expected_ms
    assert written_back == expected_ms
    assert job["delay"] == 24 * 3_600_000


# Other fields ---------------------------------------------------------------


async def test_create_unknown_field_refused(
    api: httpx.AsyncClient, db: asyncpg.Pool, receiver: Receiver
) -> None:
    """A misspelt field such as ocurrences is a 400 naming it, never "forever"."""
    jobs_before = await count_jobs(db)

    response = await api.post(
        "/set/notifier",
        json={
            "interval": "1h",
            "ocurrences": 3,
            "return_url": receiver.url(unique_path("unknown")),
        },
    )

    error = assert_refused(response, "ocurrences")
    assert "'ocurrences'" in error["message"]
    assert await count_jobs(db) == jobs_before


async def test_create_several_bad_fields_listed_together(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """Several bad fields give one error object each in the errors list."""
    jobs_before = await count_jobs(db)

    response = await api.post(
        "/set/notifier",
        json={
            "interval": "1h+",
            "occurrences": 0,
            "name": "n" * 256,
            "return_url": "ftp://x",
            "callback_type": "FETCH",
        },
    )

    assert response.status_code == 400, response.text
    body = response.json()
    errors = body["errors"]
    fields = [error["field"] for error in errors]
    assert sorted(fields) == [
        "callback_type",
        "interval",
        "name",
        "occurrences",
        "return_url",
    ]
    for error in errors:
        assert set(error) == {"code", "message", "field", "details"}
        assert error["code"] == 400
        assert error["field"] in error["message"]
    assert body["error"] in errors
    assert await count_jobs(db) == jobs_before


@pytest.mark.parametrize("method", ["FETCH", "", "post ", "GET,POST", 1])
async def test_create_unknown_callback_type_refused(
    api: httpx.AsyncClient, receiver: Receiver, method: object
) -> None:
    """A callback_type outside GET, POST, PUT, PATCH and DELETE is a 400."""
    response = await api.post(
        "/set/notifier",
        json={
            "interval": "1h",
            "callback_type": method,
            "return_url": receiver.url(unique_path("method")),
        },
    )

    assert_refused(response, "callback_type")


async def test_create_callback_type_any_case_accepted(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """callback_type is case-insensitive and stored in upper case."""
    job_id = await create_job(
        api,
        interval="1h",
        delay="1d",
        callback_type="pAtCh",
        return_url=receiver.url(unique_path("case")),
    )

    job = (await get_job(api, job_id))["job"]
    await cancel(api, job_id)

    assert job["callback_type"] == "PATCH"


@pytest.mark.parametrize(
    "return_url",
    [
        None,
        "ftp://x",
        "not a url",
        "http://127.0.0.1/" + "a" * 3000,
        "http://",
        "/relative/path",
        "javascript:alert(1)",
        "http://[::1",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1/a b",
        42,
    ],
)
async def test_create_bad_return_url_refused(
    api: httpx.AsyncClient, db: asyncpg.Pool, return_url: object
) -> None:
    """A missing, non-http, malformed or over-long return_url is a 400."""
    jobs_before = await count_jobs(db)
    fields: dict[str, object] = {"interval": "1h"}
    if return_url is not None:
        fields["return_url"] = return_url

    response = await api.post("/set/notifier", json=fields)

    assert_refused(response, "return_url")
    assert await count_jobs(db) == jobs_before


async def test_create_bad_notify_url_refused(api: httpx.AsyncClient) -> None:
    """notify_status_not_ok must be an absolute http or https URL too."""
    response = await api.post(
        "/set/notifier",
        json={
            "interval": "1h",
            "return_url": "http://127.0.0.1:9/hook",
            "notify_status_not_ok": "mailto:ops@example.com",
        },
    )

    assert_refused(response, "notify_status_not_ok")


async def test_create_name_length_limit(
    api: httpx.AsyncClient, db: asyncpg.Pool, receiver: Receiver
) -> None:
    """A name of 255 characters is kept; 256 is a 400 naming name."""
    url = receiver.url(unique_path("name"))
    jobs_before = await count_jobs(db)

    refused = await api.post(
        "/set/notifier", json={"interval": "1h", "name": "é" * 256, "return_url": url}
    )
    assert_refused(refused, "name")
    assert await count_jobs(db) == jobs_before

    job_id = await create_job(
        api, interval="1h", delay="1d", name="é" * 255, return_url=url
    )
    job = (await get_job(api, job_id))["job"]
    await cancel(api, job_id)
    assert job["name"] == "é" * 255


@pytest.mark.parametrize(
    "payload",
    ["x" * (PAYLOAD_MAX_BYTES + 1), "é" * (PAYLOAD_MAX_BYTES // 2 + 1)],
    ids=["ascii", "two-byte-characters"],
)
async def test_create_payload_over_limit_refused(
    api: httpx.AsyncClient, db: asyncpg.Pool, receiver: Receiver, payload: str
) -> None:
    """A payload over 64 KiB of UTF-8 is a 400 naming payload."""
    jobs_before = await count_jobs(db)

    response = await api.post(
        "/set/notifier",
        json={
            "interval": "1h",
            "payload": payload,
            "return_url": receiver.url(unique_path("payload")),
        },
    )

    error = assert_refused(response, "payload")
    assert str(PAYLOAD_MAX_BYTES) in error["message"]
    assert await count_jobs(db) == jobs_before


async def test_create_payload_at_limit_accepted(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A payload of exactly 64 KiB is accepted and stored whole."""
    payload = "p" * PAYLOAD_MAX_BYTES
    job_id = await create_job(
        api,
        interval="1h",
        delay="1d",
        payload=payload,
        return_url=receiver.url(unique_path("payload-limit")),
    )

    job = (await get_job(api, job_id))["job"]
    await cancel(api, job_id)

    assert job["payload"] == payload


@pytest.mark.parametrize(
    "text",
    [
        b"interval=1h",
        b"[]",
        b'[{"interval": "1h"}]',
        b"",
        b"   ",
        b"null",
        b'"text"',
        b"42",
        b'{"interval": "1h",',
        b'{"interval": NaN, "return_url": "http://127.0.0.1/"}',
        b'{"interval": Infinity, "return_url": "http://127.0.0.1/"}',
        b'{"interval": "1h", "return_url": "http://127.0.0.1/\xff"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"interval": ' + b"1" * 5000 + b', "return_url": "http://127.0.0.1/"}',
    ],
    ids=[
        "form",
        "array",
        "array-of-object",
        "empty",
        "blank",
        "null",
        "string",
        "number",
        "truncated",
        "nan",
        "infinity",
        "invalid-utf8",
        "deep-nesting",
        "5000-digit-number",
    ],
)
async def test_create_body_not_a_json_object_refused(
    api: httpx.AsyncClient, db: asyncpg.Pool, text: bytes
) -> None:
    """A body that is not a JSON object is a 400 naming body, never a 500."""
    jobs_before = await count_jobs(db)

    response = await post_text(api, text)

    assert_refused(response, "body")
    assert await count_jobs(db) == jobs_before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"interval": {}}, "interval"),
        ({"interval": ["1h"]}, "interval"),
        ({"delay": {"ms": 5}}, "delay"),
        ({"occurrences": "3"}, "occurrences"),
        ({"occurrences": True}, "occurrences"),
        ({"occurrences": 2.5}, "occurrences"),
        ({"occurrences": 10**30}, "occurrences"),
        ({"name": 5}, "name"),
        ({"payload": {"a": 1}}, "payload"),
        ({"return_url": ["http://127.0.0.1/"]}, "return_url"),
    ],
)
async def test_create_wrong_json_types_refused(
    api: httpx.AsyncClient, fields: dict[str, object], field: str
) -> None:
    """A field of the wrong JSON type is a 400 naming it, never a 500."""
    body = {"interval": "1h", "return_url": "http://127.0.0.1:9/hook", **fields}

    response = await api.post("/set/notifier", json=body)

    assert_refused(response, field)


async def test_create_body_over_request_limit_too_large(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """A body over the request limit is a 413, whether its length is declared or not."""
    jobs_before = await count_jobs(db)
    filler = "x" * REQUEST_MAX_BYTES
    text = job_text(
        interval='"1h"', return_url='"http://127.0.0.1:9/"', name=f'"{filler}"'
    )

    async def chunks() -> AsyncIterator[bytes]:
        data = text.encode()
        for start in range(0, len(data), 65_536):
            yield data[start : start + 65_536]

    declared = await post_text(api, text)
    streamed = await api.post("/set/notifier", content=chunks(), headers=JSON_HEADERS)

    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == 413
        assert error["field"] == "body"
    assert await count_jobs(db) == jobs_before


# Credentials ----------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + "dGVzdGVyOndyb25n"},  # tester:wrong
        {"Authorization": "Basic " + "bm9ib2R5OnRlc3QtcGFzc3dvcmQtZm9yLWxvb3BpdGlz"},
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer test-password-for-loopitis"},
    ],
    ids=["none", "wrong-password", "wrong-user", "garbage", "other-scheme"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/set/notifier"),
        ("GET", "/requests/get_list"),
        ("GET", f"/requests/get_list?requestId={uuid.uuid4()}"),
        ("POST", f"/requests/cancel_task?requestId={uuid.uuid4()}"),
        ("POST", "/set/execution/comment"),
    ],
)
async def test_api_without_valid_credentials_unauthorized(
    anonymous: httpx.AsyncClient,
    db: asyncpg.Pool,
    headers: dict[str, str],
    method: str,
    path: str,
) -> None:
    """Missing or wrong credentials get a 401 with a Basic challenge."""
    jobs_before = await count_jobs(db)
    body = {"interval": "1h", "return_url": "http://127.0.0.1:9/hook"}

    response = await anonymous.request(method, path, json=body, headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.json()["error"]["code"] == 401
    assert await count_jobs(db) == jobs_before


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            '{"interval": "cow", "interval": "1h", "return_url": "http://a.invalid/"}',
            "interval",
        ),
        (
            '{"interval": "1h", "occurrences": 1, "occurrences": null, '
            '"return_url": "http://a.invalid/"}',
            "occurrences",
        ),
    ],
    ids=["interval", "occurrences"],
)
async def test_create_duplicate_key_refused(
    api: httpx.AsyncClient, db: asyncpg.Pool, text: str, field: str
) -> None:
    """A field given twice is a 400 naming it, never last-one-wins."""
    before = await count_jobs(db)

    response = await post_text(api, text)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert "more than once" in response.json()["error"]["message"]
    assert await count_jobs(db) == before


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"],
)
async def test_create_body_not_sent_as_json_refused(
    api: httpx.AsyncClient, db: asyncpg.Pool, content_type: str | None
) -> None:
    """Only application/json bodies are read (a form cannot post jobs): 415."""
    before = await count_jobs(db)
    headers = {"Content-Type": content_type} if content_type else {}
    body = b'{"interval": "1h", "return_url": "http://a.invalid/"}'

    response = await api.post("/set/notifier", content=body, headers=headers)

    assert response.status_code == 415, response.text
    assert response.json()["error"]["field"] == "Content-Type"
    assert await count_jobs(db) == before


async def test_comment_unknown_field_refused(api: httpx.AsyncClient) -> None:
    """A comment with a field other than executionId and comment is a 400 naming it."""
    response = await api.post(
        "/set/execution/comment",
        json={"executionId": str(uuid.uuid4()), "comment": "hi", "extra": 1},
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "extra"
