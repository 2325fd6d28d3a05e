"""What every benchmark runs against: embedded servers, a sink, consumers.

One ``BenchStack`` holds an embedded PostgreSQL with the schema migrated, an
embedded Kafka-protocol broker and a callback sink; it starts consumer and
gateway processes on them, inserts jobs straight into Postgres and reads the
executions back. Child processes run in their own process group and are
stopped by their pid.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import asyncpg

from benchmarks.sinks import Sink, start_sink
from loopitis.local.broker import LocalBroker
from loopitis.local.ports import end_process_group, free_port
from loopitis.local.postgres import LocalPostgres
from loopitis.messaging.events import partition_for
from loopitis.storage.migrate import alembic_config

PARTITIONS = 24
USERNAME = "bench"
PASSWORD = "bench-password"  # noqa: S105 - a throwaway local credential
SIGNING_SECRET = (
    "whsec_" + base64.b64encode(b"benchmark-signing-secret-32byte").decode()
)
# How long before its first slot a job is stored, so its owner adopts it in time.
LEAD_S = 3.0


def cpu_seconds(root_pids: list[int]) -> float:
    """CPU time used so far by these processes and all their descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry.name)] = int(fields[1])
            times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            continue  # the process ended meanwhile
    wanted = set(root_pids)
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in wanted}
        grew = not children <= wanted
        wanted |= children
    return sum(times.get(pid, 0.0) for pid in wanted)


@dataclass(frozen=True, slots=True)
class Lateness:
    """What the executions of one measured period show."""

    calls: int
    calls_per_s: float
    not_ok: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu: dict[str, float] = field(default_factory=dict)


class BenchStack:
    """Embedded PostgreSQL, broker and sink, plus the processes started on them."""

    def __init__(self, workdir: Path, *, prefer_nginx: bool = True) -> None:
        self.workdir = workdir
        self._postgres = LocalPostgres(workdir / "pg", free_port())
        self._broker = LocalBroker(free_port())
        self._prefer_nginx = prefer_nginx
        self.sink: Sink | None = None
        self.url = ""
        self._children: list[subprocess.Popen[bytes]] = []
        self._logs: list[IO[bytes]] = []

    def cpu_pids(self) -> dict[str, list[int]]:
        """Root processes of what shares the machine with the consumers."""
        assert self.sink is not None
        return {"postgres": [self._postgres.pid or 0], "sink": [self.sink.pid]}

    @property
    def sink_url(self) -> str:
        assert self.sink is not None
        return self.sink.url

    async def start(self) -> None:
        await asyncio.to_thread(self._postgres.start)
        await asyncio.to_thread(self._broker.start)
        await asyncio.to_thread(self._postgres.ensure_database, "bench")
        self.url = self._postgres.database_url("bench")
        await self._tune_postgres()
        from alembic import command

        sa_url = "postgresql+asyncpg://" + self.url.split("://", 1)[1]
        await asyncio.to_thread(command.upgrade, alembic_config(sa_url), "head")
        self.sink = start_sink(self.workdir, prefer_nginx=self._prefer_nginx)

    async def stop(self) -> None:
        for child in self._children:
            await asyncio.to_thread(end_process_group, child, signal.SIGTERM, 15.0)
        self._children.clear()
        for handle in self._logs:
            handle.close()
        if self.sink is not None:
            self.sink.stop()
        await asyncio.to_thread(self._broker.stop)
        await asyncio.to_thread(self._postgres.stop)

    async def _tune_postgres(self) -> None:
        # The embedded server flushes every commit; a benchmark machine has one
        # disk shared with everything else, so the figures would measure fsync.
        connection = await asyncpg.connect(self.url)
        try:
            await connection.execute("ALTER SYSTEM SET synchronous_commit = off")
            await connection.execute("SELECT pg_reload_conf()")
        finally:
            await connection.close()

    # Processes -----------------------------------------------------------

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "LOOPITIS_ENV": "development",
            "LOOPITIS_DATABASE_URL": self.url,
            "LOOPITIS_KAFKA_BOOTSTRAP": self._broker.bootstrap,
            "LOOPITIS_USERNAME": USERNAME,
            "LOOPITIS_PASSWORD": PASSWORD,
            "LOOPITIS_PUBLIC_URL": "http://127.0.0.1:8080",
            "LOOPITIS_KAFKA_PARTITIONS": str(PARTITIONS),
            "LOOPITIS_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "LOOPITIS_CONSUMER_CONCURRENCY": "256",
            # As in production: one JSON line per execution, every call signed.
            "LOOPITIS_LOG_LEVEL": "INFO",
            "LOOPITIS_LOG_FORMAT": "json",
            "LOOPITIS_SIGNING_SECRET": SIGNING_SECRET,
            **extra,
        }

    def spawn(
        self, args: list[str], env: dict[str, str], log_name: str
    ) -> subprocess.Popen[bytes]:
        """A child process in its own group, its output in ``log_name``."""
        handle = (self.workdir / log_name).open("ab")
        self._logs.append(handle)
        child = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._children.append(child)
        return child

    def start_consumer(self, group: str, **extra: str) -> subprocess.Popen[bytes]:
        env = self.env(LOOPITIS_KAFKA_GROUP=group, **extra)
        return self.spawn(["-m", "loopitis", "consumer"], env, f"consumer-{group}.log")

    async def stop_processes(self, children: list[subprocess.Popen[bytes]]) -> None:
        """SIGTERM each child (all at once), SIGKILL what is left after 15 s."""
        await asyncio.gather(
            *(
                asyncio.to_thread(end_process_group, child, signal.SIGTERM, 15.0)
                for child in children
            )
        )
        for child in children:
            with contextlib.suppress(ValueError):
                self._children.remove(child)

    async def wait_owned(
        self, children: list[subprocess.Popen[bytes]], timeout_s: float = 60.0
    ) -> float:
        """Wait until these consumers together own every partition; seconds taken."""
        started = time.monotonic()
        pids = [child.pid for child in children]
        while time.monotonic() - started < timeout_s:
            rows = await self.fetch(
                "SELECT pid, partitions FROM consumers WHERE pid = ANY($1::int[])",
                pids,
            )
            owned = [p for row in rows for p in row["partitions"]]
            if len(rows) == len(pids) and sorted(owned) == list(range(PARTITIONS)):
                return time.monotonic() - started
            await asyncio.sleep(0.2)
        raise RuntimeError(f"consumers {pids} did not own all partitions in time")

    # Data ----------------------------------------------------------------

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(self.url)
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    async def insert_jobs(
        self, count: int, interval_ms: int, lead_s: float = LEAD_S
    ) -> float:
        """``count`` jobs to the sink, their first slots spread evenly over one
        interval from ``lead_s`` on, so the load is smooth; returns that start."""
        ids = [str(uuid.uuid4()) for _ in range(count)]
        start_s = time.time() + lead_s
        await self.fetch(
            """
            INSERT INTO jobs (id, return_url, callback_type, interval_ms, delay_ms,
                accepted_at, partition, status, next_due_at)
            SELECT id, $2, 'POST', $3, 0, at, p, 'PENDING', at
            FROM (
                SELECT id, p, to_timestamp($6)
                    + (n - 1) * ($3::float8 / $5) * interval '1 millisecond' AS at
                FROM unnest($1::uuid[], $4::int[]) WITH ORDINALITY AS t(id, p, n)
            ) spread
            """,
            ids,
            self.sink_url,
            interval_ms,
            [partition_for(job_id, PARTITIONS) for job_id in ids],
            count,
            start_s,
        )
        return start_s

    async def lateness(self, since_s: float, until_s: float) -> Lateness:
        """Calls started in [since, until): how many, and how late they were."""
        rows = await self.fetch(
            """
            SELECT count(*) AS calls,
                count(*) FILTER (WHERE outcome <> 'succeeded') AS not_ok,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY late) AS p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY late) AS p99,
                max(late) AS max
            FROM (SELECT outcome, extract(epoch FROM started_at - due_at) * 1000
                      AS late
                  FROM executions
                  WHERE started_at >= to_timestamp($1)
                    AND started_at < to_timestamp($2)) e
            """,
            since_s,
            until_s,
        )
        missed = await self.fetch(
            "SELECT count(*) AS n FROM executions WHERE outcome <> 'succeeded' "
            "AND due_at >= to_timestamp($1) AND due_at < to_timestamp($2)",
            since_s,
            until_s,
        )
        row = rows[0]
        calls = int(row["calls"])
        return Lateness(
            calls=calls,
            calls_per_s=calls / (until_s - since_s),
            not_ok=int(missed[0]["n"]),
            p50_ms=float(row["p50"] or 0),
            p99_ms=float(row["p99"] or 0),
            max_ms=float(row["max"] or 0),
        )

    async def clear_jobs(self) -> None:
        """Cancel every job and forget the executions; owners drop them at once."""
        for _ in range(10):
            try:
                await self.fetch(
                    "UPDATE jobs SET status = 'CANCELED' WHERE status <> 'CANCELED'"
                )
                break
            except asyncpg.DeadlockDetectedError:
                # The consumers update the same rows meanwhile; Postgres
                # picked this statement to give way. Try again.
                await asyncio.sleep(0.1)
        await self.fetch("TRUNCATE executions CASCADE")
