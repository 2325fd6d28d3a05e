"""Item 6: APScheduler 3.x firing the same callbacks through the same client.

Each step runs one child process with an ``AsyncIOScheduler`` holding N jobs
with a 1 s interval, their first runs spread evenly over one interval (as
the Loopitis steps do). Every run POSTs the same body to the same sink through
one aiohttp session and notes its due time and the time it started. The job
store is APScheduler's memory store, or its SQLAlchemy store on the same
PostgreSQL (the persistent choice). APScheduler's defaults are kept: a run
more than 1 s late is skipped, and late runs of a job are coalesced into one;
both are counted here as dropped (slots due minus runs that happened).

    python -m benchmarks.peer child --store memory --rate 500 --seconds 6 --sink URL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

from benchmarks.firing import ENVELOPE_LIKE_BODY, LATENESS_GOAL_MS
from benchmarks.stack import BenchStack

INTERVAL_MS = 1000
SETTLE_MS = 1000


@dataclass(frozen=True, slots=True)
class PeerStep:
    store: str
    rate: int
    runs_per_s: float
    dropped: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def on_time(self) -> bool:
        return self.p99_ms <= LATENESS_GOAL_MS and self.dropped == 0


@dataclass
class PeerReport:
    store: str
    steps: list[PeerStep]

    @property
    def best(self) -> PeerStep | None:
        on_time = [s for s in self.steps if s.on_time]
        return max(on_time, key=lambda s: s.rate) if on_time else None


async def peer(
    stack: BenchStack, store: str, first_rate: int, cap: int, seconds: float
) -> PeerReport:
    """Double the rate until a step fails, then bisect twice."""
    report = PeerReport(store, [])
    low, high, rate = 0, 0, first_rate
    while len(report.steps) < 6:
        outcome = await _step(stack, store, rate, seconds)
        report.steps.append(outcome)
        print(
            f"  apscheduler {store} {rate}/s: {outcome.runs_per_s:.0f}/s, "
            f"p99 {outcome.p99_ms:.1f} ms, dropped {outcome.dropped}",
            flush=True,
        )
        if outcome.on_time:
            low = rate
        else:
            high = rate
        if not high:
            if rate >= cap:
                break
            rate = min(rate * 2, cap)
            continue
        rate = round((low + high) / 2 / 10) * 10
        if rate in (low, high) or high - low <= max(20, high // 8):
            break
    return report


async def _step(stack: BenchStack, store: str, rate: int, seconds: float) -> PeerStep:
    sa_url = "postgresql+psycopg://" + stack.url.split("://", 1)[1]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.peer",
        "child",
        "--store",
        store,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--sink",
        stack.sink_url,
        "--db",
        sa_url,
        stdout=subprocess.PIPE,
    )
    out, _ = await process.communicate()
    figures = json.loads(out.decode().strip().splitlines()[-1])
    return PeerStep(store=store, rate=rate, **figures)


# The child process ----------------------------------------------------------


class _Run:
    """What the scheduled function needs; module level so a job store can
    refer to the function by name."""

    session: aiohttp.ClientSession
    url = ""
    base_ms = 0.0
    step_ms = 0.0
    records: list[tuple[float, float]] = []  # noqa: RUF012 - one run per process


async def fire(index: int) -> None:
    """One scheduled run: note how late it is, then POST to the sink."""
    sent_ms = time.time() * 1000
    first_ms = _Run.base_ms + index * _Run.step_ms
    due_ms = first_ms + math.floor((sent_ms - first_ms) / INTERVAL_MS) * INTERVAL_MS
    _Run.records.append((due_ms, sent_ms))
    headers = {"Content-Type": "application/json"}
    async with _Run.session.post(
        _Run.url, data=ENVELOPE_LIKE_BODY.encode(), headers=headers
    ) as response:
        await response.read()


async def _child(args: argparse.Namespace) -> dict[str, Any]:
    from apscheduler.jobstores.memory import MemoryJobStore
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    _Run.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
    _Run.url = args.sink
    jobstore: Any = (
        MemoryJobStore()
        if args.store == "memory"
        else SQLAlchemyJobStore(url=args.db, tablename=f"apscheduler_{args.rate}")
    )
    scheduler = AsyncIOScheduler(jobstores={"default": jobstore}, timezone=UTC)
    lead_ms = 2000 + args.rate * (1 if args.store == "memory" else 10)
    _Run.base_ms = time.time() * 1000 + lead_ms
    _Run.step_ms = INTERVAL_MS / args.rate
    scheduler.start()
    scheduler.remove_all_jobs()
    for index in range(args.rate):
        start = datetime.fromtimestamp(
            (_Run.base_ms + index * _Run.step_ms) / 1000, tz=UTC
        )
        scheduler.add_job(
            fire,
            IntervalTrigger(seconds=INTERVAL_MS / 1000, start_date=start),
            args=[index],
            id=f"job-{index}",
        )
    since_ms = _Run.base_ms + SETTLE_MS
    until_ms = since_ms + args.seconds * 1000
    await asyncio.sleep((until_ms - time.time() * 1000) / 1000 + 1.0)
    scheduler.shutdown(wait=False)
    await _Run.session.close()
    return _figures(since_ms, until_ms, args.rate)


def _figures(since_ms: float, until_ms: float, rate: int) -> dict[str, Any]:
    late = sorted(
        sent - due for due, sent in _Run.records if since_ms <= due < until_ms
    )
    expected = round(rate * (until_ms - since_ms) / INTERVAL_MS)
    if not late:
        late = [math.inf]
    return {
        "runs_per_s": len(late) / ((until_ms - since_ms) / 1000),
        "dropped": max(0, expected - len(late)),
        "p50_ms": statistics.median(late),
        "p99_ms": late[min(len(late) - 1, int(0.99 * len(late)))],
        "max_ms": late[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["child"])
    parser.add_argument("--store", choices=["memory", "sqlalchemy"], required=True)
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--db", default="")
    args = parser.parse_args()
    from loopitis.eventloop import run

    print(json.dumps(run(_child(args))), flush=True)


if __name__ == "__main__":
    main()
