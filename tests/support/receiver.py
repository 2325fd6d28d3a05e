"""A callback receiver on 127.0.0.1 for end-to-end tests.

The receiver records every request it gets and answers the way the request's
own query string asks, so a job's ``return_url`` decides how its callbacks are
treated::

    async with Receiver() as receiver:
        return_url = receiver.url("/slow", delay_ms=3500)
        ...
        calls = await receiver.wait_for_calls("/slow", count=3, timeout_s=10)

Behaviour parameters (all optional):

``status=N``            answer with status N (default 200)
``delay_ms=N``          wait N ms before answering
``hang=1``              read the request, then never answer until stop()
``trickle_headers=1``   send the status line and headers one byte per second
                        and never finish them
``trickle_body=1``      send 200 headers, then one body byte per second
``redirect=N``          answer status N with a Location header: ``to=URL``
                        (default ``/final``), or the request's own URL with
                        ``loop=1``
``body=TEXT``           answer TEXT, typed by ``content_type=`` (default
                        text/plain)
``json_status=TEXT``    answer the JSON object {"status": TEXT}
``big=N``               answer N bytes
``reset=1``             drop the connection with a TCP reset, answering nothing

The names do not clash with the fields a GET or DELETE callback appends to the
query, and every parameter, behaviour or not, is kept in :attr:`Call.query`.

:func:`tls_receiver` gives HTTPS receivers whose certificates a client must
refuse: ``self_signed``, ``expired`` and ``wrong_name``. The ``valid`` kind is
signed by the same test authority and passes with :func:`trusting_ssl_context`,
which lets a test show that each refusal has the intended cause.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import ipaddress
import json
import socket
import ssl
import struct
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlencode

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from multidict import CIMultiDict

HOST = "127.0.0.1"
TRICKLE_INTERVAL_S = 1.0
# Bodies are bounded by the gateway's payload limit; this only has to be larger.
MAX_REQUEST_BODY_BYTES = 16 * 1024 * 1024
# The status line and a header that never ends: a client waiting for the blank
# line that closes the headers waits forever.
_ENDLESS_HEADERS_PREFIX = b"HTTP/1.1 200 OK\r\nX-Trickle: "

TlsKind = Literal["self_signed", "expired", "wrong_name", "valid"]


@dataclass
class Call:
    """One request as the receiver saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: CIMultiDict[str]
    body: bytes
    arrived_at: float
    finished_at: float | None = None

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        """The first value of query parameter ``name``, or None."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class _Behaviour:
    """How to answer one request, read from its query string."""

    status: int = 200
    delay_ms: int = 0
    hang: bool = False
    trickle_headers: bool = False
    trickle_body: bool = False
    redirect: int | None = None
    to: str = "/final"
    loop: bool = False
    body: str | None = None
    content_type: str = "text/plain"
    json_status: str | None = None
    big: int | None = None
    reset: bool = False

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> _Behaviour:
        redirect = query.get("redirect")
        big = query.get("big")
        return cls(
            status=int(query.get("status", "200")),
            delay_ms=int(query.get("delay_ms", "0")),
            hang=_is_on(query, "hang"),
            trickle_headers=_is_on(query, "trickle_headers"),
            trickle_body=_is_on(query, "trickle_body"),
            redirect=int(redirect) if redirect else None,
            to=query.get("to", "/final"),
            loop=_is_on(query, "loop"),
            body=query.get("body"),
            content_type=query.get("content_type", "text/plain"),
            json_status=query.get("json_status"),
            big=int(big) if big else None,
            reset=_is_on(query, "reset"),
        )


class Receiver:
    """An HTTP (or HTTPS) server on 127.0.0.1 that records and obeys requests."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.calls: list[Call] = []
        self._ssl_context = ssl_context
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._arrival = asyncio.Condition()
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (or https); only valid once started."""
        if self._port is None:
            raise RuntimeError("the receiver has no port until start() is awaited")
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{HOST}:{self._port}"

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1; a second call does nothing."""
        if self._runner is not None:
            return

        app = web.Application(client_max_size=MAX_REQUEST_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0, ssl_context=self._ssl_context)
        await site.start()

        self._runner = runner
        self._port = _bound_port(runner)
        self._stopping.clear()

    async def stop(self) -> None:
        """Release hanging requests and close the server; safe to call twice."""
        if self._runner is None:
            return

        # Wake every hanging or trickling handler first, so shutdown is quick.
        self._stopping.set()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> Receiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    def url(self, path: str, **behaviour: object) -> str:
        """The absolute URL of ``path`` carrying ``behaviour`` as its query."""
        if not behaviour:
            return self.base_url + path

        query = urlencode({name: _query_value(v) for name, v in behaviour.items()})
        separator = "&" if "?" in path else "?"
        return f"{self.base_url}{path}{separator}{query}"

    def calls_to(self, path: str) -> list[Call]:
        """The calls whose path (without query) is ``path``, in arrival order."""
        return [call for call in self.calls if call.path == path]

    async def wait_for_calls(
        self, path: str, count: int, timeout_s: float
    ) -> list[Call]:
        """Wait until ``path`` got at least ``count`` calls and return them all.

        Raises AssertionError, saying how many arrived, when ``timeout_s`` runs out.
        """
        try:
            async with asyncio.timeout(timeout_s), self._arrival:
                await self._arrival.wait_for(lambda: len(self.calls_to(path)) >= count)
        except TimeoutError:
            arrived = len(self.calls_to(path))
            raise AssertionError(
                f"expected {count} calls to {path} within {timeout_s} s, got {arrived}"
            ) from None

        return self.calls_to(path)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived_at = time.time()
        call = Call(
            method=request.method,
            path=request.path,
            query={name: request.query.getall(name) for name in request.query},
            headers=CIMultiDict(request.headers),
            body=await request.read(),
            arrived_at=arrived_at,
        )
        await self._record(call)

        try:
            return await self._behave(request, _Behaviour.from_query(request.query))
        finally:
            call.finished_at = time.time()

    async def _record(self, call: Call) -> None:
        async with self._arrival:
            self.calls.append(call)
            self._arrival.notify_all()

    async def _behave(
        self, request: web.Request, behaviour: _Behaviour
    ) -> web.StreamResponse:
        if behaviour.reset:
            return _reset_connection(request)
        if behaviour.delay_ms and await self._sleep(behaviour.delay_ms / 1000):
            return _drop_connection(request)
        if behaviour.hang:
            await self._stopping.wait()
            return _drop_connection(request)
        if behaviour.trickle_headers:
            return await self._trickle_headers(request)
        if behaviour.trickle_body:
            return await self._trickle_body(request)

        return _answer(request, behaviour)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep ``seconds``; return True early if the receiver is stopping."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return False

        return True

    async def _trickle_headers(self, request: web.Request) -> web.StreamResponse:
        # aiohttp writes nothing until the handler returns, so the handler can
        # use the transport directly to send a response that never completes.
        transport = request.transport
        sent = 0
        while transport is not None and not transport.is_closing():
            next_byte = _ENDLESS_HEADERS_PREFIX[sent : sent + 1] or b"a"
            transport.write(next_byte)
            sent += 1
            if await self._sleep(TRICKLE_INTERVAL_S):
                break

        return _drop_connection(request)

    async def _trickle_body(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_type = "text/plain"
        response.content_length = 1_000_000
        await response.prepare(request)
        try:
            while True:
                await response.write(b"x")
                if await self._sleep(TRICKLE_INTERVAL_S):
                    break
        except ConnectionError:
            pass  # the client gave up, which is what the trickle is for

        return _drop_connection(request)


def tls_receiver(kind: TlsKind) -> Receiver:
    """An unstarted HTTPS receiver whose certificate is of the given ``kind``.

    ``self_signed``, ``expired`` and ``wrong_name`` fail verification for any
    client, including one that trusts the test authority; ``valid`` passes for
    a client built with :func:`trusting_ssl_context` and fails for the rest.
    """
    certificate, key = _leaf_certificate(kind)
    return Receiver(ssl_context=_server_context(certificate, key))


def trusting_ssl_context() -> ssl.SSLContext:
    """A client context that trusts the test authority and nothing else."""
    # Passing cadata keeps the system's authorities out of this context.
    return ssl.create_default_context(cadata=authority_pem())


def authority_pem() -> str:
    """The PEM certificate of the authority that signs the test certificates."""
    certificate, _ = _authority()
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _answer(request: web.Request, behaviour: _Behaviour) -> web.Response:
    if behaviour.redirect is not None:
        location = request.path_qs if behaviour.loop else behaviour.to
        return web.Response(status=behaviour.redirect, headers={"Location": location})
    if behaviour.json_status is not None:
        return web.json_response(
            {"status": behaviour.json_status}, status=behaviour.status
        )
    if behaviour.big is not None:
        return web.Response(
            status=behaviour.status,
            body=b"x" * behaviour.big,
            content_type="application/octet-stream",
        )
    if behaviour.body is not None:
        return web.Response(
            status=behaviour.status,
            body=behaviour.body.encode(),
            headers={"Content-Type": behaviour.content_type},
        )

    return web.Response(status=behaviour.status)


def _drop_connection(request: web.Request) -> web.Response:
    # aiohttp ignores a response that can no longer be written, so this only
    # satisfies the handler's return type once the connection is gone.
    if request.transport is not None:
        request.transport.close()

    return web.Response(status=499)


def _reset_connection(request: web.Request) -> web.Response:
    transport = request.transport
    if transport is not None:
        # Lingering for zero seconds makes close() send RST instead of FIN.
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    return web.Response(status=499)


def _is_on(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "0") not in ("", "0", "false")


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"

    return str(value)


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        return int(address[1])

    raise RuntimeError("the receiver's site did not bind a port")


# Certificates, made once per test run with an elliptic-curve key (fast).


@functools.cache
def _authority() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("Loopitis Test Authority")
    now = _now()
    certificate = (
        _builder(name, name, key.public_key(), now, now + _days(30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(is_authority=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


@functools.cache
def _leaf_certificate(
    kind: TlsKind,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    valid_from, valid_until = now - _days(1), now + _days(30)
    if kind == "expired":
        valid_from, valid_until = now - _days(30), now - _days(1)
    names = _local_names()
    if kind == "wrong_name":
        names = [x509.DNSName("wrong-name.invalid")]

    issuer_certificate, issuer_key = _authority()
    issuer_name = issuer_certificate.subject
    if kind == "self_signed":
        issuer_name, issuer_key = _name("127.0.0.1"), key

    certificate = (
        _builder(
            _name("127.0.0.1"), issuer_name, key.public_key(), valid_from, valid_until
        )
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(is_authority=False), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )
    return certificate, key


def _server_context(
    certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # load_cert_chain only reads files; they are deleted once loaded.
    with tempfile.TemporaryDirectory(prefix="loopitis-tls-") as directory:
        certificate_path = Path(directory, "certificate.pem")
        key_path = Path(directory, "key.pem")
        certificate_path.write_bytes(
            certificate.public_bytes(serialization.Encoding.PEM)
        )
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context.load_cert_chain(certificate_path, key_path)

    return context


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    valid_from: datetime.datetime,
    valid_until: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_until)
    )


def _key_usage(*, is_authority: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not is_authority,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=is_authority,
        crl_sign=is_authority,
        encipher_only=False,
        decipher_only=False,
    )


def _local_names() -> list[x509.GeneralName]:
    return [
        x509.IPAddress(ipaddress.IPv4Address(HOST)),
        x509.DNSName("localhost"),
    ]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _days(count: int) -> datetime.timedelta:
    return datetime.timedelta(days=count)
