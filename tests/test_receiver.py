"""The test receiver records requests and behaves as its query string asks."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest

from support.receiver import (
    Receiver,
    TlsKind,
    tls_receiver,
    trusting_ssl_context,
)

QUICK = httpx.Timeout(2.0)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=QUICK) as http:
        yield http


async def test_receiver_records_a_post(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """Method, path, query, headers and the raw body of a request are recorded."""
    response = await client.post(
        receiver.url("/hook", status=201),
        json={"executionNumber": 1},
        headers={"Loopitis-Execution-Id": "e-1"},
    )

    call = receiver.calls_to("/hook")[0]
    assert response.status_code == 201
    assert call.method == "POST"
    assert call.query == {"status": ["201"]}
    assert call.headers["loopitis-execution-id"] == "e-1"
    assert call.json() == {"executionNumber": 1}
    assert call.arrived_at <= (call.finished_at or 0) <= time.time()


async def test_receiver_keeps_callback_query_beside_behaviour(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """Fields a GET callback appends stay in the query next to the behaviour."""
    url = receiver.url("/get?existing=a", status=204)

    response = await client.get(url + "&executionNumber=2&existing=b")

    call = receiver.calls[0]
    assert response.status_code == 204
    assert call.path == "/get"
    assert call.query == {
        "existing": ["a", "b"],
        "status": ["204"],
        "executionNumber": ["2"],
    }
    assert call.param("executionNumber") == "2"
    assert call.body == b""


@pytest.mark.parametrize(
    ("behaviour", "status", "content_type", "body"),
    [
        ({}, 200, None, b""),
        ({"status": 500}, 500, None, b""),
        ({"json_status": "ok", "status": 201}, 201, "application/json", None),
        ({"body": "été", "content_type": "text/html"}, 200, "text/html", None),
        ({"big": 100_000}, 200, "application/octet-stream", b"x" * 100_000),
    ],
)
async def test_receiver_answers_as_asked(
    receiver: Receiver,
    client: httpx.AsyncClient,
    behaviour: dict[str, object],
    status: int,
    content_type: str | None,
    body: bytes | None,
) -> None:
    """Status, JSON, text and big bodies come back exactly as requested."""
    response = await client.post(receiver.url("/answer", **behaviour))

    assert response.status_code == status
    if content_type is not None:
        assert response.headers["content-type"].startswith(content_type)
    if body is not None:
        assert response.content == body


async def test_receiver_json_status_is_a_json_object(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """json_status answers an object whose status field is the given text."""
    response = await client.get(receiver.url("/json", json_status="degraded"))

    assert response.json() == {"status": "degraded"}


async def test_receiver_text_body_is_utf8(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """A body parameter is answered as UTF-8 text."""
    response = await client.get(receiver.url("/text", body="rapport-été-✓"))

    assert response.content == "rapport-été-✓".encode()


async def test_receiver_delays_the_answer(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """delay_ms holds the answer for at least that long."""
    started = time.monotonic()

    response = await client.get(receiver.url("/slow", delay_ms=300))

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_receiver_redirects_without_being_followed(
    receiver: Receiver, client: httpx.AsyncClient, code: int
) -> None:
    """A redirect answers its code and Location; /final sees nothing by itself."""
    response = await client.post(receiver.url("/moved", redirect=code, to="/final"))

    assert response.status_code == code
    assert response.headers["location"] == "/final"
    assert receiver.calls_to("/final") == []


async def test_receiver_redirect_loop_points_at_itself(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """loop=1 makes the Location the request's own path and query."""
    response = await client.get(receiver.url("/loop", redirect=302, loop=1))

    assert response.headers["location"] == "/loop?redirect=302&loop=1"


async def test_receiver_redirect_to_another_receiver(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """`to` may name another receiver, which a following client would reach."""
    async with Receiver() as other:
        target = other.url("/elsewhere")
        response = await client.get(receiver.url("/away", redirect=302, to=target))
        followed = await client.get(response.headers["location"])

    assert followed.status_code == 200
    assert len(other.calls_to("/elsewhere")) == 1


async def test_receiver_hang_never_answers(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """hang=1 accepts the request and sends nothing back."""
    with pytest.raises(httpx.ReadTimeout):
        await client.get(receiver.url("/hang", hang=1), timeout=0.5)

    assert len(receiver.calls_to("/hang")) == 1


async def test_receiver_stop_releases_hanging_requests(
    client: httpx.AsyncClient,
) -> None:
    """stop() ends a hanging request promptly and marks its call finished."""
    hanging = Receiver()
    await hanging.start()
    request = asyncio.create_task(client.get(hanging.url("/hang", hang=1)))
    await hanging.wait_for_calls("/hang", 1, timeout_s=2)
    started = time.monotonic()

    await hanging.stop()

    assert time.monotonic() - started < 1.5
    assert hanging.calls[0].finished_at is not None
    with pytest.raises(httpx.TransportError):
        await request


async def test_receiver_trickles_headers(receiver: Receiver) -> None:
    """trickle_headers sends the status line one byte at a time, about 1 s apart."""
    url = httpx.URL(receiver.url("/th", trickle_headers=1))
    reader, writer = await asyncio.open_connection(url.host, url.port)
    writer.write(f"GET {url.raw_path.decode()} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    first = await asyncio.wait_for(reader.read(100), timeout=1.0)
    started = time.monotonic()
    second = await asyncio.wait_for(reader.read(100), timeout=2.0)
    writer.close()
    await writer.wait_closed()

    assert (first, second) == (b"H", b"T")
    assert time.monotonic() - started > 0.8


async def test_receiver_trickled_headers_defeat_per_read_timeouts(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """A client with only a per-read timeout keeps waiting: only a deadline helps."""
    url = receiver.url("/th", trickle_headers=1)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(2.5):
            await client.get(url, timeout=httpx.Timeout(1.5))


async def test_receiver_trickles_body(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """trickle_body answers 200 at once, then the body crawls and never ends."""
    url = receiver.url("/tb", trickle_body=1)

    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        chunks = response.aiter_raw()
        first = await asyncio.wait_for(anext(chunks), timeout=1.0)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(chunks), timeout=0.5)

    assert first == b"x"


async def test_receiver_reset_drops_the_connection(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """reset=1 drops the connection with a reset, not a clean close."""
    with pytest.raises(httpx.ReadError):
        await client.post(receiver.url("/reset", reset=1), content=b"data")

    assert receiver.calls_to("/reset")[0].body == b"data"


async def test_receiver_wait_for_calls_returns_when_enough_arrive(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """wait_for_calls returns as soon as the count is reached, in arrival order."""

    async def send_three() -> None:
        for number in range(3):
            await asyncio.sleep(0.05)
            await client.get(receiver.url("/n", number=number))

    sender = asyncio.create_task(send_three())
    calls = await receiver.wait_for_calls("/n", 3, timeout_s=2)
    await sender

    assert [call.param("number") for call in calls] == ["0", "1", "2"]


async def test_receiver_wait_for_calls_says_how_many_arrived(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    """A wait that runs out fails with the expected and the actual count."""
    await client.get(receiver.url("/once"))

    with pytest.raises(AssertionError, match=r"expected 2 calls to /once .* got 1"):
        await receiver.wait_for_calls("/once", 2, timeout_s=0.2)


async def test_receiver_start_and_stop_are_idempotent() -> None:
    """Starting or stopping twice changes nothing and raises nothing."""
    receiver = Receiver()
    await receiver.start()
    base_url = receiver.base_url

    await receiver.start()
    await receiver.stop()
    await receiver.stop()

    assert base_url.startswith("http://127.0.0.1:")


FAILING_KINDS: list[TlsKind] = ["self_signed", "expired", "wrong_name"]


@pytest.mark.parametrize("kind", [*FAILING_KINDS, "valid"])
async def test_tls_receiver_fails_default_verification(kind: TlsKind) -> None:
    """Every test certificate fails verification against the default trust store."""
    async with tls_receiver(kind) as receiver, aiohttp.ClientSession() as session:
        assert receiver.base_url.startswith("https://127.0.0.1:")
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(receiver.url("/tls"))

    assert receiver.calls == []


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("self_signed", "self-signed certificate"),
        ("expired", "certificate has expired"),
        ("wrong_name", "IP address mismatch"),
    ],
)
async def test_tls_receiver_fails_for_its_own_reason(
    kind: TlsKind, reason: str
) -> None:
    """Trusting the test authority, each kind still fails, for its stated reason."""
    async with tls_receiver(kind) as receiver:
        with pytest.raises(httpx.ConnectError, match=reason):
            async with httpx.AsyncClient(verify=trusting_ssl_context()) as client:
                await client.get(receiver.url("/tls"), timeout=QUICK)


async def test_tls_receiver_valid_passes_with_the_test_authority() -> None:
    """The valid kind proves the trusting client works, so failures are real."""
    async with (
        tls_receiver("valid") as receiver,
        httpx.AsyncClient(verify=trusting_ssl_context()) as client,
    ):
        response = await client.get(receiver.url("/tls", status=202), timeout=QUICK)

    assert response.status_code == 202
    assert receiver.calls[0].path == "/tls"


def test_trusting_ssl_context_trusts_only_the_test_authority() -> None:
    """The trusting context holds one authority, not the system store."""
    context = trusting_ssl_context()

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1
