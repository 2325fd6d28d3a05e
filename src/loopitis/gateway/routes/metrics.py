"""Prometheus metrics of the gateway and of what Postgres knows."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from loopitis.dependency import DependencyState
from loopitis.errors import StorageUnavailable
from loopitis.gateway.deps import require_credentials
from loopitis.gateway.metrics import refresh_database_gauges

log = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(require_credentials)])
QUERY_TIMEOUT_S = 3.0


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    tracker: DependencyState = request.app.state.postgres_state
    try:
        async with asyncio.timeout(QUERY_TIMEOUT_S):
            await refresh_database_gauges(request.app.state.pool)
    except (StorageUnavailable, TimeoutError) as exc:
        # The process metrics are still worth a scrape; the database gauges
        # keep their last values and the error counter says why.
        tracker.mark_down(str(exc) or "timed out")
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
