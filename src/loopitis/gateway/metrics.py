"""The gateway's /metrics: its own requests plus gauges read from Postgres.

Consumers serve their callback counters and histograms themselves (see
docs/architecture.md); what the gateway adds is what only the database knows
across all consumers: jobs by status, recent executions by outcome, and the
consumers' last heartbeats.
"""

from __future__ import annotations

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from loopitis.model.job import JobStatus, Outcome, status_class
from loopitis.storage import jobs as job_store
from loopitis.storage import reports

RECENT_WINDOW_S = 300.0
CONSUMER_STALE_S = 15.0

REQUESTS = Counter(
    "loopitis_http_requests",
    "Requests answered by the gateway, by route template and status class",
    ["method", "route", "status_class"],
)
REQUEST_DURATION = Histogram(
    "loopitis_http_request_duration_seconds",
    "Time to answer one request (streams excluded)",
    ["route"],
)
JOBS = Gauge("loopitis_jobs", "Jobs in Postgres by status", ["status"])
RECENT = Gauge(
    "loopitis_executions_recent",
    f"Executions finished in the last {RECENT_WINDOW_S:.0f} s, by outcome and "
    "HTTP status class",
    ["outcome", "status_class"],
)
CONSUMERS = Gauge("loopitis_consumers_live", "Consumers with a recent heartbeat")
GROUP_IN_FLIGHT = Gauge(
    "loopitis_group_calls_in_flight", "Calls in flight over all consumers"
)
GROUP_PARTITIONS = Gauge(
    "loopitis_group_owned_partitions", "Partitions owned over all consumers"
)
RECENT_LATENESS = Gauge(
    "loopitis_recent_lateness_seconds",
    f"Lateness percentiles of the last {RECENT_WINDOW_S:.0f} s",
    ["quantile"],
)


async def refresh_database_gauges(pool: asyncpg.Pool) -> None:
    """Read the gauges that come from Postgres; called on each scrape."""
    statuses = await reports.jobs_by_status(pool)
    for status in JobStatus:
        JOBS.labels(status.value).set(statuses.get(status.value, 0))
    recent = await reports.recent_activity(pool, RECENT_WINDOW_S)
    RECENT.clear()
    for outcome in Outcome:
        RECENT.labels(outcome.value, "none")
    for row in recent["by_outcome"]:
        klass = status_class(row["status_class"] * 100 or None)
        RECENT.labels(row["outcome"], klass).set(row["n"])
    for quantile in (50, 95, 99):
        value = recent[f"lateness_p{quantile}"]
        gauge = RECENT_LATENESS.labels(f"0.{quantile}")
        gauge.set(float("nan") if value is None else value / 1000)
    consumers = await job_store.live_consumers(pool, CONSUMER_STALE_S)
    CONSUMERS.set(len(consumers))
    GROUP_IN_FLIGHT.set(sum(c["calls_in_flight"] for c in consumers))
    GROUP_PARTITIONS.set(sum(len(c["partitions"]) for c in consumers))
