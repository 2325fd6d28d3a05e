"""C11: targets that cannot be reached are recorded and alerted, on time."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopitis.local.ports import free_port
from support.database import create_database
from support.jobs import create_job, get_job, wait_for_status
from support.receiver import Receiver, TlsKind, authority_pem, tls_receiver
from support.stack import Stack, started_stack

INTERVAL_MS = 1000
# Slot 1 of a job without delay is due the moment it is accepted, so its
# lateness would also count how fast the consumer hears of the job; a delay
# leaves only what this case is about: whether failing calls keep slots on time.
DELAY_MS = 1000
OCCURRENCES = 3
ON_TIME = timedelta(milliseconds=250)
# A name under the reserved .invalid domain: the consumer's resolver refuses it
# without sending any DNS query.
UNRESOLVABLE_URL = "http://no-such-host.invalid/hook"
TLS_KINDS: tuple[TlsKind, ...] = ("self_signed", "expired", "wrong_name")


@dataclass(frozen=True)
class Target:
    """One unreachable return_url and the error kind it must be recorded with."""

    label: str
    url: str
    error_kind: str


@pytest.fixture
async def tls_receivers() -> AsyncIterator[dict[TlsKind, Receiver]]:
    async with contextlib.AsyncExitStack() as stack:
        yield {
            kind: await stack.enter_async_context(tls_receiver(kind))
            for kind in TLS_KINDS
        }


@pytest.fixture(scope="module")
async def trusting_database(postgres_url: str) -> str:
    return await create_database(postgres_url)


@pytest.fixture(scope="module")
def trusting_stack(
    trusting_database: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A gateway and consumer of their own whose consumer trusts the test authority.

    With the authority trusted, an expired or wrong-name certificate can only
    be refused for its own fault, not for an unknown issuer. The database and
    topic are separate, so the shared consumer never sees these jobs.
    """
    workdir = tmp_path_factory.mktemp("trusting-stack")
    authority = Path(workdir, "authority.pem")
    authority.write_text(authority_pem())
    with started_stack(
        trusting_database, kafka_bootstrap, workdir, SSL_CERT_FILE=str(authority)
    ) as running:
        yield running


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def unreachable_targets(tls: dict[TlsKind, Receiver]) -> list[Target]:
    tag = uuid.uuid4().hex[:8]
    targets = [
        Target("dns", UNRESOLVABLE_URL, "dns"),
        Target("refused", f"http://127.0.0.1:{free_port()}/hook", "refused"),
    ]
    targets += [
        Target(kind, receiver.url(f"/unreachable-{kind}-{tag}"), "tls")
        for kind, receiver in tls.items()
    ]
    return targets


async def test_unreachable_targets_recorded_as_errors_with_alerts(
    api: httpx.AsyncClient,
    receiver: Receiver,
    tls_receivers: dict[TlsKind, Receiver],
    stack: Stack,
) -> None:
    """DNS, TLS and refused targets each end as error of their kind, alerted once."""
    tag = uuid.uuid4().hex[:8]
    targets = unreachable_targets(tls_receivers)
    alert_paths = {t.label: f"/unreachable-alerts-{t.label}-{tag}" for t in targets}
    healthy_path = f"/unreachable-healthy-{tag}"
    job_ids = {
        t.label: await create_job(
            api,
            interval=INTERVAL_MS,
            delay=DELAY_MS,
            occurrences=OCCURRENCES,
            name=f"unreachable {t.label}",
            return_url=t.url,
            notify_status_not_ok=receiver.url(alert_paths[t.label]),
        )
        for t in targets
    }
    healthy_id = await create_job(
        api,
        interval=INTERVAL_MS,
        delay=DELAY_MS,
        occurrences=OCCURRENCES,
        return_url=receiver.url(healthy_path),
    )

    for job_id in [*job_ids.values(), healthy_id]:
        await wait_for_status(api, job_id, "FINISHED", timeout_s=10)
    for path in alert_paths.values():
        await receiver.wait_for_calls(path, OCCURRENCES, timeout_s=5)
    # Room for a duplicate alert or a late alert outcome to show up.
    await asyncio.sleep(0.5)
    bodies = {label: await get_job(api, job_id) for label, job_id in job_ids.items()}

    for target in targets:
        assert_recorded_as_error(bodies[target.label], target)
        assert_alerted_once_each(
            bodies[target.label], receiver.calls_to(alert_paths[target.label]), target
        )
    for tls in tls_receivers.values():
        assert tls.calls == [], "a refused certificate must never carry a request"
    assert_healthy_job_on_time(receiver, healthy_path)
    assert stack.consumers[0].poll() is None
    health = (await api.get("/health")).json()
    assert stack.consumers[0].pid in [c["pid"] for c in health["consumers"]]


def assert_recorded_as_error(body: dict[str, Any], target: Target) -> None:
    job, executions = body["job"], body["executions"]
    context = f"{target.label}: {executions}"
    assert (job["done"], job["failed"], job["succeeded"]) == (3, 3, 0), context
    assert [e["executionNumber"] for e in executions] == [3, 2, 1], context
    accepted_at = parse_iso(job["accepted_at"])
    for execution in executions:
        assert execution["outcome"] == "error", context
        assert execution["errorKind"] == target.error_kind, context
        assert execution["httpStatus"] is None, context
        assert execution["error"], context
        assert execution["alert"]["outcome"] == "sent", context
        assert execution["alert"]["httpStatus"] == 200, context
        scheduled_at = parse_iso(execution["scheduledAt"])
        slot_ms = DELAY_MS + (execution["executionNumber"] - 1) * INTERVAL_MS
        planned = accepted_at + timedelta(milliseconds=slot_ms)
        assert abs(scheduled_at - planned) <= timedelta(milliseconds=1), context
        lateness = parse_iso(execution["startedAt"]) - scheduled_at
        assert timedelta(0) <= lateness <= ON_TIME, context


def assert_alerted_once_each(
    body: dict[str, Any], alerts: list[Any], target: Target
) -> None:
    documents = [alert.json() for alert in alerts]
    context = f"{target.label}: {documents}"
    by_id = {e["executionId"]: e for e in body["executions"]}
    assert sorted(d["executionId"] for d in documents) == sorted(by_id), context
    for document in documents:
        execution = by_id[document["executionId"]]
        assert document["parentRequestId"] == body["job"]["id"], context
        assert document["parentRequestName"] == f"unreachable {target.label}"
        assert document["callback_status_code"] is None, context
        assert document["executionNumber"] == execution["executionNumber"], context
        assert document["scheduledAt"] == execution["scheduledAt"], context
        assert document["error"] == execution["error"], context


def assert_healthy_job_on_time(receiver: Receiver, path: str) -> None:
    calls = receiver.calls_to(path)
    assert [c.json()["executionNumber"] for c in calls] == [1, 2, 3]
    for call in calls:
        scheduled_s = parse_iso(call.json()["scheduledAt"]).timestamp()
        assert 0 <= call.arrived_at - scheduled_s <= ON_TIME.total_seconds()


@pytest.mark.parametrize(
    ("kind", "outcome", "error_words"),
    [
        ("valid", "succeeded", None),
        ("expired", "error", "expired"),
        ("wrong_name", "error", "mismatch"),
        ("self_signed", "error", "self-signed"),
    ],
)
async def test_unreachable_certificate_refused_for_its_own_fault(
    trusting_stack: Stack,
    receiver: Receiver,
    kind: TlsKind,
    outcome: str,
    error_words: str | None,
) -> None:
    """With the issuer trusted, only the valid certificate passes; the rest say why."""
    path = f"/unreachable-trusted-{kind}-{uuid.uuid4().hex[:8]}"
    alert_path = path + "-alerts"
    async with (
        tls_receiver(kind) as target,
        httpx.AsyncClient(
            base_url=trusting_stack.base_url, auth=trusting_stack.auth, timeout=10
        ) as api,
    ):
        job_id = await create_job(
            api,
            interval=INTERVAL_MS,
            occurrences=1,
            return_url=target.url(path),
            notify_status_not_ok=receiver.url(alert_path),
        )
        body = await wait_for_status(api, job_id, "FINISHED", timeout_s=10)
        await asyncio.sleep(0.3)
        body = await get_job(api, job_id)

    execution = body["executions"][0]
    assert execution["outcome"] == outcome, execution
    if error_words is None:
        assert [call.path for call in target.calls] == [path]
        assert receiver.calls_to(alert_path) == []
        return
    assert execution["errorKind"] == "tls", execution
    assert error_words in execution["error"].lower(), execution
    assert target.calls == []
    assert len(receiver.calls_to(alert_path)) == 1
