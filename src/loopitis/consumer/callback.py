"""Sending one HTTP call (a callback or an alert) and classifying how it ended."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import ResolveResult

from loopitis import __version__
from loopitis.errors import BlockedTarget
from loopitis.model.job import Outcome
from loopitis.model.targets import TargetPolicy, parse_address

MAX_RESPONSE_BYTES = 64 * 1024
MAX_REPORTED_STATUS = 200
USER_AGENT = f"Loopitis/{__version__}"
# zlib window bits that read a gzip or a zlib stream, and a raw deflate one.
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS
# Bidirectional overrides reorder text on screen; shown where a receiver's
# words are, they could make a record read differently from what it holds.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True, slots=True)
class CallResult:
    """How one HTTP call ended."""

    outcome: Outcome
    http_status: int | None
    error_kind: str | None
    error: str | None
    started_ms: float
    duration_ms: float
    reported_status: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SUCCEEDED


class ReservedNameResolver(aiohttp.ThreadedResolver):
    """Answers names under the reserved ``.invalid`` domain at once (RFC 6761).

    Such names can never resolve, so no query for them leaves the machine.
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = host.rstrip(".").lower()
        if name == "invalid" or name.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await super().resolve(host, port, family)


class GuardedConnector(aiohttp.TCPConnector):
    """A connector that connects only to the addresses its policy allows.

    The check runs on the very list of addresses the connector is about to
    connect to, for every new connection: after DNS resolution (and its
    cache), and for literal addresses, which aiohttp never hands to a
    resolver. So a name that resolves to a public address at one moment and
    to 127.0.0.1 the next (DNS rebinding) is refused the second time.
    """

    def __init__(self, policy: TargetPolicy, **options: Any) -> None:
        super().__init__(**options)
        self._policy = policy

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Any] | None = None
    ) -> list[ResolveResult]:
        resolved = await super()._resolve_host(host, port, traces=traces)
        allowed: list[ResolveResult] = []
        refusals: list[str] = []
        for entry in resolved:
            address = parse_address(entry["host"])
            if address is None:
                refusals.append(f"{entry['host']!r} is not an address")
                continue
            refusal = self._policy.refusal(host, address)
            if refusal is None:
                allowed.append(entry)
            else:
                refusals.append(refusal)
        if not allowed:
            raise BlockedTarget(host, "; ".join(refusals) or "no address")
        return allowed


def create_session(
    concurrency: int, timeout_s: float, policy: TargetPolicy
) -> aiohttp.ClientSession:
    """One session per process: pooled, reused connections for every call."""
    connector = GuardedConnector(
        policy,
        limit=concurrency,
        limit_per_host=0,
        resolver=ReservedNameResolver(),
        ttl_dns_cache=10,
        enable_cleanup_closed=True,
    )
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(timeout_s, 5.0))
    # Compressed answers are not asked for and are inflated by hand, never
    # past the cap, so a small compressed body cannot grow into a large one.
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        auto_decompress=False,
        trust_env=False,
    )


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    timeout_s: float,
) -> CallResult:
    """Send one call with a deadline on the whole exchange, body included."""
    started_ms = time.time() * 1000
    clock = time.monotonic()
    if body is not None:
        headers = {**headers, "Content-Type": "application/json"}
    try:
        async with asyncio.timeout(timeout_s):
            status, head = await _exchange(session, method, url, body, headers)
    except Exception as exc:
        return _failure(exc, started_ms, clock)
    outcome = Outcome.SUCCEEDED if 200 <= status < 300 else Outcome.FAILED
    error = None if outcome == Outcome.SUCCEEDED else f"HTTP {status}"
    return CallResult(
        outcome,
        status,
        None if outcome == Outcome.SUCCEEDED else "http_status",
        error,
        started_ms,
        _elapsed_ms(clock),
        _reported_status(head),
    )


async def _exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
) -> tuple[int, bytes]:
    async with session.request(
        method, url, data=body, headers=headers, allow_redirects=False
    ) as response:
        head = await _read_capped(response)
        encoding = response.headers.get("Content-Encoding", "")
        return response.status, _inflate_capped(head, encoding)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """At most 64 KiB of the body; the rest is never read."""
    chunks: list[bytes] = []
    size = 0
    while size < MAX_RESPONSE_BYTES:
        chunk = await response.content.read(MAX_RESPONSE_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _inflate_capped(head: bytes, encoding: str) -> bytes:
    """A gzip or deflate body inflated to at most 64 KiB; others as they are."""
    encoding = encoding.strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return head
    for wbits in (_GZIP_OR_ZLIB, _RAW_DEFLATE):
        try:
            return zlib.decompressobj(wbits).decompress(head, MAX_RESPONSE_BYTES)
        except zlib.error:
            continue
    return b""


def _reported_status(head: bytes) -> str | None:
    if b"{" not in head:
        return None  # only a JSON object carries a status; spares a failed parse
    try:
        document = json.loads(head)
    except (ValueError, RecursionError):
        return None
    status = document.get("status") if isinstance(document, dict) else None
    if not isinstance(status, str):
        return None
    return printable(status[:MAX_REPORTED_STATUS])


def printable(text: str) -> str:
    """``text`` with control characters, bidirectional overrides and lone
    surrogates replaced by U+FFFD, so words a receiver chose cannot forge a
    log line or reorder what a page shows."""
    return "".join(
        "\ufffd"
        if ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs")
        else ch
        for ch in text
    )


def _failure(exc: BaseException, started_ms: float, clock: float) -> CallResult:
    outcome, kind, text = classify(exc)
    return CallResult(outcome, None, kind, text, started_ms, _elapsed_ms(clock))


def classify(exc: BaseException) -> tuple[Outcome, str, str]:
    """Outcome, error kind and short text for a call that got no response."""
    if isinstance(exc, BlockedTarget):
        return Outcome.ERROR, "blocked_target", f"blocked target: {_short(exc.reason)}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Outcome.ERROR, "connect_timeout", "connect timeout"
    if isinstance(exc, TimeoutError):
        return Outcome.TIMED_OUT, "timeout", "timeout"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return Outcome.ERROR, "dns", "dns: name does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return Outcome.ERROR, "tls", f"tls: {_short(exc.certificate_error)}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return Outcome.ERROR, "tls", f"tls: {_short(exc)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return Outcome.ERROR, "refused", "connection refused"
        return Outcome.ERROR, "connect", f"connect: {_short(exc.os_error)}"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return Outcome.ERROR, "connection", "connection reset"
    if isinstance(exc, aiohttp.ClientError | ValueError):
        return Outcome.ERROR, "protocol", f"protocol: {_short(exc)}"
    return Outcome.ERROR, "internal", f"internal: {type(exc).__name__}"


def _short(exc: object) -> str:
    return printable(str(exc).replace("\n", " ")[:200]) or type(exc).__name__


def _elapsed_ms(clock: float) -> float:
    return round((time.monotonic() - clock) * 1000, 3)
