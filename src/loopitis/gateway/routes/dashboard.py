"""The operator dashboard under /ui: pages rendered on the server, kept live by SSE.

Each live part of a page is one HTML fragment. The page embeds it once; an
event stream re-renders the same fragment every second or two and sends it
only when it changed, so the browser swaps it in without a reload.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from loopitis.errors import NotFound, StorageUnavailable
from loopitis.gateway import views
from loopitis.gateway.deps import PoolDep, require_credentials
from loopitis.gateway.routes.reports import build_report, report_range
from loopitis.model.job import JobStatus
from loopitis.storage import jobs as job_store
from loopitis.storage import reports

router = APIRouter(
    prefix="/ui", dependencies=[Depends(require_credentials)], include_in_schema=False
)
PAGE_SIZE = 25
TIMELINE_SIZE = 100
JOB_POLL_S = 1.0
LIST_POLL_S = 2.0
KEEPALIVE_S = 15.0
SYSTEM_WINDOW_S = 300.0
RATE_WINDOW_S = 60.0
CONSUMER_STALE_S = 15.0

Search = Annotated[str | None, Query(max_length=100)]
Status = Annotated[JobStatus | None, Query()]
Before = Annotated[int | None, Query(ge=1)]


@router.get("", response_class=HTMLResponse)
async def job_list(
    pool: PoolDep, q: Search = None, status: Status = None, before: Before = None
) -> HTMLResponse:
    query = _list_query(q, status, before)
    fragment = await _jobs_fragment(pool, q, status, before)
    return views.page(
        "jobs.html",
        title="Jobs",
        q=q or "",
        status=status or "",
        statuses=list(JobStatus),
        events=f"/ui/events/jobs?{query}",
        fragment=fragment,
    )


@router.get("/new", response_class=HTMLResponse)
async def new_job() -> HTMLResponse:
    return views.page("new.html", title="New job")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(pool: PoolDep, job_id: str) -> HTMLResponse:
    job_id = _job_id(job_id)
    fragment = await _job_fragment(pool, job_id)
    job = await job_store.fetch_job(pool, job_id)
    assert job is not None
    return views.page(
        "job.html",
        title=job["name"] or f"Job {job_id[:8]}",
        job=views.job_view(job),
        events=f"/ui/events/jobs/{job_id}",
        fragment=fragment,
    )


@router.get("/system", response_class=HTMLResponse)
async def system_page(request: Request) -> HTMLResponse:
    fragment = await _system_fragment(request)
    return views.page(
        "system.html", title="System", events="/ui/events/system", fragment=fragment
    )


@router.get("/reports", response_class=HTMLResponse)
async def reports_page(
    pool: PoolDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    requestId: Annotated[str | None, Query()] = None,
) -> HTMLResponse:
    scope = await report_range(pool, start, end, requestId or None)
    report = await build_report(pool, scope)
    query = {"from": report["from"], "to": report["to"]}
    if scope.job_id:
        query["requestId"] = scope.job_id
    return views.page(
        "reports.html",
        title="Reports",
        report=report,
        start=_local_input(scope.start),
        end=_local_input(scope.end),
        job_id=scope.job_id or "",
        csv_link="/reports.csv?" + urlencode(query),
        json_link="/reports?" + urlencode(query),
    )


@router.get("/events/jobs")
async def job_list_events(
    request: Request,
    pool: PoolDep,
    q: Search = None,
    status: Status = None,
    before: Before = None,
) -> StreamingResponse:
    return _stream(
        request, lambda: _jobs_fragment(pool, q, status, before), LIST_POLL_S
    )


@router.get("/events/jobs/{job_id}")
async def job_events(request: Request, pool: PoolDep, job_id: str) -> StreamingResponse:
    job_id = _job_id(job_id)
    return _stream(request, lambda: _job_fragment(pool, job_id), JOB_POLL_S)


@router.get("/events/system")
async def system_events(request: Request) -> StreamingResponse:
    return _stream(request, lambda: _system_fragment(request), LIST_POLL_S)


async def _jobs_fragment(
    pool: asyncpg.Pool, q: str | None, status: JobStatus | None, before: int | None
) -> str:
    rows = await reports.search_jobs(pool, q, status, before, PAGE_SIZE)
    last = await reports.last_outcomes(pool, [str(row["id"]) for row in rows])
    next_before = rows[-1]["internal_id"] if len(rows) == PAGE_SIZE else None
    return views.render(
        "jobs_table.html",
        jobs=[views.job_view(row, last.get(str(row["id"]))) for row in rows],
        older=_list_query(q, status, next_before) if next_before else None,
        newest=_list_query(q, status, None) if before else None,
        filtered=bool(q or status),
    )


async def _job_fragment(pool: asyncpg.Pool, job_id: str) -> str:
    job = await job_store.fetch_job(pool, job_id)
    if job is None:
        raise NotFound("requestId", job_id, "job")
    executions = await job_store.list_executions(pool, job_id, None, TIMELINE_SIZE)
    return views.render(
        "job_live.html",
        job=views.job_view(job),
        executions=[views.execution_view(row) for row in executions],
        shown=len(executions),
    )


async def _system_fragment(request: Request) -> str:
    state = request.app.state
    pool: asyncpg.Pool = state.pool
    kafka = await state.publisher.probe(2.0)
    try:
        consumers = await job_store.live_consumers(pool, CONSUMER_STALE_S)
        jobs_by_partition = await reports.live_jobs_by_partition(pool)
        recent = await reports.recent_activity(pool, SYSTEM_WINDOW_S)
        last_minute = await reports.recent_activity(pool, RATE_WINDOW_S)
        statuses = await reports.jobs_by_status(pool)
    except StorageUnavailable as exc:
        return views.render("system_live.html", postgres_error=str(exc), kafka=kafka)
    return views.render(
        "system_live.html",
        postgres_error=None,
        kafka=kafka,
        consumers=[views.consumer_view(c, jobs_by_partition) for c in consumers],
        recent=recent,
        per_second=last_minute["finished"] / RATE_WINDOW_S,
        failure_rate=_ratio(last_minute["failures"], last_minute["finished"]),
        statuses={s.value: statuses.get(s.value, 0) for s in JobStatus},
        window_min=int(SYSTEM_WINDOW_S // 60),
    )


def _stream(
    request: Request, render: Callable[[], Awaitable[str]], every_s: float
) -> StreamingResponse:
    """Send ``render()`` as an ``update`` event whenever its output changes."""

    async def events() -> AsyncIterator[str]:
        last_digest = ""
        quiet_s = 0.0
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            try:
                html = await render()
            except StorageUnavailable:
                yield "event: down\ndata: the database is unavailable\n\n"
                last_digest = ""
            else:
                digest = hashlib.sha256(html.encode()).hexdigest()
                if digest != last_digest:
                    last_digest, quiet_s = digest, 0.0
                    yield _event("update", html)
                elif quiet_s >= KEEPALIVE_S:
                    quiet_s = 0.0
                    yield ": keep-alive\n\n"
            await asyncio.sleep(every_s)
            quiet_s += every_s

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _event(name: str, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines())
    return f"event: {name}\n{lines}\n"


def _list_query(q: str | None, status: JobStatus | None, before: int | None) -> str:
    query: dict[str, Any] = {}
    if q:
        query["q"] = q
    if status:
        query["status"] = status.value
    if before:
        query["before"] = before
    return urlencode(query)


def _job_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError as exc:
        raise NotFound("requestId", raw[:80], "job") from exc


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _local_input(moment: datetime) -> str:
    # <input type="datetime-local"> has no zone; the page says times are UTC.
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
