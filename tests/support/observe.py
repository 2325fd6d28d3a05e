"""Reading what the API records: its timestamps, and waiting for a job's state."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from loopitis.model.job import FAILURE_OUTCOMES
from support.jobs import get_job

JobBody = dict[str, Any]


def epoch_s(moment: str) -> float:
    """Seconds since the epoch of an ISO 8601 timestamp written by the API."""
    return datetime.fromisoformat(moment).timestamp()


async def wait_for_job(
    api: httpx.AsyncClient,
    job_id: str,
    condition: Callable[[JobBody], bool],
    timeout_s: float,
    what: str,
) -> JobBody:
    """Poll get_list until ``condition`` holds; fail saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout_s
    body = await get_job(api, job_id)
    while not condition(body):
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id}: no {what} in {timeout_s} s: {body}")
        await asyncio.sleep(0.1)
        body = await get_job(api, job_id)
    return body


def alerts_recorded(body: JobBody) -> bool:
    """True once the job is over and every failed execution has its alert outcome."""
    if body["job"]["status"] != "FINISHED":
        return False
    return all(
        e["alert"]["outcome"] is not None
        for e in body["executions"]
        if e["outcome"] in FAILURE_OUTCOMES
    )
