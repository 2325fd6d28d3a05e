"""Health: which dependency is down, and since when."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from loopitis.dependency import DependencyState
from loopitis.errors import StorageUnavailable
from loopitis.gateway.render import iso
from loopitis.storage import jobs as store

router = APIRouter()
T = TypeVar("T")
PROBE_TIMEOUT_S = 2.0
CONSUMER_STALE_S = 15.0


@router.get("/health", summary="State of Postgres, Kafka and the consumers")
async def health(request: Request) -> JSONResponse:
    state = request.app.state
    (postgres, consumers), kafka = await asyncio.gather(_postgres(state), _kafka(state))
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
        rows = await _within(
            store.live_consumers(state.pool, CONSUMER_STALE_S), PROBE_TIMEOUT_S
        )
    except (StorageUnavailable, TimeoutError) as exc:
        tracker.mark_down(str(exc) or f"no answer within {PROBE_TIMEOUT_S:.0f} s")
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


async def _kafka(state: Any) -> dict[str, object]:
    tracker: DependencyState = state.publisher.state
    try:
        return await _within(state.publisher.probe(PROBE_TIMEOUT_S), PROBE_TIMEOUT_S)
    except TimeoutError:
        tracker.mark_down(f"no answer within {PROBE_TIMEOUT_S:.0f} s")
        return tracker.as_json()


async def _within(probe: Coroutine[Any, Any, T], timeout_s: float) -> T:
    """The probe's result, or TimeoutError after ``timeout_s`` at the latest.

    Cancelling a query to a hung server can itself hang (the driver tries to
    reset the connection), so a late probe is left to finish on its own.
    """
    task = asyncio.ensure_future(probe)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if not done:
        task.add_done_callback(_forget_result)
        raise TimeoutError
    return task.result()


def _forget_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
