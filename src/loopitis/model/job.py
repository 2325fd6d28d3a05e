"""Words shared by the gateway and the consumer: statuses, outcomes, methods."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "PENDING"
    ON_GOING = "ON_GOING"
    FINISHED = "FINISHED"
    CANCELED = "CANCELED"


LIVE_STATUSES = (JobStatus.PENDING, JobStatus.ON_GOING)


class Outcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    ERROR = "error"
    MISSED = "missed"
    CANCELED = "canceled"


FAILURE_OUTCOMES = frozenset({Outcome.FAILED, Outcome.TIMED_OUT, Outcome.ERROR})


def status_class(http_status: int | None) -> str:
    """``2xx`` .. ``5xx`` for an HTTP status, ``none`` when there was no answer."""
    if http_status is None or not 100 <= http_status <= 599:
        return "none"
    return f"{http_status // 100}xx"


class MissedReason(StrEnum):
    OVERLAP = "overlap"
    SCHEDULER_UNAVAILABLE = "scheduler_unavailable"


CALLBACK_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_DURATION_MS = 366 * 24 * 3600 * 1000
MAX_OCCURRENCES = 1_000_000_000
MAX_NAME_LENGTH = 255
MAX_URL_LENGTH = 2048
