"""Templates of the dashboard and the rows they show, shaped for reading."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from loopitis import __version__
from loopitis.model.duration import format_duration
from loopitis.model.job import FAILURE_OUTCOMES, LIVE_STATUSES, Outcome

Row = dict[str, Any]

_templates = Environment(
    loader=PackageLoader("loopitis.gateway", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, **context: Any) -> str:
    """Render a template; outcome colours are available as the ``tone`` filter."""
    return _templates.get_template(name).render(**context)


def page(name: str, **context: Any) -> HTMLResponse:
    html = render(name, version=__version__, **context)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def job_view(row: Row, last: Row | None = None) -> dict[str, Any]:
    done, wanted = row["done"], row["occurrences"]
    decided = row["succeeded"] + row["failed"]
    return {
        "id": str(row["id"]),
        "short_id": str(row["id"])[:8],
        "name": row["name"],
        "status": row["status"],
        "live": row["status"] in LIVE_STATUSES,
        "done": done,
        "occurrences": wanted,
        "progress_pct": None if not wanted else min(100.0, 100 * done / wanted),
        "succeeded": row["succeeded"],
        "failed": row["failed"],
        "missed": row["missed"],
        "success_rate": None if decided == 0 else 100 * row["succeeded"] / decided,
        "interval": format_duration(row["interval_ms"]),
        "delay": format_duration(row["delay_ms"]) if row["delay_ms"] else "none",
        "method": row["callback_type"],
        "return_url": row["return_url"],
        "notify_url": row["notify_url"],
        "payload": row["payload"],
        "accepted_at": stamp(row["accepted_at"]),
        "next_due_at": stamp(row["next_due_at"])
        if row["status"] in LIVE_STATUSES
        else None,
        "ended_at": stamp(row["ended_at"]),
        "last_outcome": last["outcome"] if last else None,
        "last_status": last["http_status"] if last else None,
        "last_tone": tone(last["outcome"] if last else None),
    }


def execution_view(row: Row) -> dict[str, Any]:
    late_ms = None
    if row["started_at"] is not None:
        late_ms = (row["started_at"] - row["due_at"]).total_seconds() * 1000
    return {
        "id": str(row["id"]),
        "number": row["number"],
        "due_at": stamp(row["due_at"]),
        "started_at": stamp(row["started_at"]),
        "late": milliseconds(late_ms),
        "outcome": row["outcome"],
        "tone": tone(row["outcome"]),
        "missed_reason": row["missed_reason"],
        "http_status": row["http_status"],
        "duration": milliseconds(row["duration_ms"]),
        "error": row["error"],
        "error_kind": row["error_kind"],
        "reported_status": row["reported_status"],
        "attempt": row["attempt"],
        "alert": row["alert_outcome"],
        "comments": [
            {"at": c["at"][:19].replace("T", " "), "comment": c["comment"]}
            for c in row["comments"]
        ],
    }


def consumer_view(row: Row, jobs_by_partition: dict[int, int]) -> dict[str, Any]:
    heartbeat: datetime = row["heartbeat_at"]
    return {
        "id": row["consumer_id"],
        "host": row["host"],
        "pid": row["pid"],
        "partitions": row["partitions"],
        "jobs_owned": sum(jobs_by_partition.get(p, 0) for p in row["partitions"]),
        "jobs_scheduled": row["jobs_scheduled"],
        "calls_in_flight": row["calls_in_flight"],
        "heartbeat_age_s": (datetime.now(UTC) - heartbeat).total_seconds(),
    }


def tone(outcome: str | None) -> str:  # also registered as a template filter
    """The colour family of an outcome: good, bad, warn, busy or quiet."""
    if outcome == Outcome.SUCCEEDED:
        return "good"
    if outcome in FAILURE_OUTCOMES:
        return "bad"
    if outcome == Outcome.MISSED:
        return "warn"
    if outcome == Outcome.RUNNING:
        return "busy"
    return "quiet"


def stamp(moment: datetime | None) -> dict[str, str] | None:
    """A UTC time as machine text (for the browser) and short human text."""
    if moment is None:
        return None
    utc = moment.astimezone(UTC)
    return {
        "iso": utc.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "text": utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}",
    }


def milliseconds(value: float | None) -> str | None:
    if value is None:
        return None
    if abs(value) >= 10_000:
        return f"{value / 1000:.1f} s"
    return f"{value:.0f} ms" if abs(value) >= 10 else f"{value:.1f} ms"


_templates.filters["tone"] = tone
