"""Sending one HTTP call (a callback or an alert) and classifying how it ended."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import ResolveResult

from loopitis import __version__
from loopitis.model.job import Outcome

MAX_RESPONSE_BYTES = 64 * 1024
MAX_REPORTED_STATUS = 200
USER_AGENT = f"Loopitis/{__version__}"


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


def create_session(concurrency: int, timeout_s: float) -> aiohttp.ClientSession:
    """One session per process: pooled, reused connections for every call."""
    connector = aiohttp.TCPConnector(
        limit=concurrency,
        limit_per_host=0,
        resolver=ReservedNameResolver(),
        ttl_dns_cache=10,
        enable_cleanup_closed=True,
    )
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=min(timeout_s, 5.0))
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        auto_decompress=True,
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
        return response.status, head


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


def _reported_status(head: bytes) -> str | None:
    try:
        document = json.loads(head)
    except (ValueError, RecursionError):
        return None
    status = document.get("status") if isinstance(document, dict) else None
    return status[:MAX_REPORTED_STATUS] if isinstance(status, str) else None


def _failure(exc: BaseException, started_ms: float, clock: float) -> CallResult:
    outcome, kind, text = classify(exc)
    return CallResult(outcome, None, kind, text, started_ms, _elapsed_ms(clock))


def classify(exc: BaseException) -> tuple[Outcome, str, str]:
    """Outcome, error kind and short text for a call that got no response."""
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
    return str(exc).replace("\n", " ")[:200] or type(exc).__name__


def _elapsed_ms(clock: float) -> float:
    return round((time.monotonic() - clock) * 1000, 3)
