"""``loopitis jobs ...`` and ``loopitis report``: the API from a terminal.

Human tables by default; ``--json`` prints the API's own JSON for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from loopitis.client.api import ApiError, Connection, LoopitisClient
from loopitis.model.job import CALLBACK_METHODS, JobStatus

DEFAULT_URL = "http://127.0.0.1:8080"
WATCH_POLL_S = 0.5
_ENDED = (JobStatus.FINISHED, JobStatus.CANCELED)
_TONES = {
    "succeeded": "green",
    "failed": "red",
    "timed_out": "red",
    "error": "red",
    "missed": "yellow",
    "running": "blue",
}


def add_commands(commands: Any) -> None:
    """Add ``jobs`` and ``report`` to the ``loopitis`` subcommands."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--url", help=f"gateway URL (LOOPITIS_URL, {DEFAULT_URL})")
    shared.add_argument("--username", help="API user (LOOPITIS_USERNAME)")
    shared.add_argument("--password", help="API password (LOOPITIS_PASSWORD)")
    shared.add_argument("--json", action="store_true", help="print JSON")

    jobs = commands.add_parser("jobs", help="create, list, show, cancel, watch jobs")
    actions = jobs.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[shared], help="create a job")
    add.add_argument("--return-url", required=True)
    add.add_argument("--interval", required=True, help="e.g. 10s, 1h+30m, 10000")
    add.add_argument("--delay")
    add.add_argument("--occurrences", type=int)
    add.add_argument("--name")
    add.add_argument("--payload")
    add.add_argument("--callback-type", choices=CALLBACK_METHODS, type=str.upper)
    add.add_argument("--notify-status-not-ok", metavar="URL")
    listing = actions.add_parser("list", parents=[shared], help="list jobs")
    listing.add_argument("--status", choices=[s.value for s in JobStatus])
    listing.add_argument("--limit", type=int, default=20)
    for name, text in (("show", "one job"), ("cancel", "cancel a job")):
        actions.add_parser(name, parents=[shared], help=text).add_argument("id")
    watch = actions.add_parser("watch", parents=[shared], help="follow a job live")
    watch.add_argument("id")
    jobs.set_defaults(handler=run_jobs)

    report = commands.add_parser("report", parents=[shared], help="outcome report")
    report.add_argument("--from", dest="start", help="ISO 8601 start; 24 h ago")
    report.add_argument("--to", dest="end", help="ISO 8601 end; now")
    report.add_argument("--job", help="only this job id")
    report.set_defaults(handler=run_report)


def run_jobs(args: argparse.Namespace) -> int:
    handlers = {
        "add": _add,
        "list": _list,
        "show": _show,
        "cancel": _cancel,
        "watch": _watch,
    }
    return _with_client(args, handlers[args.action])


def run_report(args: argparse.Namespace) -> int:
    def report(client: LoopitisClient, args: argparse.Namespace) -> int:
        body = client.report(args.start, args.end, args.job)
        return _emit(args, body, _report_view)

    return _with_client(args, report)


def _with_client(args: argparse.Namespace, action: Any) -> int:
    connection = Connection(
        url=args.url or os.environ.get("LOOPITIS_URL") or DEFAULT_URL,
        username=args.username or os.environ.get("LOOPITIS_USERNAME", ""),
        password=args.password or os.environ.get("LOOPITIS_PASSWORD", ""),
    )
    try:
        with LoopitisClient(connection) as client:
            code: int = action(client, args)
            return code
    except ApiError as exc:
        print(f"loopitis: {exc}", file=sys.stderr)
        return 1


def _add(client: LoopitisClient, args: argparse.Namespace) -> int:
    fields = {
        "return_url": args.return_url,
        "interval": args.interval,
        "delay": args.delay,
        "occurrences": args.occurrences,
        "name": args.name,
        "payload": args.payload,
        "callback_type": args.callback_type,
        "notify_status_not_ok": args.notify_status_not_ok,
    }
    body = client.create_job({k: v for k, v in fields.items() if v is not None})
    return _emit(args, body, lambda b: f"created job {b['id']}")


def _list(client: LoopitisClient, args: argparse.Namespace) -> int:
    body = client.list_jobs(args.status, args.limit)
    return _emit(args, body, _jobs_table)


def _show(client: LoopitisClient, args: argparse.Namespace) -> int:
    return _emit(args, client.job(args.id), _job_view)


def _cancel(client: LoopitisClient, args: argparse.Namespace) -> int:
    body = client.cancel(args.id)
    return _emit(args, body, lambda b: f"job {b['id']}: {b['message']}")


def _watch(client: LoopitisClient, args: argparse.Namespace) -> int:
    """Follow a job until it is FINISHED or CANCELED; Ctrl-C stops watching."""
    job = client.job(args.id, limit=1)["job"]
    console = Console(stderr=args.json)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    with Progress(*columns, console=console, transient=args.json) as progress:
        task = progress.add_task(
            job["name"] or job["id"][:8], total=job["occurrences"], detail=""
        )
        while True:
            progress.update(task, completed=job["done"], detail=_detail(job))
            if job["status"] in _ENDED:
                break
            time.sleep(WATCH_POLL_S)
            job = client.job(args.id, limit=1)["job"]
    return _emit(args, job, lambda j: f"job {j['id']} is {j['status']}")


def _detail(job: dict[str, Any]) -> str:
    return (
        f"[green]{job['succeeded']} ok[/] [red]{job['failed']} failed[/] "
        f"[yellow]{job['missed']} missed[/] {job['status']}"
    )


def _emit(args: argparse.Namespace, body: dict[str, Any], view: Any) -> int:
    if args.json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    Console().print(view(body))
    return 0


def _jobs_table(body: dict[str, Any]) -> Table:
    table = Table("id", "name", "status", "done", "ok", "failed", "missed", "every")
    for job in body["jobs"]:
        wanted = job["occurrences"]
        table.add_row(
            job["id"],
            job["name"] or "",
            job["status"],
            f"{job['done']}/{wanted}" if wanted else str(job["done"]),
            str(job["succeeded"]),
            str(job["failed"]),
            str(job["missed"]),
            job["interval_text"],
        )
    return table


def _job_view(body: dict[str, Any]) -> Table:
    job = body["job"]
    table = Table(
        "#",
        "due",
        "outcome",
        "http",
        "ms",
        "error",
        "reported",
        title=f"{job['name'] or job['id']}: {job['status']}, {job['done']} done "
        f"({job['succeeded']} ok, {job['failed']} failed, {job['missed']} missed)",
    )
    for e in body["executions"]:
        tone = _TONES.get(e["outcome"], "white")
        duration = e["durationMs"]
        table.add_row(
            str(e["executionNumber"]),
            e["scheduledAt"],
            f"[{tone}]{e['outcome']}[/]",
            str(e["httpStatus"] or ""),
            "" if duration is None else f"{duration:.0f}",
            e["error"] or "",
            e["reportedStatus"] or "",
        )
    return table


def _report_view(body: dict[str, Any]) -> Table:
    rate = body["success_rate"]
    table = Table(
        "outcome",
        "executions",
        title=f"{body['from']} to {body['to']}: {body['executions']} executions, "
        f"success rate {'-' if rate is None else f'{rate * 100:.1f}%'}",
    )
    for outcome, count in body["by_outcome"].items():
        table.add_row(outcome, str(count))
    for name in ("lateness_ms", "duration_ms"):
        values = ", ".join(f"{p} {v}" for p, v in body[name].items())
        table.add_row(f"[dim]{name}[/]", values)
    for job in body["top_failing_jobs"]:
        table.add_row(
            f"[red]failing job[/] {job['name'] or job['id']}", str(job["failures"])
        )
    return table
