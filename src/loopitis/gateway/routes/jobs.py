"""Jobs: create, read, list, cancel."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from loopitis.errors import NotFound
from loopitis.gateway.body import read_json
from loopitis.gateway.deps import (
    PoolDep,
    PublisherDep,
    SettingsDep,
    check_credentials,
    credentials_match,
    require_credentials,
)
from loopitis.gateway.openapi import JOB_REQUEST_SCHEMA
from loopitis.gateway.problems import LinkForbidden
from loopitis.gateway.render import execution_json, job_json
from loopitis.messaging.events import JobEvent, partition_for
from loopitis.model.job import JobStatus
from loopitis.model.job_request import Limits, parse_job_request
from loopitis.model.links import LinkAction, token_is_valid
from loopitis.settings import Settings
from loopitis.storage import jobs as store

log = logging.getLogger(__name__)
router = APIRouter()

Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
# Cursors are bigint columns; a larger number names nothing and is a 400.
Before = Annotated[
    int | None, Query(ge=1, le=2**63 - 1, description="cursor from the last page")
]


@router.post(
    "/set/notifier",
    status_code=201,
    dependencies=[Depends(require_credentials)],
    openapi_extra={"requestBody": JOB_REQUEST_SCHEMA},
    summary="Create a job",
)
async def create_job(
    request: Request, settings: SettingsDep, pool: PoolDep, publisher: PublisherDep
) -> JSONResponse:
    body = await read_json(request, settings.request_max_bytes)
    limits = Limits(
        settings.min_interval_ms, settings.payload_max_bytes, settings.target_policy
    )
    job_request = parse_job_request(body, limits)
    job_id = uuid.uuid4()
    partition = partition_for(str(job_id), settings.kafka_partitions)
    job = await store.insert_job(pool, job_request, partition, job_id)
    await publisher.publish(JobEvent("created", job.id), partition)
    log.info(
        "job %s accepted: interval %d ms, delay %d ms, occurrences %s, partition %d",
        job.id,
        job_request.interval_ms,
        job_request.delay_ms,
        job_request.occurrences,
        partition,
    )
    location = f"/requests/get_list?requestId={job.id}"
    content = {"id": job.id, "internal_id": job.internal_id}
    return JSONResponse(content, status_code=201, headers={"Location": location})


@router.get("/requests/get_list", summary="One job with its executions, or a job list")
async def get_list(
    request: Request,
    settings: SettingsDep,
    pool: PoolDep,
    requestId: str | None = None,
    token: str | None = None,
    status: JobStatus | None = None,
    limit: Limit = 50,
    before: Before = None,
) -> dict[str, object]:
    if requestId is None:
        _authorize(request, settings, None, "show", token)
        return await _job_page(pool, status, before, limit)
    job_id = _job_id(requestId)
    _authorize(request, settings, job_id, "show", token)
    return await _one_job(pool, job_id, before, limit)


@router.get(
    "/requests/cancel_task", summary="Cancel a job", operation_id="cancel_task_get"
)
@router.post(
    "/requests/cancel_task", summary="Cancel a job", operation_id="cancel_task_post"
)
async def cancel_task(
    request: Request,
    settings: SettingsDep,
    pool: PoolDep,
    publisher: PublisherDep,
    requestId: str,
    token: str | None = None,
) -> dict[str, object]:
    job_id = _job_id(requestId)
    _authorize(request, settings, job_id, "cancel", token)
    change = await store.cancel_job(pool, job_id)
    if change is None:
        raise NotFound("requestId", requestId, "job")
    before, after = change
    if before == after:
        return {"id": job_id, "status": after, "message": _unchanged(after)}
    partition = partition_for(job_id, settings.kafka_partitions)
    await publisher.publish(JobEvent("canceled", job_id), partition)
    log.info("job %s canceled (was %s)", job_id, before)
    return {"id": job_id, "status": after, "message": "job canceled"}


async def _one_job(
    pool: PoolDep, job_id: str, before: int | None, limit: int
) -> dict[str, object]:
    row = await store.fetch_job(pool, job_id)
    if row is None:
        raise NotFound("requestId", job_id, "job")
    executions = await store.list_executions(pool, job_id, before, limit)
    next_before = executions[-1]["number"] if len(executions) == limit else None
    return {
        "job": job_json(row),
        "executions": [execution_json(e) for e in executions],
        "next_before": next_before,
    }


async def _job_page(
    pool: PoolDep, status: JobStatus | None, before: int | None, limit: int
) -> dict[str, object]:
    rows = await store.list_jobs(pool, status, before, limit)
    next_before = rows[-1]["internal_id"] if len(rows) == limit else None
    return {"jobs": [job_json(row) for row in rows], "next_before": next_before}


def _authorize(
    request: Request,
    settings: Settings,
    job_id: str | None,
    action: LinkAction,
    token: str | None,
) -> None:
    """Signed-link token for one job, or the API credentials."""
    if token is not None and job_id is not None:
        if not token_is_valid(settings.effective_link_secret, action, job_id, token):
            raise LinkForbidden
        return
    check_credentials(request, settings)
    assert credentials_match(request, settings)


def _job_id(raw: str) -> str:
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError as exc:
        # A malformed id names no job, so it answers like any unknown id.
        raise NotFound("requestId", raw[:80], "job") from exc


def _unchanged(status: str) -> str:
    if status == JobStatus.CANCELED:
        return "job was already canceled"
    return f"job is already {status}; nothing to cancel"
