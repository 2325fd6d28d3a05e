"""Aggregates over executions: reports, the system page and /metrics gauges.

Every query here is bounded by an index: executions by due time or finish
time (migration 0002), jobs by status, or one job's executions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from loopitis.storage.pool import acquire

Row = dict[str, Any]
TOP_LIMIT = 10
# The host (and port) of a URL, the "target" a report groups failures by.
_TARGET = r"substring(j.return_url from '^[A-Za-z]+://([^/?#]+)')"
_FAILURES = "('failed', 'timed_out', 'error')"

_RANGE = (
    "e.due_at >= $1 AND e.due_at < $2 AND ($3::uuid IS NULL OR e.job_id = $3::uuid)"
)


def _percentiles(expression: str, name: str) -> str:
    return ", ".join(
        f"percentile_cont({q}) WITHIN GROUP (ORDER BY {expression}) AS {name}_p{p}"
        for q, p in ((0.5, 50), (0.95, 95), (0.99, 99))
    )


_LATENESS = _percentiles(
    "extract(epoch FROM e.started_at - e.due_at) * 1000", "lateness"
)
_DURATION = _percentiles("e.duration_ms", "duration")


@dataclass(frozen=True, slots=True)
class ReportRange:
    """Executions due in [start, end), optionally of one job."""

    start: datetime
    end: datetime
    job_id: str | None = None


async def outcome_summary(pool: asyncpg.Pool, scope: ReportRange) -> Row:
    """Counts by outcome and lateness/duration percentiles over the range."""
    async with acquire(pool) as connection:
        counts = await connection.fetch(
            f"""
            SELECT outcome, count(*) AS n FROM executions e
            WHERE {_RANGE} GROUP BY outcome
            """,
            scope.start,
            scope.end,
            scope.job_id,
        )
        percentiles = await connection.fetchrow(
            f"""
            SELECT {_LATENESS},
                   {_DURATION}
            FROM executions e
            WHERE {_RANGE} AND e.started_at IS NOT NULL
              AND e.outcome NOT IN ('running', 'missed', 'canceled')
            """,
            scope.start,
            scope.end,
            scope.job_id,
        )
    assert percentiles is not None
    return {"counts": {r["outcome"]: r["n"] for r in counts}, **dict(percentiles)}


async def top_failing_jobs(pool: asyncpg.Pool, scope: ReportRange) -> list[Row]:
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            f"""
            SELECT e.job_id AS id, j.name, count(*) AS executions,
                count(*) FILTER (WHERE e.outcome IN {_FAILURES}) AS failures
            FROM executions e JOIN jobs j ON j.id = e.job_id
            WHERE {_RANGE}
            GROUP BY e.job_id, j.name
            HAVING count(*) FILTER (WHERE e.outcome IN {_FAILURES}) > 0
            ORDER BY failures DESC, executions DESC
            LIMIT {TOP_LIMIT}
            """,
            scope.start,
            scope.end,
            scope.job_id,
        )
    return [dict(row) for row in rows]


async def top_failing_targets(pool: asyncpg.Pool, scope: ReportRange) -> list[Row]:
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            f"""
            SELECT {_TARGET} AS target, count(*) AS executions,
                count(*) FILTER (WHERE e.outcome IN {_FAILURES}) AS failures
            FROM executions e JOIN jobs j ON j.id = e.job_id
            WHERE {_RANGE}
            GROUP BY 1
            HAVING count(*) FILTER (WHERE e.outcome IN {_FAILURES}) > 0
            ORDER BY failures DESC, executions DESC
            LIMIT {TOP_LIMIT}
            """,
            scope.start,
            scope.end,
            scope.job_id,
        )
    return [dict(row) for row in rows]


async def per_job(pool: asyncpg.Pool, scope: ReportRange, limit: int) -> list[Row]:
    """One row per job with executions in the range, busiest first (CSV)."""
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            f"""
            SELECT e.job_id AS id, j.name, {_TARGET} AS target,
                count(*) AS executions,
                count(*) FILTER (WHERE e.outcome = 'succeeded') AS succeeded,
                count(*) FILTER (WHERE e.outcome = 'failed') AS failed,
                count(*) FILTER (WHERE e.outcome = 'timed_out') AS timed_out,
                count(*) FILTER (WHERE e.outcome = 'error') AS error,
                count(*) FILTER (WHERE e.outcome = 'missed') AS missed,
                count(*) FILTER (WHERE e.outcome = 'canceled') AS canceled,
                {_LATENESS},
                {_DURATION}
            FROM executions e JOIN jobs j ON j.id = e.job_id
            WHERE {_RANGE}
            GROUP BY e.job_id, j.name, j.return_url
            ORDER BY executions DESC, e.job_id
            LIMIT $4
            """,
            scope.start,
            scope.end,
            scope.job_id,
            limit,
        )
    return [dict(row) for row in rows]


async def recent_activity(pool: asyncpg.Pool, window_s: float) -> Row:
    """What finished in the last ``window_s`` seconds: counts and lateness."""
    async with acquire(pool) as connection:
        row = await connection.fetchrow(
            f"""
            SELECT count(*) AS finished,
                count(*) FILTER (WHERE outcome IN {_FAILURES}) AS failures,
                {_LATENESS}
            FROM executions e
            WHERE e.finished_at > clock_timestamp() - $1 * interval '1 second'
              AND e.outcome NOT IN ('running', 'missed', 'canceled')
            """,
            window_s,
        )
        by_outcome = await connection.fetch(
            """
            SELECT outcome, coalesce(http_status / 100, 0) AS status_class,
                count(*) AS n
            FROM executions
            WHERE finished_at > clock_timestamp() - $1 * interval '1 second'
            GROUP BY 1, 2
            """,
            window_s,
        )
    assert row is not None
    return {**dict(row), "by_outcome": [dict(r) for r in by_outcome]}


async def jobs_by_status(pool: asyncpg.Pool) -> dict[str, int]:
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            "SELECT status, count(*) AS n FROM jobs GROUP BY status"
        )
    return {row["status"]: row["n"] for row in rows}


async def live_jobs_by_partition(pool: asyncpg.Pool) -> dict[int, int]:
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            """
            SELECT partition, count(*) AS n FROM jobs
            WHERE status IN ('PENDING', 'ON_GOING') GROUP BY partition
            """
        )
    return {row["partition"]: row["n"] for row in rows}


async def search_jobs(
    pool: asyncpg.Pool,
    text: str | None,
    status: str | None,
    before: int | None,
    limit: int,
) -> list[Row]:
    """Jobs newest first whose name contains ``text`` or whose id starts with it."""
    pattern = None if not text else "%" + _escape_like(text) + "%"
    prefix = None if not text else _escape_like(text.lower()) + "%"
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            """
            SELECT * FROM jobs
            WHERE ($1::text IS NULL OR name ILIKE $1 OR id::text LIKE $2)
              AND ($3::text IS NULL OR status = $3)
              AND ($4::bigint IS NULL OR internal_id < $4)
            ORDER BY internal_id DESC
            LIMIT $5
            """,
            pattern,
            prefix,
            status,
            before,
            limit,
        )
    return [dict(row) for row in rows]


async def last_outcomes(pool: asyncpg.Pool, job_ids: list[str]) -> dict[str, Row]:
    """The newest execution of each job: what the job list shows as last outcome."""
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            """
            SELECT DISTINCT ON (job_id) job_id, outcome, http_status, finished_at
            FROM executions
            WHERE job_id = ANY($1::uuid[]) AND outcome <> 'running'
            ORDER BY job_id, number DESC
            """,
            job_ids,
        )
    return {str(row["job_id"]): dict(row) for row in rows}


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
