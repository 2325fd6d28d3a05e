"""The outbound guard: callbacks and alerts reach public addresses only.

No test here sends a packet anywhere but 127.0.0.1. Refusals of other
addresses are shown either at job creation (400) or by a connector whose
socket factory refuses every socket, so even a broken guard could not connect.
"""

from __future__ import annotations

import ipaddress
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx
import pytest

from loopitis.consumer.callback import (
    GuardedConnector,
    ReservedNameResolver,
    create_session,
    send,
)
from loopitis.local.ports import free_port
from loopitis.model.targets import TargetPolicy, blocked_range, parse_address
from support.database import create_database
from support.jobs import create_job, get_job
from support.observe import wait_for_job
from support.receiver import Receiver
from support.stack import Stack, stack_env

FORBIDDEN_ADDRESSES = [
    ("0.0.0.0", "unspecified"),
    ("10.20.30.40", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local (cloud metadata)"),
    ("172.16.0.1", "private"),
    ("192.0.0.170", "IETF protocol assignments"),
    ("192.168.1.1", "private"),
    ("198.18.0.1", "benchmarking"),
    ("224.0.0.251", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
    ("64:ff9b::a9fe:a9fe", "link-local (cloud metadata)"),
    ("2002:0a00:0001::1", "private"),
    ("fc00::1", "unique local"),
    ("fd12:3456::1", "unique local"),
    ("fe80::1", "link-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
]
PUBLIC_ADDRESSES = ["1.1.1.1", "93.184.215.14", "2606:4700:4700::1111"]
# Written the ways a URL may spell a forbidden address.
FORBIDDEN_URL_HOSTS = [
    "127.0.0.1",
    "169.254.169.254",
    "10.0.0.1",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:a9fe:a9fe]",
    "0x7f.1",
    "0177.0.0.1",
    "app.localhost",
]
# Used beside a refused URL: reserved (RFC 6761), so no DNS query is ever made
# for it, and a day away should a bug accept the job.
NEVER_CALLED_URL = "http://never-called.invalid/hook"


class SocketsRefused(OSError):
    """Raised by the test socket factory: no socket is ever opened."""


@pytest.mark.parametrize(("address", "range_name"), FORBIDDEN_ADDRESSES)
def test_blocked_range_names_each_forbidden_range(
    address: str, range_name: str
) -> None:
    """Every special-purpose range is refused, IPv4 inside IPv6 included."""
    assert blocked_range(ipaddress.ip_address(address)) == range_name


@pytest.mark.parametrize("address", PUBLIC_ADDRESSES)
def test_blocked_range_lets_public_addresses_through(address: str) -> None:
    """Public unicast addresses are not refused."""
    assert blocked_range(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("[::1]", "::1")],
)
def test_parse_address_reads_the_forms_a_resolver_accepts(
    host: str, address: str
) -> None:
    """Numeric spellings that inet_aton accepts are judged as the address they mean."""
    assert parse_address(host) == ipaddress.ip_address(address)


def test_policy_allow_list_admits_chosen_networks_and_names() -> None:
    """Allow-listed networks and names pass; everything else private stays out."""
    policy = TargetPolicy.from_entries(
        False, ["10.20.0.0/16", "billing.internal", "*.corp.internal"]
    )
    loopback = ipaddress.ip_address("127.0.0.1")

    assert policy.refusal("x", ipaddress.ip_address("10.20.1.2")) is None
    assert policy.refusal("x", ipaddress.ip_address("10.21.1.2")) is not None
    assert policy.refusal("billing.internal.", loopback) is None
    assert policy.refusal("a.b.corp.internal", loopback) is None
    assert policy.refusal("corp.internal", loopback) is not None
    assert policy.refusal("billing.internal.evil.example", loopback) is not None


def refusing_session(
    policy: TargetPolicy, attempts: list[Any]
) -> aiohttp.ClientSession:
    """A guarded session whose sockets can never be created: nothing leaves."""

    def refuse(address_info: Any) -> socket.socket:
        attempts.append(address_info)
        raise SocketsRefused("the test allows no socket")

    connector = GuardedConnector(
        policy, resolver=ReservedNameResolver(), socket_factory=refuse
    )
    return aiohttp.ClientSession(connector=connector)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3:8080/internal",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://[fe80::1]/",
        "http://0x7f.1:9/",
        "http://localhost:9/hook",
        "https://localhost:9/hook",
    ],
)
async def test_guard_refuses_before_any_socket_is_made(url: str) -> None:
    """Literal, mapped, numeric and resolved forbidden targets end as blocked_target
    without the connector ever creating a socket."""
    attempts: list[Any] = []
    async with refusing_session(TargetPolicy(), attempts) as session:
        result = await send(session, "POST", url, b"{}", {}, timeout_s=5)

    assert (result.outcome, result.error_kind) == ("error", "blocked_target")
    assert result.error is not None and result.error.startswith("blocked target: ")
    assert attempts == []


async def test_guard_allow_list_lets_a_chosen_internal_host_through(
    receiver: Receiver,
) -> None:
    """With localhost allow-listed, a call to it arrives; 127.0.0.1 stays refused."""
    path = f"/guard-allowed-{uuid.uuid4().hex[:8]}"
    port = receiver.base_url.rsplit(":", 1)[1]
    policy = TargetPolicy.from_entries(False, ["localhost"])
    async with create_session(4, 5, policy) as session:
        allowed = await send(
            session, "GET", f"http://localhost:{port}{path}", None, {}, 5
        )
        refused = await send(session, "GET", receiver.base_url + path, None, {}, 5)

    assert allowed.ok, allowed
    assert refused.error_kind == "blocked_target"
    assert len(receiver.calls_to(path)) == 1


# End to end: a consumer with the guard on, allow-listing only "localhost".


@pytest.fixture(scope="module")
async def guarded_database(postgres_url: str) -> str:
    return await create_database(postgres_url)


@pytest.fixture(scope="module")
def guarded_stacks(
    guarded_database: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, Stack]]:
    """A guarded gateway and consumer, plus a second gateway on the same database
    that still allows private targets: jobs it stores stand for jobs accepted
    before an operator switched the guard on, which the consumer must refuse."""
    workdir = tmp_path_factory.mktemp("guarded-stack")
    topic = f"loopitis-guarded-{uuid.uuid4().hex[:8]}"
    env = stack_env(
        guarded_database,
        kafka_bootstrap,
        topic,
        LOOPITIS_ALLOW_PRIVATE_TARGETS="false",
        LOOPITIS_ALLOWED_TARGETS="localhost",
    )
    guarded = Stack(env, workdir, free_port())
    guarded.env["LOOPITIS_PUBLIC_URL"] = guarded.base_url
    lax_env = {**guarded.env, "LOOPITIS_ALLOW_PRIVATE_TARGETS": "true"}
    lax = Stack(lax_env, workdir / "lax", free_port())
    lax.logdir.mkdir()
    try:
        guarded.start_gateway()
        guarded.start_consumer()
        lax.start_gateway()
        guarded.wait_for_partitions(6)
        yield guarded, lax
    finally:
        lax.stop()
        guarded.stop()


@pytest.fixture
async def guarded_api(
    guarded_stacks: tuple[Stack, Stack],
) -> AsyncIterator[httpx.AsyncClient]:
    stack = guarded_stacks[0]
    async with httpx.AsyncClient(
        base_url=stack.base_url, auth=stack.auth, timeout=10
    ) as client:
        yield client


@pytest.fixture
async def lax_api(
    guarded_stacks: tuple[Stack, Stack],
) -> AsyncIterator[httpx.AsyncClient]:
    stack = guarded_stacks[1]
    async with httpx.AsyncClient(
        base_url=stack.base_url, auth=stack.auth, timeout=10
    ) as client:
        yield client


def localhost_url(receiver: Receiver, path: str, **query: object) -> str:
    return receiver.url(path, **query).replace("127.0.0.1", "localhost", 1)


@pytest.mark.parametrize("host", FORBIDDEN_URL_HOSTS)
async def test_create_refuses_a_target_plainly_inside_a_forbidden_range(
    guarded_api: httpx.AsyncClient, host: str
) -> None:
    """A return_url or alert URL whose host is a forbidden address is a 400."""
    url = f"http://{host}:8080/hook"
    for field in ("return_url", "notify_status_not_ok"):
        fields = {"interval": "1h", "delay": "1d", "return_url": NEVER_CALLED_URL}
        fields[field] = url
        response = await guarded_api.post("/set/notifier", json=fields)

        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["field"] == field
        assert "does not call" in error["message"]
        assert "LOOPITIS_ALLOWED_TARGETS" in error["details"]


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", "ws", "javascript"])
async def test_create_refuses_schemes_other_than_http(
    guarded_api: httpx.AsyncClient, scheme: str
) -> None:
    """Only http and https URLs are accepted as targets."""
    response = await guarded_api.post(
        "/set/notifier",
        json={
            "interval": "1h",
            "delay": "1d",
            "return_url": f"{scheme}://never-called.invalid/hook",
        },
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["field"] == "return_url"


async def test_guarded_consumer_calls_an_allow_listed_host(
    guarded_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """localhost is allow-listed, so its callbacks arrive and succeed."""
    path = f"/guarded-ok-{uuid.uuid4().hex[:8]}"
    job_id = await create_job(
        guarded_api,
        interval="1h",
        occurrences=1,
        return_url=localhost_url(receiver, path),
    )

    await receiver.wait_for_calls(path, 1, timeout_s=15)
    body = await wait_for_job(
        guarded_api, job_id, lambda b: b["job"]["status"] == "FINISHED", 10, "finish"
    )
    assert body["executions"][0]["outcome"] == "succeeded"


async def test_guarded_consumer_does_not_follow_a_redirect_to_a_private_address(
    guarded_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A 302 towards 127.0.0.1 is recorded as a failure and never followed."""
    tag = uuid.uuid4().hex[:8]
    landing = f"/guarded-landing-{tag}"
    path = f"/guarded-hop-{tag}"
    url = localhost_url(receiver, path, redirect=302, to=receiver.url(landing))
    job_id = await create_job(guarded_api, interval="1h", occurrences=1, return_url=url)

    body = await wait_for_job(
        guarded_api, job_id, lambda b: b["job"]["status"] == "FINISHED", 15, "finish"
    )
    execution = body["executions"][0]
    assert (execution["outcome"], execution["httpStatus"]) == ("failed", 302)
    assert receiver.calls_to(landing) == []


async def test_guarded_consumer_refuses_stored_private_targets_at_connect_time(
    lax_api: httpx.AsyncClient, guarded_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Jobs stored with private targets end as error/blocked_target, their alert
    (to an allowed host) says so, and the receiver never hears from them."""
    tag = uuid.uuid4().hex[:8]
    port = receiver.base_url.rsplit(":", 1)[1]
    alerts = f"/guarded-alerts-{tag}"
    targets = {
        "literal": receiver.url(f"/guarded-literal-{tag}"),
        "mapped": f"http://[::ffff:127.0.0.1]:{port}/guarded-mapped-{tag}",
        # Not an address to aiohttp, so it goes through the resolver, which
        # reads it as 127.0.0.1 without asking DNS.
        "resolved": f"http://0x7f.1:{port}/guarded-resolved-{tag}",
    }
    job_ids = {
        label: await create_job(
            lax_api,
            interval="1h",
            occurrences=1,
            return_url=url,
            notify_status_not_ok=localhost_url(receiver, alerts),
        )
        for label, url in targets.items()
    }

    alert_calls = await receiver.wait_for_calls(alerts, len(targets), timeout_s=20)
    for label, job_id in job_ids.items():
        body = await wait_for_job(
            guarded_api, job_id, lambda b: b["job"]["status"] == "FINISHED", 10, label
        )
        execution = body["executions"][0]
        assert (execution["outcome"], execution["errorKind"]) == (
            "error",
            "blocked_target",
        ), label
        assert execution["alert"]["outcome"] == "sent", label
    assert all(
        call.json()["error"].startswith("blocked target") for call in alert_calls
    )
    assert not [c for c in receiver.calls if c.path.startswith("/guarded-literal")]
    assert not [c for c in receiver.calls if c.path.startswith("/guarded-mapped")]
    assert not [c for c in receiver.calls if c.path.startswith("/guarded-resolved")]


async def test_guarded_consumer_refuses_a_private_alert_target(
    lax_api: httpx.AsyncClient, guarded_api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Alerts pass the same guard: one to 127.0.0.1 is recorded as failed."""
    tag = uuid.uuid4().hex[:8]
    alert_path = f"/guarded-alert-private-{tag}"
    job_id = await create_job(
        lax_api,
        interval="1h",
        occurrences=1,
        return_url=localhost_url(receiver, f"/guarded-fails-{tag}", status=500),
        notify_status_not_ok=receiver.url(alert_path),
    )

    body = await wait_for_job(
        guarded_api,
        job_id,
        lambda b: b["executions"] and b["executions"][0]["alert"]["outcome"],
        15,
        "an alert outcome",
    )
    alert = body["executions"][0]["alert"]
    assert alert["outcome"] == "failed"
    assert alert["error"].startswith("blocked target")
    assert receiver.calls_to(alert_path) == []
    assert (await get_job(guarded_api, job_id))["job"]["failed"] == 1
