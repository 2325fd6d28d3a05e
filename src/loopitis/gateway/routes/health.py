"""Health: which dependency is down, and since when."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from loopitis.dependency import DependencyState
from loopitis.errors import StorageUnavailable
from loopitis.gateway.render import iso
from loopitis.storage import jobs as store

router = APIRouter()
PROBE_TIMEOUT_S = 2.0
CONSUMER_STALE_S = 15.0


@router.get("/health", summary="State of Postgres, Kafka and the consumers")
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    postgres, consumers = await _postgres(state)
    kafka = await state.publisher.probe(PROBE_TIMEOUT_S)
    healthy = postgres["ok"] and kafka["ok"]
    body = {
        "status": "ok" if healthy else "unavailable",
        "down": [
            name
            for name, part in (("postgres", postgres), ("kafka", kafka))
            if not part["ok"]
        ],
        "postgres": postgres,
        "kafka": kafka,
        "consumers": consumers,
    }
    return JSONResponse(body, status_code=200 if healthy else 503)


async def _postgres(state: Any) -> tuple[dict[str, object], list[dict[str, object]]]:
    tracker: DependencyState = state.postgres_state
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_S):
            rows = await store.live_consumers(state.pool, CONSUMER_STALE_S)
    except (StorageUnavailable, TimeoutError) as exc:
        tracker.mark_down(str(exc) or "timed out")
        return tracker.as_json(), []
    tracker.mark_up()
    consumers = [
        {
            "consumer": row["consumer_id"],
            "host": row["host"],
            "pid": row["pid"],
            "partitions": row["partitions"],
            "jobs_scheduled": row["jobs_scheduled"],
            "calls_in_flight": row["calls_in_flight"],
            "heartbeat_at": iso(row["heartbeat_at"]),
        }
        for row in rows
    ]
    return tracker.as_json(), consumers
