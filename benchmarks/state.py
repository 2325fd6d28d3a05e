"""Item 4: one million active jobs with intervals of an hour or more.

The jobs are inserted by one statement, already ``ON_GOING`` (as after a
previous owner), their next slots spread over the coming hour, partitions
assigned round robin. Then one consumer starts and takes over every
partition; the figures are its takeover time (assignment to "jobs loaded",
from its log), its resident memory once it fires the jobs that fall due, and
the size of the jobs table with its indexes per job.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from benchmarks.stack import PARTITIONS, BenchStack

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class State:
    jobs: int
    insert_s: float
    start_to_owned_s: float
    takeover_ms: float
    jobs_in_window: int
    rss_mb: float
    peak_rss_mb: float
    bytes_per_job: float


async def state(stack: BenchStack, jobs: int, run_s: float) -> State:
    started = time.monotonic()
    await stack.fetch(
        """
        INSERT INTO jobs (id, return_url, callback_type, interval_ms, delay_ms,
            accepted_at, partition, status, next_due_at, next_number)
        SELECT gen_random_uuid(), $1, 'POST', $2 + (n % 4) * $2, 0, at,
            n % $4, 'ON_GOING',
            at + ($2 + (n % 4) * $2) * interval '1 millisecond', 2
        FROM (SELECT n, now() + (n::float8 / $3) * interval '1 hour'
                  - interval '1 hour' AS at
              FROM generate_series(1, $3) AS n) spread
        """,
        stack.sink_url,
        HOUR_MS,
        jobs,
        PARTITIONS,
    )
    await stack.fetch("ANALYZE jobs")
    insert_s = time.monotonic() - started
    size = await stack.fetch("SELECT pg_total_relation_size('jobs') AS n")

    group = f"bench-{uuid.uuid4().hex[:8]}"
    spawned = time.monotonic()
    consumer = stack.start_consumer(group)
    try:
        await stack.wait_owned([consumer], timeout_s=120)
        log_path = stack.workdir / f"consumer-{group}.log"
        await _loaded(log_path)
        owned_s = time.monotonic() - spawned
        await asyncio.sleep(run_s)
        rss, peak = _memory_mb(consumer.pid)
        window = await stack.fetch(
            "SELECT jobs_scheduled FROM consumers WHERE pid = $1", consumer.pid
        )
    finally:
        await stack.stop_processes([consumer])
    log = await asyncio.to_thread(log_path.read_text, errors="replace")
    takeover_ms = sum(float(ms) for ms in re.findall(r"loaded in (\d+) ms", log))
    await stack.fetch("TRUNCATE executions CASCADE")
    await stack.fetch("DELETE FROM jobs")
    return State(
        jobs=jobs,
        insert_s=insert_s,
        start_to_owned_s=owned_s,
        takeover_ms=takeover_ms,
        jobs_in_window=int(window[0]["jobs_scheduled"]) if window else -1,
        rss_mb=rss,
        peak_rss_mb=peak,
        bytes_per_job=int(size[0]["n"]) / jobs,
    )


async def _loaded(log_path: Path, timeout_s: float = 120) -> None:
    """Wait for the consumer's log to say it loaded every partition it owns."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(log_path.read_text, errors="replace")
        if "loaded in" in text:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the consumer did not report its partitions loaded")


def _memory_mb(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.MULTILINE))
    return int(fields["VmRSS"]) / 1024, int(fields["VmHWM"]) / 1024
