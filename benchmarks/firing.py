"""Firing benchmark: one consumer process, a target rate of callbacks per second.

For each target rate it inserts jobs whose intervals add up to that rate,
lets one consumer fire them for a while, and reads from Postgres what
happened: executions per second, and lateness (time the call started minus
the slot's due time) percentiles. Everything runs on embedded servers.

    python -m benchmarks.firing --rates 200,500,1000 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from loopitis.local.broker import LocalBroker
from loopitis.local.ports import free_port
from loopitis.local.postgres import LocalPostgres
from loopitis.messaging.events import partition_for
from loopitis.storage.migrate import alembic_config

PARTITIONS = 24
INTERVAL_MS = 1000


async def _insert_jobs(url: str, count: int, sink_url: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        ids = [str(uuid.uuid4()) for _ in range(count)]
        await connection.execute(
            """
            INSERT INTO jobs (id, return_url, callback_type, interval_ms, delay_ms,
                accepted_at, partition, status, next_due_at)
            SELECT id, $2, 'POST', $3, 0, at, p, 'PENDING', at
            FROM (
                SELECT id, p, now() + interval '3 seconds'
                    + (n - 1) * ($3::float8 / $5) * interval '1 millisecond' AS at
                FROM unnest($1::uuid[], $4::int[]) WITH ORDINALITY AS t(id, p, n)
            ) spread
            """,
            ids,
            sink_url,
            INTERVAL_MS,
            [partition_for(job_id, PARTITIONS) for job_id in ids],
            count,
        )
    finally:
        await connection.close()


async def _measure(url: str, since_s: float, until_s: float) -> dict[str, float]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            """
            SELECT count(*) FILTER (WHERE outcome = 'succeeded') AS ok,
                count(*) FILTER (WHERE outcome = 'missed') AS missed,
                count(*) FILTER (WHERE outcome NOT IN ('succeeded', 'missed'))
                    AS other,
                percentile_cont(0.5) WITHIN GROUP (ORDER BY lateness) AS p50,
                percentile_cont(0.99) WITHIN GROUP (ORDER BY lateness) AS p99,
                max(lateness) AS max
            FROM (SELECT outcome, extract(epoch FROM started_at - due_at) * 1000
                      AS lateness
                  FROM executions
                  WHERE due_at >= to_timestamp($1) AND due_at < to_timestamp($2)) e
            """,
            since_s,
            until_s,
        )
        await connection.execute("UPDATE jobs SET status = 'CANCELED'")
        await connection.execute("DELETE FROM executions")
    finally:
        await connection.close()
    assert row is not None
    return {key: float(value or 0) for key, value in row.items()}


def _consumer_env(url: str, bootstrap: str) -> dict[str, str]:
    return {
        **os.environ,
        "LOOPITIS_ENV": "development",
        "LOOPITIS_DATABASE_URL": url,
        "LOOPITIS_KAFKA_BOOTSTRAP": bootstrap,
        "LOOPITIS_USERNAME": "bench",
        "LOOPITIS_PASSWORD": "bench",
        "LOOPITIS_PUBLIC_URL": "http://127.0.0.1:8080",
        "LOOPITIS_KAFKA_PARTITIONS": str(PARTITIONS),
        "LOOPITIS_CONSUMER_CONCURRENCY": "256",
        "LOOPITIS_LOG_LEVEL": "WARNING",
    }


async def _run(rates: list[int], seconds: float, workdir: Path) -> None:
    postgres = LocalPostgres(workdir / "pg", free_port())
    broker = LocalBroker(free_port())
    postgres.start()
    broker.start()
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "benchmarks.sink", str(sink_port)])
    consumer = None
    try:
        postgres.ensure_database("bench")
        url = postgres.database_url("bench")
        from alembic import command

        sa_url = "postgresql+asyncpg://" + url.split("://", 1)[1]
        await asyncio.to_thread(command.upgrade, alembic_config(sa_url), "head")
        consumer = subprocess.Popen(
            [sys.executable, "-m", "loopitis", "consumer"],
            env=_consumer_env(url, broker.bootstrap),
        )
        await asyncio.sleep(8)  # group join on the local broker takes ~5 s
        print("sink: aiohttp (asyncio) in its own process")
        print(
            f"{'target/s':>9} {'achieved/s':>11} {'missed':>7} {'other':>6} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        )
        for rate in rates:
            await _insert_jobs(
                url, rate * INTERVAL_MS // 1000, f"http://127.0.0.1:{sink_port}/cb"
            )
            start = time.time() + 5  # skip the first slots: jobs are adopted then
            await asyncio.sleep(5 + seconds + 3)
            figures = await _measure(url, start, start + seconds)
            print(
                f"{rate:>9} {figures['ok'] / seconds:>11.0f} {figures['missed']:>7.0f} "
                f"{figures['other']:>6.0f} {figures['p50']:>8.1f} "
                f"{figures['p99']:>8.1f} {figures['max']:>8.1f}"
            )
    finally:
        if consumer is not None:
            consumer.terminate()
            consumer.wait(timeout=30)
        sink.terminate()
        sink.wait()
        broker.stop()
        postgres.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="200,500,1000,2000")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    rates = [int(rate) for rate in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="loopitis-bench-") as workdir:
        asyncio.run(_run(rates, args.seconds, Path(workdir)))


if __name__ == "__main__":
    main()
