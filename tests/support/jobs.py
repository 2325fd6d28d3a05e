"""Small helpers for driving jobs through the HTTP API in tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx


async def create_job(api: httpx.AsyncClient, **fields: object) -> str:
    response = await api.post("/set/notifier", json=fields)
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


async def get_job(
    api: httpx.AsyncClient, job_id: str, limit: int = 500
) -> dict[str, Any]:
    response = await api.get(
        "/requests/get_list", params={"requestId": job_id, "limit": limit}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_status(
    api: httpx.AsyncClient, job_id: str, status: str, timeout_s: float
) -> dict[str, Any]:
    """Poll get_list until the job has ``status``; fail with its last state."""
    deadline = time.monotonic() + timeout_s
    body = await get_job(api, job_id)
    while body["job"]["status"] != status:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"job {job_id} is {body['job']['status']}, not {status}: {body['job']}"
            )
        await asyncio.sleep(0.2)
        body = await get_job(api, job_id)
    return body


def by_number(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {e["executionNumber"]: e for e in body["executions"]}
