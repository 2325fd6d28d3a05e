"""Helpers of the failure tests: who owns what, and waiting for deliveries."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from loopitis.messaging.events import partition_for
from support.accounting import Delivery, account, deliveries_of
from support.jobs import create_job
from support.receiver import Receiver
from support.stack import Stack, stack_env

PARTITIONS = 6


@asynccontextmanager
async def running_stack(
    database_url: str, bootstrap: str, logdir: Path, **overrides: str
) -> AsyncIterator[tuple[Stack, httpx.AsyncClient]]:
    """A gateway of its own topic and group, no consumers yet, and a client."""
    topic = f"loopitis-failure-{uuid.uuid4().hex[:8]}"
    stack = Stack(stack_env(database_url, bootstrap, topic, **overrides), logdir)
    stack.env["LOOPITIS_PUBLIC_URL"] = stack.base_url
    try:
        await asyncio.to_thread(stack.start_gateway)
        async with httpx.AsyncClient(
            base_url=stack.base_url, auth=stack.auth, timeout=15
        ) as api:
            yield stack, api
    finally:
        await asyncio.to_thread(stack.stop)


async def start_consumers(stack: Stack, count: int) -> list[subprocess.Popen[bytes]]:
    """Start ``count`` more consumers, one after the other, each owning partitions.

    One at a time also moves the group past generation 0: the embedded broker
    numbers its first generation 0, and aiokafka sends no LeaveGroup from a
    generation 0 member, so a SIGTERM there would wait for the session timeout.
    """
    started = []
    for _ in range(count):
        started.append(stack.start_consumer())
        await wait_for_owners(stack, len(live_consumers(stack)))
    return started


def live_consumers(stack: Stack) -> list[subprocess.Popen[bytes]]:
    return [process for process in stack.consumers if process.poll() is None]


async def owners(api_base: str) -> dict[int, list[int]]:
    """Partitions of each live consumer by pid, as /health reports them."""
    async with httpx.AsyncClient(base_url=api_base, timeout=5) as client:
        health = (await client.get("/health")).json()
    return {c["pid"]: c["partitions"] for c in health["consumers"]}


async def wait_for_owners(
    stack: Stack, consumers: int, timeout_s: float = 60.0
) -> dict[int, list[int]]:
    """Until ``consumers`` live consumers own all partitions between them."""
    deadline = time.monotonic() + timeout_s
    seen: dict[int, list[int]] = {}
    while time.monotonic() < deadline:
        seen = await owners(stack.base_url)
        alive = {p.pid for p in live_consumers(stack)}
        owning = {pid: parts for pid, parts in seen.items() if pid in alive and parts}
        owned = sorted(part for parts in owning.values() for part in parts)
        if len(owning) == consumers and owned == list(range(PARTITIONS)):
            return owning
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"expected {consumers} consumers owning all partitions: {seen}"
    )


async def create_jobs(
    api: httpx.AsyncClient, count: int, **fields: object
) -> list[str]:
    return [await create_job(api, **fields) for _ in range(count)]


def jobs_on(job_ids: Iterable[str], partitions: Iterable[int]) -> set[str]:
    wanted = set(partitions)
    return {j for j in job_ids if partition_for(j, PARTITIONS) in wanted}


async def wait_for_call_in_flight(
    receiver: Receiver, job_ids: set[str], timeout_s: float = 20.0
) -> Delivery:
    """A callback of ``job_ids`` that the receiver is still answering."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for call in reversed(receiver.calls):
            delivery = Delivery.from_call(call)
            open_for_s = time.time() - call.arrived_at
            if (
                delivery is not None
                and delivery.job_id in job_ids
                and call.finished_at is None
                and 0.2 < open_for_s < 0.8
            ):
                return delivery
        await asyncio.sleep(0.05)
    raise AssertionError(f"no callback of {len(job_ids)} jobs in flight")


async def first_delivery_after(
    receiver: Receiver, job_ids: set[str], since: float, timeout_s: float
) -> Delivery:
    """The first callback of ``job_ids`` that arrived after ``since`` (epoch s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        later = [
            d for d in deliveries_of(receiver.calls, job_ids) if d.arrived_at > since
        ]
        if later:
            return min(later, key=lambda d: d.arrived_at)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no callback of the moved jobs within {timeout_s} s")


async def cancel_all(api: httpx.AsyncClient, job_ids: Iterable[str]) -> None:
    for job_id in job_ids:
        response = await api.post("/requests/cancel_task", params={"requestId": job_id})
        assert response.status_code == 200, response.text


async def wait_until_settled(
    api: httpx.AsyncClient, job_ids: Iterable[str], timeout_s: float = 30.0
) -> None:
    """Until no execution of ``job_ids`` is still running."""
    deadline = time.monotonic() + timeout_s
    for job_id in job_ids:
        while True:
            response = await api.get(
                "/requests/get_list", params={"requestId": job_id, "limit": 20}
            )
            running = [
                e for e in response.json()["executions"] if e["outcome"] == "running"
            ]
            if not running:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still has running: {running}")
            await asyncio.sleep(0.2)


async def terminate(process: subprocess.Popen[bytes], signum: int) -> float:
    """Send ``signum`` to a consumer; returns the moment (epoch s) it was sent."""
    sent_at = time.time()
    process.send_signal(signum)
    if signum == signal.SIGKILL:
        await asyncio.to_thread(process.wait, 10)
    return sent_at


async def settle_and_account(
    api: httpx.AsyncClient, receiver: Receiver, job_ids: list[str]
) -> None:
    """Cancel the jobs, wait until nothing runs, then check every slot."""
    await cancel_all(api, job_ids)
    await wait_until_settled(api, job_ids)
    report = await account(api, receiver.calls, job_ids)
    print(f"\n{report.table()}")
    report.assert_clean()
