"""Reports: outcomes, success rate and percentiles over a time range, as JSON or CSV."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from loopitis.errors import InvalidField, NotFound
from loopitis.gateway.deps import PoolDep, require_credentials
from loopitis.gateway.render import iso
from loopitis.model.job import FAILURE_OUTCOMES, Outcome
from loopitis.storage import jobs as job_store
from loopitis.storage import reports as store

router = APIRouter(dependencies=[Depends(require_credentials)])
DEFAULT_RANGE = timedelta(hours=24)
CSV_MAX_JOBS = 10_000
CSV_COLUMNS = (
    "job_id",
    "name",
    "target",
    "executions",
    *(outcome.value for outcome in Outcome if outcome != Outcome.RUNNING),
    "success_rate",
    "lateness_p50_ms",
    "lateness_p95_ms",
    "lateness_p99_ms",
    "duration_p50_ms",
    "duration_p95_ms",
    "duration_p99_ms",
)

From = Annotated[
    datetime | None, Query(alias="from", description="start (ISO 8601); 24 h ago")
]
To = Annotated[datetime | None, Query(alias="to", description="end (ISO 8601); now")]
JobId = Annotated[str | None, Query(description="only this job")]


@router.get("/reports", summary="Outcomes, success rate and percentiles for a range")
async def report(
    pool: PoolDep, start: From = None, end: To = None, requestId: JobId = None
) -> dict[str, object]:
    scope = await report_range(pool, start, end, requestId)
    return await build_report(pool, scope)


@router.get(
    "/reports.csv",
    summary="One CSV row per job for a range",
    response_class=Response,
    responses={
        200: {
            "description": "one row per job",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
async def report_csv(
    pool: PoolDep, start: From = None, end: To = None, requestId: JobId = None
) -> Response:
    scope = await report_range(pool, start, end, requestId)
    rows = await store.per_job(pool, scope, CSV_MAX_JOBS)
    name = f"loopitis-report-{scope.start:%Y%m%dT%H%M}-{scope.end:%Y%m%dT%H%M}.csv"
    return Response(
        _csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def report_range(
    pool: asyncpg.Pool,
    start: datetime | None,
    end: datetime | None,
    job_id: str | None,
) -> store.ReportRange:
    """Check the query: a known job, a range that ends after it starts."""
    end = _utc(end) if end else datetime.now(UTC)
    try:
        start = _utc(start) if start else end - DEFAULT_RANGE
    except OverflowError as exc:
        raise InvalidField(
            "to", f"to ({iso(end)}) leaves no room for the default 24 h range"
        ) from exc
    if start >= end:
        raise InvalidField(
            "from", f"from ({iso(start)}) must be before to ({iso(end)})"
        )
    if job_id is None:
        return store.ReportRange(start, end)
    try:
        job_id = str(uuid.UUID(job_id.strip()))
    except ValueError as exc:
        raise NotFound("requestId", job_id[:80], "job") from exc
    if await job_store.fetch_job(pool, job_id) is None:
        raise NotFound("requestId", job_id, "job")
    return store.ReportRange(start, end, job_id)


async def build_report(pool: asyncpg.Pool, scope: store.ReportRange) -> dict[str, Any]:
    summary = await store.outcome_summary(pool, scope)
    counts = {o.value: summary["counts"].get(o.value, 0) for o in Outcome}
    return {
        "from": iso(scope.start),
        "to": iso(scope.end),
        "requestId": scope.job_id,
        "executions": sum(counts.values()),
        "by_outcome": counts,
        "success_rate": success_rate(counts),
        "lateness_ms": _percentile_json(summary, "lateness"),
        "duration_ms": _percentile_json(summary, "duration"),
        "top_failing_jobs": [
            {**row, "id": str(row["id"])}
            for row in await store.top_failing_jobs(pool, scope)
        ],
        "top_failing_targets": await store.top_failing_targets(pool, scope),
    }


def success_rate(counts: dict[str, int]) -> float | None:
    """Succeeded over executions that were sent and have an answer."""
    decided = counts.get(Outcome.SUCCEEDED, 0) + sum(
        counts.get(o, 0) for o in FAILURE_OUTCOMES
    )
    if decided == 0:
        return None
    return round(counts.get(Outcome.SUCCEEDED, 0) / decided, 4)


def _percentile_json(row: dict[str, Any], name: str) -> dict[str, float | None]:
    return {f"p{p}": _round(row[f"{name}_p{p}"]) for p in (50, 95, 99)}


def _cell(text: str) -> str:
    """Client-chosen text that a spreadsheet would run as a formula is quoted."""
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        rate = success_rate(row)
        writer.writerow(
            [
                str(row["id"]),
                _cell(row["name"] or ""),
                _cell(row["target"] or ""),
                row["executions"],
                *(row[o.value] for o in Outcome if o != Outcome.RUNNING),
                "" if rate is None else rate,
                *(
                    _blank(row[f"{name}_p{p}"])
                    for name in ("lateness", "duration")
                    for p in (50, 95, 99)
                ),
            ]
        )
    return buffer.getvalue()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _blank(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _utc(moment: datetime) -> datetime:
    # A time without an offset is read as UTC, the zone of every stored time.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
