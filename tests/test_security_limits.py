"""Hard inputs: oversized requests and hostile answers stay bounded."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import time
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from loopitis.consumer.callback import (
    MAX_RESPONSE_BYTES,
    _inflate_capped,
    _reported_status,
    create_session,
    send,
)
from loopitis.model.targets import TargetPolicy
from support.stack import Stack

REQUEST_MAX_BYTES = 1_048_576
HUGE_BODY_BYTES = 96 * 1024 * 1024
# The gateway may buffer up to the limit and a chunk; far less than the body.
RSS_GROWTH_LIMIT_BYTES = 12 * 1024 * 1024
CHUNK = b"x" * (256 * 1024)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


async def stream_body(port: int, head: bytes, chunked: bool) -> bytes:
    """Send ``head`` then up to HUGE_BODY_BYTES of body until the gateway stops
    reading; return whatever it answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answer = asyncio.create_task(_read_response(reader))
    sent = 0
    try:
        writer.write(head)
        while sent < HUGE_BODY_BYTES and not answer.done():
            frame = b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK
            writer.write(frame)
            await asyncio.wait_for(writer.drain(), timeout=5)
            sent += len(CHUNK)
    except (ConnectionError, TimeoutError):
        pass
    try:
        return await asyncio.wait_for(answer, timeout=10)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    """One whole HTTP response: the head, then as many body bytes as it declares."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
async def test_huge_body_is_refused_without_being_buffered(
    stack: Stack, chunked: bool
) -> None:
    """A 96 MiB body gets 413 naming the limit; the gateway's memory stays flat."""
    assert stack.gateway is not None
    framing = (
        b"Transfer-Encoding: chunked\r\n"
        if chunked
        else b"Content-Length: %d\r\n" % HUGE_BODY_BYTES
    )
    token = b"Basic " + base64.b64encode(":".join(stack.auth).encode())
    head = (
        (
            b"POST /set/notifier HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nAuthorization: " + token + b"\r\n"
        )
        + framing
        + b"\r\n"
    )
    before = rss_bytes(stack.gateway.pid)

    answer = await stream_body(stack.port, head, chunked)

    growth = rss_bytes(stack.gateway.pid) - before
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"LOOPITIS_REQUEST_MAX_BYTES" in answer
    assert growth < RSS_GROWTH_LIMIT_BYTES, f"gateway grew by {growth} bytes"


async def test_too_many_header_fields_is_a_431(api: httpx.AsyncClient) -> None:
    """More header fields than LOOPITIS_REQUEST_MAX_HEADERS are refused at once."""
    headers = {f"X-Filler-{number}": "1" for number in range(120)}

    response = await api.get("/requests/get_list", headers=headers)

    assert response.status_code == 431, response.text
    error = response.json()["error"]
    assert error["field"] == "headers"
    assert "LOOPITIS_REQUEST_MAX_HEADERS" in error["details"]


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [
        ("name", "n" * 256, "255"),
        ("return_url", "https://example.invalid/" + "p" * 2048, "2048"),
        ("payload", "p" * 65_537, "65536"),
    ],
)
async def test_field_limits_are_400s_naming_the_limit(
    api: httpx.AsyncClient, field: str, value: str, limit: str
) -> None:
    """Name, URL and payload size limits each answer 400 with the limit in words."""
    fields = {
        "interval": "1h",
        "delay": "1d",
        "return_url": "http://never-called.invalid/hook",
        field: value,
    }

    response = await api.post("/set/notifier", json=fields)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == field
    assert limit in response.json()["error"]["message"]


def test_inflate_never_grows_past_the_cap() -> None:
    """A gzip bomb (64 MiB of zeros in about 64 KiB) inflates to 64 KiB at most."""
    bomb = gzip.compress(b"0" * (64 * 1024 * 1024), compresslevel=9)
    started = time.monotonic()

    inflated = _inflate_capped(bomb[:MAX_RESPONSE_BYTES], "gzip")

    assert len(bomb) < MAX_RESPONSE_BYTES
    assert len(inflated) == MAX_RESPONSE_BYTES
    assert time.monotonic() - started < 1.0


def test_reported_status_cannot_smuggle_control_characters() -> None:
    """Line breaks, escapes and bidi overrides from a receiver are neutralised."""
    hostile = "ok\n2024 INFO forged line\x1b[31m\u202etxt.exe"
    body = json.dumps({"status": hostile}).encode()

    reported = _reported_status(body)

    assert reported is not None
    assert not any(ch in reported for ch in "\n\x1b\u202e")
    assert reported.startswith("ok\ufffd2024 INFO forged line")


async def test_compressed_answers_are_read_capped_from_a_real_receiver() -> None:
    """A gzip answer is inflated for its status; a gzip bomb is cut at the cap."""
    small = gzip.compress(json.dumps({"status": "compressed ok"}).encode())
    bomb = gzip.compress(b" " * (32 * 1024 * 1024))

    async def answer(request: web.Request) -> web.Response:
        body = bomb if request.path == "/bomb" else small
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with create_session(2, 5, TargetPolicy(allow_private=True)) as session:
            ok = await send(session, "GET", f"http://127.0.0.1:{port}/ok", None, {}, 5)
            boom = await send(
                session, "GET", f"http://127.0.0.1:{port}/bomb", None, {}, 5
            )
    finally:
        await runner.cleanup()

    assert (ok.outcome, ok.reported_status) == ("succeeded", "compressed ok")
    assert (boom.outcome, boom.reported_status) == ("succeeded", None)
