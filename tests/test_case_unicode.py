"""C9: Unicode end to end, from the create request to the receiver and back."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from support.jobs import create_job, get_job, wait_for_status
from support.receiver import Call, Receiver

NAME = "rapport-\u00e9t\u00e9-\u2713"
TEXT = (
    # A family and a rainbow flag: emoji joined by ZERO WIDTH JOINER.
    "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 "
    "\U0001f3f3\ufe0f\u200d\U0001f308 "
    # CJK, then Hebrew and Arabic (right to left).
    "\u6f22\u5b57\u304b\u306a\ud55c\uae00 "
    "\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 "
    # e followed by a combining acute accent, then G clef outside the BMP.
    "cafe\u0301 \U0001d11e"
)
PAYLOAD = json.dumps(
    {"text": TEXT, "note": "\u2028 line separator"}, ensure_ascii=False
)
COMMENT = "\u043e\u043a \U0001f44d \u2028 done"


def unique_path(label: str) -> str:
    return f"/unicode-{label}-{uuid.uuid4().hex[:8]}"


def code_points(text: str) -> list[int]:
    return [ord(char) for char in text]


def assert_utf8_json_body(call: Call) -> dict[str, object]:
    """The body is strict UTF-8 JSON and Content-Length counts its bytes."""
    assert call.headers["Content-Type"].startswith("application/json")
    assert int(call.headers["Content-Length"]) == len(call.body)
    document: dict[str, object] = json.loads(call.body.decode("utf-8", "strict"))
    return document


async def test_unicode_post_callback_delivers_exact_text(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Name, payload and comment survive the round trip code point for code point."""
    path = unique_path("post")
    job_id = await create_job(
        api,
        interval=300,
        occurrences=1,
        name=NAME,
        payload=PAYLOAD,
        return_url=receiver.url(path),
    )

    call = (await receiver.wait_for_calls(path, 1, timeout_s=5))[0]
    document = assert_utf8_json_body(call)
    await wait_for_status(api, job_id, "FINISHED", timeout_s=5)
    commented = await api.post(
        "/set/execution/comment",
        json={"executionId": document["executionId"], "comment": COMMENT},
    )
    body = await get_job(api, job_id)

    assert code_points(str(document["payload"])) == code_points(PAYLOAD)
    assert code_points(str(document["parentRequestName"])) == code_points(NAME)
    assert commented.status_code == 200, commented.text
    assert commented.json()["comment"]["comment"] == COMMENT
    assert body["job"]["name"] == NAME
    assert body["job"]["payload"] == PAYLOAD
    comments = body["executions"][0]["comments"]
    assert [code_points(c["comment"]) for c in comments] == [code_points(COMMENT)]


async def test_unicode_raw_utf8_request_accepted(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A request written as raw UTF-8, not \\u escapes, is read the same way."""
    path = unique_path("raw")
    text = json.dumps(
        {
            "interval": "1h",
            "occurrences": 1,
            "name": NAME,
            "payload": PAYLOAD,
            "return_url": receiver.url(path),
        },
        ensure_ascii=False,
    )

    response = await api.post(
        "/set/notifier",
        content=text.encode("utf-8"),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201, response.text
    call = (await receiver.wait_for_calls(path, 1, timeout_s=5))[0]
    document = assert_utf8_json_body(call)

    assert document["parentRequestName"] == NAME
    assert document["payload"] == PAYLOAD


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_unicode_query_callback_delivers_exact_text(
    api: httpx.AsyncClient, receiver: Receiver, method: str
) -> None:
    """A GET or DELETE callback carries name and payload as UTF-8 query values."""
    path = unique_path(method.lower())
    job_id = await create_job(
        api,
        interval="1h",
        occurrences=1,
        name=NAME,
        payload=PAYLOAD,
        callback_type=method,
        return_url=receiver.url(path, mark="\u00e9"),
    )

    call = (await receiver.wait_for_calls(path, 1, timeout_s=5))[0]
    await wait_for_status(api, job_id, "FINISHED", timeout_s=5)

    assert call.method == method
    assert call.body == b""
    assert call.param("mark") == "\u00e9"
    assert call.param("parentRequestName") == NAME
    assert call.param("payload") == PAYLOAD


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("payload", '"before\\u0000after"'),
        ("payload", '"\\ud800"'),
        ("payload", '"lone low \\udc00 surrogate"'),
        ("payload", '"\\udc00\\ud800 reversed pair"'),
        ("name", '"\\ud83d"'),
        ("name", '"nul\\u0000"'),
    ],
    ids=[
        "payload-nul",
        "payload-lone-high",
        "payload-lone-low",
        "payload-reversed-pair",
        "name-lone-high",
        "name-nul",
    ],
)
async def test_unicode_unstorable_text_refused(
    api: httpx.AsyncClient, receiver: Receiver, field: str, raw: str
) -> None:
    """NUL or a lone surrogate is a 400 naming the field, never a 500."""
    path = unique_path("refused")
    url = json.dumps(receiver.url(path))
    text = f'{{"interval": "1h", "return_url": {url}, "{field}": {raw}}}'

    response = await api.post(
        "/set/notifier",
        content=text.encode("ascii"),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert field in error["message"]


@pytest.mark.parametrize(
    "raw", ['"ok \\u0000"', '"\\ud800"'], ids=["nul", "lone-surrogate"]
)
async def test_unicode_unstorable_comment_refused(
    api: httpx.AsyncClient, receiver: Receiver, raw: str
) -> None:
    """A comment with NUL or a lone surrogate is a 400 naming comment."""
    path = unique_path("comment")
    job_id = await create_job(
        api, interval=300, occurrences=1, return_url=receiver.url(path)
    )
    call = (await receiver.wait_for_calls(path, 1, timeout_s=5))[0]
    execution_id = call.json()["executionId"]
    text = f'{{"executionId": "{execution_id}", "comment": {raw}}}'

    response = await api.post(
        "/set/execution/comment",
        content=text.encode("ascii"),
        headers={"Content-Type": "application/json"},
    )
    body = await get_job(api, job_id)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "comment"
    assert body["executions"][0]["comments"] == []
