"""Reading and writing jobs: what the gateway needs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from loopitis.model.job import JobStatus
from loopitis.model.job_request import JobRequest
from loopitis.storage.pool import acquire

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewJob:
    id: str
    internal_id: int
    accepted_at: datetime


async def insert_job(
    pool: asyncpg.Pool, request: JobRequest, partition: int, job_id: uuid.UUID
) -> NewJob:
    """Store an accepted job as PENDING; its first slot is due after the delay."""
    async with acquire(pool) as connection:
        row = await connection.fetchrow(
            """
            INSERT INTO jobs (id, name, return_url, payload, callback_type,
                notify_url, interval_ms, delay_ms, occurrences, accepted_at,
                partition, status, next_due_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8::bigint, $9, clock_timestamp(), $10,
                'PENDING', clock_timestamp() + $8::bigint * interval '1 millisecond')
            RETURNING internal_id, accepted_at
            """,
            str(job_id),
            request.name,
            request.return_url,
            request.payload,
            request.callback_type,
            request.notify_url,
            request.interval_ms,
            request.delay_ms,
            request.occurrences,
            partition,
        )
    assert row is not None
    return NewJob(str(job_id), row["internal_id"], row["accepted_at"])


async def fetch_job(pool: asyncpg.Pool, job_id: str) -> Row | None:
    async with acquire(pool) as connection:
        row = await connection.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
    return dict(row) if row else None


async def list_jobs(
    pool: asyncpg.Pool, status: JobStatus | None, before: int | None, limit: int
) -> list[Row]:
    """Jobs newest first; ``before`` is the internal_id cursor of the last page."""
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            """
            SELECT * FROM jobs
            WHERE ($1::text IS NULL OR status = $1)
              AND ($2::bigint IS NULL OR internal_id < $2)
            ORDER BY internal_id DESC
            LIMIT $3
            """,
            status,
            before,
            limit,
        )
    return [dict(row) for row in rows]


async def cancel_job(pool: asyncpg.Pool, job_id: str) -> tuple[str, str] | None:
    """Cancel a live job. Returns (status before, status after), None if unknown."""
    async with acquire(pool) as connection, connection.transaction():
        before = await connection.fetchval(
            "SELECT status FROM jobs WHERE id = $1 FOR UPDATE", job_id
        )
        if before is None:
            return None
        if before not in (JobStatus.PENDING, JobStatus.ON_GOING):
            return before, before
        await connection.execute(
            """
            UPDATE jobs SET status = 'CANCELED', next_due_at = NULL,
                ended_at = clock_timestamp()
            WHERE id = $1
            """,
            job_id,
        )
    return before, JobStatus.CANCELED


async def list_executions(
    pool: asyncpg.Pool, job_id: str, before: int | None, limit: int
) -> list[Row]:
    """Executions of one job, newest first, each with its comments."""
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            """
            SELECT e.*, COALESCE(
                (SELECT jsonb_agg(jsonb_build_object(
                        'at', c.created_at, 'comment', c.comment) ORDER BY c.id)
                 FROM execution_comments c WHERE c.execution_id = e.id),
                '[]'::jsonb) AS comments
            FROM executions e
            WHERE e.job_id = $1 AND ($2::bigint IS NULL OR e.number < $2)
            ORDER BY e.number DESC
            LIMIT $3
            """,
            job_id,
            before,
            limit,
        )
    return [dict(row) for row in rows]


async def add_comment(
    pool: asyncpg.Pool, execution_id: str, comment: str
) -> Row | None:
    """Append a comment; None when the execution does not exist."""
    async with acquire(pool) as connection:
        row = await connection.fetchrow(
            """
            INSERT INTO execution_comments (execution_id, created_at, comment)
            SELECT id, clock_timestamp(), $2 FROM executions WHERE id = $1
            RETURNING id, created_at, comment
            """,
            execution_id,
            comment,
        )
    return dict(row) if row else None


async def live_consumers(pool: asyncpg.Pool, stale_after_s: float) -> list[Row]:
    """Consumers whose heartbeat is recent enough to count as members."""
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            """
            SELECT consumer_id, host, pid, started_at, heartbeat_at, partitions,
                jobs_scheduled, calls_in_flight
            FROM consumers
            WHERE heartbeat_at > clock_timestamp() - $1 * interval '1 second'
            ORDER BY consumer_id
            """,
            stale_after_s,
        )
    return [dict(row) for row in rows]


async def ping(pool: asyncpg.Pool) -> None:
    async with acquire(pool) as connection:
        await connection.fetchval("SELECT 1")
