"""Soak: many jobs through random consumer kills, stops and additions.

Starts an embedded PostgreSQL and broker, one gateway and a few consumers,
posts ``--jobs`` jobs to a receiver in this process, then for ``--minutes``
SIGKILLs, SIGTERMs and adds consumers at random (with ``--outages`` it also
restarts the broker and PostgreSQL). At the end it cancels every job, compares
what the receiver got with what get_list records, and prints the accounting
and the measured hand-over times.

    python -m benchmarks.soak --jobs 1000 --minutes 5
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loopitis.local.broker import LocalBroker
from loopitis.local.ports import free_port
from loopitis.local.postgres import LocalPostgres

# The accounting checker is shared with the failure tests; they are not a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from support.accounting import Accounting, account
from support.database import create_database
from support.failures import (
    cancel_all,
    first_delivery_after,
    jobs_on,
    live_consumers,
    running_stack,
    terminate,
    wait_for_owners,
    wait_until_settled,
)
from support.receiver import Receiver
from support.stack import Stack

MAX_CONSUMERS = 4


@dataclass
class Handovers:
    """Seconds from a kill or stop to the first callback of a moved job."""

    after_sigkill: list[float] = field(default_factory=list)
    after_sigterm: list[float] = field(default_factory=list)

    def table(self) -> str:
        lines = []
        for name, values in (
            ("after SIGKILL", self.after_sigkill),
            ("after SIGTERM", self.after_sigterm),
        ):
            if not values:
                lines.append(f"failover {name}: not measured")
                continue
            lines.append(
                f"failover {name}: n={len(values)} min={min(values):.1f} s "
                f"median={statistics.median(values):.1f} s max={max(values):.1f} s"
            )
        return "\n".join(lines)


async def _post_jobs(
    api: httpx.AsyncClient, count: int, interval_s: int, url: str
) -> list[str]:
    async def one(_: int) -> str:
        response = await api.post(
            "/set/notifier", json={"interval": f"{interval_s}s", "return_url": url}
        )
        response.raise_for_status()
        job_id: str = response.json()["id"]
        return job_id

    job_ids: list[str] = []
    for start in range(0, count, 50):
        batch = range(start, min(start + 50, count))
        job_ids += await asyncio.gather(*(one(n) for n in batch))
    return job_ids


async def _stop_one(
    stack: Stack,
    receiver: Receiver,
    job_ids: list[str],
    signum: int,
    handovers: Handovers,
) -> None:
    """Kill or stop a random consumer and time the hand-over of its jobs."""
    # Only a settled group says truly who owns what; mid-rebalance health
    # would credit the victim with partitions another consumer already has.
    try:
        shares = await wait_for_owners(stack, len(live_consumers(stack)), 90)
    except AssertionError as exc:
        print(f"  skipped a stop: ownership did not settle ({exc})", flush=True)
        return
    victim = random.choice([p for p in live_consumers(stack) if p.pid in shares])
    moved = jobs_on(job_ids, shares[victim.pid])
    name = "SIGKILL" if signum == signal.SIGKILL else "SIGTERM"
    print(f"  {name} consumer pid {victim.pid} ({len(moved)} jobs)", flush=True)
    sent_at = await terminate(victim, signum)
    # A stopping consumer still sends the slots it claimed before the signal;
    # only callbacks after it exited come from the new owner.
    await asyncio.to_thread(victim.wait, 90)
    if not moved:
        return
    exited_at = time.time()
    first = await first_delivery_after(receiver, moved, exited_at, timeout_s=90)
    took_s = first.arrived_at - sent_at
    print(f"    first callback of a moved job after {took_s:.1f} s", flush=True)
    if signum == signal.SIGKILL:
        handovers.after_sigkill.append(took_s)
    else:
        handovers.after_sigterm.append(took_s)


async def _restart_server(server: LocalBroker | LocalPostgres, down_s: float) -> None:
    print(f"  {type(server).__name__} down for {down_s:.0f} s", flush=True)
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(down_s)
    await asyncio.to_thread(server.start)


async def _chaos(
    stack: Stack,
    receiver: Receiver,
    job_ids: list[str],
    servers: tuple[LocalBroker, LocalPostgres] | None,
    until: float,
) -> Handovers:
    handovers = Handovers()
    while time.monotonic() < until:
        await asyncio.sleep(random.uniform(5, 15))
        alive = len(live_consumers(stack))
        actions = ["sigkill", "sigterm"] if alive > 1 else []
        if alive < MAX_CONSUMERS:
            actions.append("add")
        if servers is not None:
            actions.append("outage")
        action = random.choice(actions)
        if action == "sigkill":
            await _stop_one(stack, receiver, job_ids, signal.SIGKILL, handovers)
        elif action == "sigterm":
            await _stop_one(stack, receiver, job_ids, signal.SIGTERM, handovers)
        elif action == "add":
            print("  adding a consumer", flush=True)
            stack.start_consumer()
        else:
            assert servers is not None
            await _restart_server(random.choice(servers), random.uniform(5, 20))
    return handovers


async def soak(args: argparse.Namespace) -> tuple[Accounting, Handovers]:
    workdir = Path(tempfile.mkdtemp(prefix="loopitis-soak-"))
    postgres = LocalPostgres(workdir / "postgres", free_port())
    broker = LocalBroker(free_port(), log_path=workdir / "broker.log")
    postgres.start()
    broker.start()
    print(f"servers up; logs in {workdir}", flush=True)
    try:
        database_url = await create_database(postgres.url)
        async with (
            Receiver() as receiver,
            running_stack(database_url, broker.bootstrap, workdir) as (stack, api),
        ):
            for _ in range(args.consumers):
                stack.start_consumer()
                await wait_for_owners(stack, len(live_consumers(stack)))
            url = receiver.url("/soak")
            job_ids = await _post_jobs(api, args.jobs, args.interval_s, url)
            print(f"{len(job_ids)} jobs posted; chaos for {args.minutes} min")
            servers = (broker, postgres) if args.outages else None
            until = time.monotonic() + args.minutes * 60
            handovers = await _chaos(stack, receiver, job_ids, servers, until)
            if not live_consumers(stack):
                stack.start_consumer()
            print("cancelling every job and settling", flush=True)
            await cancel_all(api, job_ids)
            await wait_until_settled(api, job_ids, timeout_s=120)
            report = await account(api, receiver.calls, job_ids)
    finally:
        broker.stop()
        postgres.stop()
    return report, handovers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--interval-s", type=int, default=10)
    parser.add_argument("--consumers", type=int, default=3)
    parser.add_argument("--outages", action="store_true", help="restart servers too")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    random.seed(args.seed)
    report, handovers = asyncio.run(soak(args))
    print()
    print(report.table())
    print(handovers.table())
    for problem in report.problems[:20]:
        print(f"  problem: {problem}")
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
