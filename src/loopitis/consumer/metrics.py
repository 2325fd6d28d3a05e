"""What a consumer measures, served on ``LOOPITIS_METRICS_PORT`` for Prometheus.

Labels are bounded: outcome (7 values), status class (``2xx`` .. ``5xx`` or
``none``) and alert outcome. A job id or URL never becomes a label.
"""

from __future__ import annotations

import functools
import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from loopitis.model.job import status_class

log = logging.getLogger(__name__)

# Seconds; callbacks time out after at most 600 s.
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Lateness is the scheduler's precision: milliseconds when healthy.
_LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60)

CALLBACKS = Counter(
    "loopitis_callbacks",
    "Callbacks sent, by outcome and HTTP status class",
    ["outcome", "status_class"],
)
CALL_DURATION = Histogram(
    "loopitis_callback_duration_seconds",
    "Duration of one whole callback",
    buckets=_DURATION_BUCKETS,
)
LATENESS = Histogram(
    "loopitis_callback_lateness_seconds",
    "How long after its due time a callback started",
    buckets=_LATENESS_BUCKETS,
)
IN_FLIGHT = Gauge("loopitis_calls_in_flight", "Callbacks being sent right now")
OWNED_PARTITIONS = Gauge(
    "loopitis_owned_partitions", "Partitions of the job topic this consumer owns"
)
JOBS_SCHEDULED = Gauge(
    "loopitis_jobs_scheduled", "Jobs with a slot in this consumer's window"
)
ALERTS = Counter("loopitis_alerts", "Alerts sent, by outcome", ["outcome"])


@functools.cache
def _callbacks(outcome: str, status: str) -> Counter:
    # A few dozen label pairs at most; looking them up once spares a lock per call.
    return CALLBACKS.labels(outcome, status)


def observe_callback(
    outcome: str, http_status: int | None, duration_ms: float, lateness_ms: float
) -> None:
    _callbacks(outcome, status_class(http_status)).inc()
    CALL_DURATION.observe(duration_ms / 1000)
    LATENESS.observe(max(lateness_ms, 0.0) / 1000)


def observe_ownership(partitions: int, jobs_scheduled: int) -> None:
    OWNED_PARTITIONS.set(partitions)
    JOBS_SCHEDULED.set(jobs_scheduled)


def serve_metrics(port: int) -> None:
    """Serve /metrics on ``port`` in a background thread; 0 serves nothing."""
    if port == 0:
        return
    try:
        start_http_server(port)
    except OSError as exc:
        # Metrics are not worth stopping callbacks for: say so and go on.
        log.warning("cannot serve metrics on port %d (%s); serving none", port, exc)
        return
    log.info("consumer metrics on port %d at /metrics", port)
