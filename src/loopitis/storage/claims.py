"""What a consumer writes: slot claims, outcomes, and the jobs it loads.

Claims are the fence of DESIGN.md: a slot is inserted (unique job id and
number) before its callback leaves, so two owners can never both send it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from loopitis.storage.pool import acquire

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    """One slot to claim: fired (outcome running) or recorded as missed."""

    job_id: str
    number: int
    due_ms: int
    execution_id: str
    outcome: str
    missed_reason: str | None
    next_due_ms: int | None


@dataclass(frozen=True, slots=True)
class MissedRange:
    """Slots ``first..last`` of one job that no consumer fired in time."""

    job_id: str
    first: int
    last: int
    anchor_ms: int
    interval_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """The end of one fired execution."""

    execution_id: str
    outcome: str
    http_status: int | None
    error_kind: str | None
    error: str | None
    started_ms: float | None
    duration_ms: float | None
    reported_status: str | None


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    execution_id: str
    outcome: str
    http_status: int | None
    error: str | None


def moment(epoch_ms: float | None) -> datetime | None:
    if epoch_ms is None:
        return None
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


_CLAIM = """
WITH c AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[], $4::uuid[],
        $5::text[], $6::text[], $7::timestamptz[])
        AS c(job_id, number, due_at, id, outcome, missed_reason, next_due_at)
), advanced AS (
    UPDATE jobs j SET
        next_number = c.number + 1,
        next_due_at = c.next_due_at,
        done = j.done + (c.outcome = 'missed')::int,
        missed = j.missed + (c.outcome = 'missed')::int,
        status = CASE WHEN j.occurrences IS NOT NULL
                       AND j.done + (c.outcome = 'missed')::int >= j.occurrences
                      THEN 'FINISHED' ELSE 'ON_GOING' END,
        ended_at = CASE WHEN j.occurrences IS NOT NULL
                         AND j.done + (c.outcome = 'missed')::int >= j.occurrences
                        THEN clock_timestamp() END
    FROM c
    WHERE j.id = c.job_id AND j.status IN ('PENDING', 'ON_GOING')
      AND j.next_number <= c.number
    RETURNING c.*
)
INSERT INTO executions (id, job_id, number, due_at, claimed_at, finished_at,
    outcome, missed_reason, owner)
SELECT id, job_id, number, due_at, clock_timestamp(),
    CASE WHEN outcome = 'missed' THEN clock_timestamp() END,
    outcome, missed_reason, $8
FROM advanced
ON CONFLICT (job_id, number) DO NOTHING
RETURNING id::text
"""

_MISSED_RANGES = """
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[],
        $5::bigint[], $6::text[])
        AS r(job_id, first, last, anchor_ms, interval_ms, reason)
), inserted AS (
    INSERT INTO executions (id, job_id, number, due_at, claimed_at, finished_at,
        outcome, missed_reason, owner)
    SELECT gen_random_uuid(), r.job_id, n,
        to_timestamp((r.anchor_ms + (n - 1) * r.interval_ms) / 1000.0),
        clock_timestamp(), clock_timestamp(), 'missed', r.reason, $7
    FROM r
    JOIN jobs j ON j.id = r.job_id AND j.status IN ('PENDING', 'ON_GOING')
        AND j.next_number <= r.first
    CROSS JOIN LATERAL generate_series(r.first, r.last) AS n
    ON CONFLICT (job_id, number) DO NOTHING
    RETURNING job_id
), counted AS (
    SELECT job_id, count(*) AS n FROM inserted GROUP BY job_id
)
UPDATE jobs j SET done = j.done + counted.n, missed = j.missed + counted.n,
    next_number = r.last + 1
FROM counted JOIN r ON r.job_id = counted.job_id
WHERE j.id = counted.job_id
"""


async def claim_slots(
    pool: asyncpg.Pool,
    claims: Sequence[Claim],
    ranges: Sequence[MissedRange],
    owner: str,
) -> set[str]:
    """Claim slots in one transaction; returns the execution ids that were won."""
    async with acquire(pool) as connection, connection.transaction():
        if ranges:
            await connection.execute(
                _MISSED_RANGES,
                [r.job_id for r in ranges],
                [r.first for r in ranges],
                [r.last for r in ranges],
                [r.anchor_ms for r in ranges],
                [r.interval_ms for r in ranges],
                [r.reason for r in ranges],
                owner,
            )
        if not claims:
            return set()
        rows = await connection.fetch(
            _CLAIM,
            [c.job_id for c in claims],
            [c.number for c in claims],
            [moment(c.due_ms) for c in claims],
            [c.execution_id for c in claims],
            [c.outcome for c in claims],
            [c.missed_reason for c in claims],
            [moment(c.next_due_ms) for c in claims],
            owner,
        )
    return {row["id"] for row in rows}


_OUTCOMES = """
WITH r AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[],
        $6::timestamptz[], $7::float8[], $8::text[])
        AS r(id, outcome, http_status, error_kind, error, started_at, duration_ms,
             reported_status)
), updated AS (
    UPDATE executions e SET outcome = r.outcome, http_status = r.http_status,
        error_kind = r.error_kind, error = r.error, started_at = r.started_at,
        duration_ms = r.duration_ms, reported_status = r.reported_status,
        finished_at = clock_timestamp()
    FROM r
    WHERE e.id = r.id AND e.outcome = 'running'
    RETURNING e.job_id, e.outcome
), counted AS (
    SELECT job_id, count(*) AS done,
        count(*) FILTER (WHERE outcome = 'succeeded') AS succeeded,
        count(*) FILTER (WHERE outcome IN ('failed', 'timed_out', 'error')) AS failed
    FROM updated GROUP BY job_id
)
UPDATE jobs j SET done = j.done + c.done, succeeded = j.succeeded + c.succeeded,
    failed = j.failed + c.failed,
    status = CASE WHEN j.status = 'ON_GOING' AND j.occurrences IS NOT NULL
                   AND j.done + c.done >= j.occurrences
                  THEN 'FINISHED' ELSE j.status END,
    ended_at = CASE WHEN j.status = 'ON_GOING' AND j.occurrences IS NOT NULL
                     AND j.done + c.done >= j.occurrences
                    THEN clock_timestamp() ELSE j.ended_at END
FROM counted c
WHERE j.id = c.job_id
"""

_ALERTS = """
UPDATE executions e SET alert_outcome = r.outcome, alert_http_status = r.http_status,
    alert_error = r.error
FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[])
    AS r(id, outcome, http_status, error)
WHERE e.id = r.id
"""


async def record_outcomes(
    pool: asyncpg.Pool, outcomes: Sequence[Outcome], alerts: Sequence[AlertOutcome]
) -> None:
    """Write a batch of outcomes and alert results, and the job counters."""
    async with acquire(pool) as connection, connection.transaction():
        if outcomes:
            await connection.execute(
                _OUTCOMES,
                [o.execution_id for o in outcomes],
                [o.outcome for o in outcomes],
                [o.http_status for o in outcomes],
                [o.error_kind for o in outcomes],
                [o.error for o in outcomes],
                [moment(o.started_ms) for o in outcomes],
                [o.duration_ms for o in outcomes],
                [o.reported_status for o in outcomes],
            )
        if alerts:
            await connection.execute(
                _ALERTS,
                [a.execution_id for a in alerts],
                [a.outcome for a in alerts],
                [a.http_status for a in alerts],
                [a.error for a in alerts],
            )


_JOB_COLUMNS = """j.id::text AS id, j.partition, j.name, j.return_url, j.payload,
    j.callback_type, j.notify_url, j.interval_ms, j.delay_ms, j.occurrences,
    j.accepted_at, j.status, j.next_number"""


async def load_due_jobs(
    pool: asyncpg.Pool,
    partitions: Sequence[int],
    from_ms: int | None,
    until_ms: int,
) -> list[Row]:
    """Live jobs of ``partitions`` due before ``until_ms`` (and from ``from_ms``),
    plus every PENDING one: those may have missed their Kafka event."""
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            f"""
            SELECT {_JOB_COLUMNS} FROM jobs j
            WHERE j.partition = ANY($1::int[])
              AND j.status IN ('PENDING', 'ON_GOING')
              AND ((j.next_due_at < $3
                    AND ($2::timestamptz IS NULL OR j.next_due_at >= $2))
                   OR j.status = 'PENDING')
            """,  # noqa: S608 - only a constant column list is interpolated
            list(partitions),
            moment(from_ms),
            moment(until_ms),
        )
    return [dict(row) for row in rows]


async def load_job(pool: asyncpg.Pool, job_id: str) -> Row | None:
    async with acquire(pool) as connection:
        row = await connection.fetchrow(
            f"SELECT {_JOB_COLUMNS} FROM jobs j WHERE j.id = $1 "  # noqa: S608
            "AND j.status IN ('PENDING', 'ON_GOING')",
            job_id,
        )
    return dict(row) if row else None


async def activate_jobs(pool: asyncpg.Pool, job_ids: Sequence[str]) -> None:
    """PENDING means no consumer owns the job yet; an owner now does."""
    async with acquire(pool) as connection:
        await connection.execute(
            "UPDATE jobs SET status = 'ON_GOING' "
            "WHERE id = ANY($1::uuid[]) AND status = 'PENDING'",
            list(job_ids),
        )


async def take_over_running(
    pool: asyncpg.Pool, partitions: Sequence[int], owner: str, max_attempts: int
) -> list[Row]:
    """Executions left ``running`` by an owner that died, now re-owned by us.

    Each comes back with its new attempt number, or with ``give_up`` set when
    it was already re-sent as often as allowed or its job is no longer live.
    """
    async with acquire(pool) as connection:
        rows = await connection.fetch(
            """
            UPDATE executions e SET owner = $2, attempt = e.attempt + 1,
                claimed_at = clock_timestamp()
            FROM jobs j
            WHERE j.id = e.job_id AND j.partition = ANY($1::int[])
              AND e.outcome = 'running'
            RETURNING e.id::text AS id, e.job_id::text AS job_id, e.number,
                e.due_at, e.attempt, j.status,
                (e.attempt > $3 OR j.status NOT IN ('PENDING', 'ON_GOING'))
                    AS give_up
            """,
            list(partitions),
            owner,
            max_attempts,
        )
    return [dict(row) for row in rows]


async def heartbeat(
    pool: asyncpg.Pool,
    consumer_id: str,
    host: str,
    pid: int,
    partitions: Sequence[int],
    jobs_scheduled: int,
    calls_in_flight: int,
) -> None:
    async with acquire(pool) as connection:
        await connection.execute(
            """
            INSERT INTO consumers (consumer_id, host, pid, started_at, heartbeat_at,
                partitions, jobs_scheduled, calls_in_flight)
            VALUES ($1, $2, $3, clock_timestamp(), clock_timestamp(), $4, $5, $6)
            ON CONFLICT (consumer_id) DO UPDATE SET heartbeat_at = clock_timestamp(),
                partitions = $4, jobs_scheduled = $5, calls_in_flight = $6
            """,
            consumer_id,
            host,
            pid,
            sorted(partitions),
            jobs_scheduled,
            calls_in_flight,
        )


async def leave(pool: asyncpg.Pool, consumer_id: str) -> None:
    async with acquire(pool) as connection:
        await connection.execute(
            "DELETE FROM consumers WHERE consumer_id = $1", consumer_id
        )
