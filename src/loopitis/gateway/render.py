"""Rows from Postgres as the JSON shapes of API.md."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from loopitis.model.duration import format_duration

Row = dict[str, Any]


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_json(row: Row) -> dict[str, object]:
    return {
        "id": row["id"],
        "internal_id": row["internal_id"],
        "name": row["name"],
        "status": row["status"],
        "interval": row["interval_ms"],
        "interval_text": format_duration(row["interval_ms"]),
        "delay": row["delay_ms"],
        "occurrences": row["occurrences"],
        "return_url": row["return_url"],
        "callback_type": row["callback_type"],
        "payload": row["payload"],
        "notify_status_not_ok": row["notify_url"],
        "accepted_at": iso(row["accepted_at"]),
        "next_due_at": iso(row["next_due_at"]),
        "ended_at": iso(row["ended_at"]),
        "done": row["done"],
        "succeeded": row["succeeded"],
        "failed": row["failed"],
        "missed": row["missed"],
    }


def execution_json(row: Row) -> dict[str, object]:
    return {
        "executionId": row["id"],
        "executionNumber": row["number"],
        "scheduledAt": iso(row["due_at"]),
        "claimedAt": iso(row["claimed_at"]),
        "startedAt": iso(row["started_at"]),
        "finishedAt": iso(row["finished_at"]),
        "outcome": row["outcome"],
        "missedReason": row["missed_reason"],
        "httpStatus": row["http_status"],
        "durationMs": row["duration_ms"],
        "errorKind": row["error_kind"],
        "error": row["error"],
        "reportedStatus": row["reported_status"],
        "attempt": row["attempt"],
        "alert": {
            "outcome": row["alert_outcome"],
            "httpStatus": row["alert_http_status"],
            "error": row["alert_error"],
        },
        "comments": [_comment_json(comment) for comment in row["comments"]],
    }


def _comment_json(comment: dict[str, Any]) -> dict[str, object]:
    # Postgres writes timestamps inside jsonb as text in the session's time
    # zone, with microseconds; render them like every other time of the API.
    at = datetime.fromisoformat(comment["at"]).astimezone(UTC)
    return {"at": iso(at), "comment": comment["comment"]}
