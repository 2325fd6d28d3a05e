"""Accounting: does what the receiver got agree with what get_list records?

After a failure test (or the soak) every slot of every job must be accounted
for exactly once, and every delivered callback must belong to a recorded
execution. The only duplicate delivery allowed is the documented re-send: the
same ``executionId`` sent again with ``Loopitis-Attempt: 2`` after its owner
was lost, recorded as one execution with attempt 2.

    report = await account(api, receiver.calls, job_ids)
    report.assert_clean()
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from support.observe import epoch_s
from support.receiver import Call

SETTLED_OUTCOMES = frozenset(
    {"succeeded", "failed", "timed_out", "error", "missed", "canceled"}
)
# Outcomes that mean the receiver answered, so it must have logged the call.
ANSWERED_OUTCOMES = frozenset({"succeeded", "failed"})
# A slot due this recently may not have been claimed yet; it is not "lost".
DUE_SLACK_S = 3.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One callback as the receiver logged it."""

    job_id: str
    number: int
    execution_id: str
    attempt: int
    arrived_at: float

    @classmethod
    def from_call(cls, call: Call) -> Delivery | None:
        fields = _callback_fields(call)
        if fields is None:
            return None
        return cls(
            job_id=str(fields["parentRequestId"]),
            number=int(fields["executionNumber"]),
            execution_id=str(fields["executionId"]),
            attempt=int(call.headers.get("Loopitis-Attempt", "1")),
            arrived_at=call.arrived_at,
        )


@dataclass
class Accounting:
    """Totals over all jobs checked, and every disagreement found."""

    jobs: int = 0
    slots_due: int = 0
    delivered: int = 0
    succeeded: int = 0
    failed: int = 0
    missed: int = 0
    missed_reasons: Counter[str] = field(default_factory=Counter)
    canceled: int = 0
    resent: int = 0
    duplicated: int = 0
    lost: int = 0
    unsettled: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, job_id: str, text: str) -> None:
        self.problems.append(f"job {job_id}: {text}")

    def assert_clean(self) -> None:
        """Fail with every problem found (at most 20 listed)."""
        if not self.problems:
            return
        shown = "\n  ".join(self.problems[:20])
        more = len(self.problems) - 20
        suffix = f"\n  ... and {more} more" if more > 0 else ""
        raise AssertionError(
            f"{len(self.problems)} accounting problems:\n  {shown}{suffix}\n"
            f"{self.table()}"
        )

    def table(self) -> str:
        rows = [
            ("jobs", self.jobs),
            ("slots due", self.slots_due),
            ("delivered", self.delivered),
            ("  succeeded", self.succeeded),
            ("  failed, timed out or error", self.failed),
            ("missed", self.missed),
            *((f"  {reason}", n) for reason, n in sorted(self.missed_reasons.items())),
            ("canceled", self.canceled),
            ("re-sent (same executionId, attempt 2)", self.resent),
            ("duplicated (unexplained)", self.duplicated),
            ("lost", self.lost),
            ("still running", self.unsettled),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value:>8}" for name, value in rows)


async def account(
    api: httpx.AsyncClient,
    calls: Iterable[Call],
    job_ids: Sequence[str],
    *,
    checked_at: float | None = None,
) -> Accounting:
    """Compare the receiver's ``calls`` with the records of ``job_ids``."""
    checked_at = time.time() if checked_at is None else checked_at
    deliveries: dict[str, list[Delivery]] = defaultdict(list)
    for call in calls:
        delivery = Delivery.from_call(call)
        if delivery is not None:
            deliveries[delivery.job_id].append(delivery)
    report = Accounting()
    for job_id in job_ids:
        job, executions = await fetch_all(api, job_id)
        _check_job(report, job, executions, deliveries.pop(job_id, []), checked_at)
    return report


async def fetch_all(
    api: httpx.AsyncClient, job_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The job and all of its executions, following the ``before`` cursor."""
    executions: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"requestId": job_id, "limit": 500}
    while True:
        response = await api.get("/requests/get_list", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        executions.extend(body["executions"])
        if body["next_before"] is None:
            return body["job"], executions
        params["before"] = body["next_before"]


def _check_job(
    report: Accounting,
    job: dict[str, Any],
    executions: list[dict[str, Any]],
    deliveries: list[Delivery],
    checked_at: float,
) -> None:
    job_id = job["id"]
    report.jobs += 1
    records = _records_by_number(report, job_id, executions)
    _check_slots(report, job, records, checked_at)
    _check_deliveries(report, job_id, records, deliveries)
    _check_counters(report, job, records)


def _records_by_number(
    report: Accounting, job_id: str, executions: list[dict[str, Any]]
) -> dict[int, dict[str, Any]]:
    records: dict[int, dict[str, Any]] = {}
    for execution in executions:
        number = execution["executionNumber"]
        if number in records:
            report.duplicated += 1
            report.problem(job_id, f"execution {number} is recorded twice")
        records[number] = execution
    return records


def _check_slots(
    report: Accounting,
    job: dict[str, Any],
    records: dict[int, dict[str, Any]],
    checked_at: float,
) -> None:
    """Every slot due so far has exactly one settled record."""
    job_id = job["id"]
    due = _slots_due(job, records, checked_at)
    report.slots_due += due
    for number in range(1, due + 1):
        if number not in records:
            report.lost += 1
            report.problem(job_id, f"slot {number} was due but has no record")
    for number, record in records.items():
        outcome = record["outcome"]
        if outcome not in SETTLED_OUTCOMES:
            report.unsettled += 1
            report.problem(job_id, f"execution {number} is still {outcome}")
        elif outcome == "missed":
            report.missed += 1
            report.missed_reasons[record["missedReason"] or "no reason"] += 1
            if not record["missedReason"]:
                report.problem(job_id, f"execution {number} is missed without reason")
        elif outcome == "canceled":
            report.canceled += 1
        elif outcome == "succeeded":
            report.succeeded += 1
        else:
            report.failed += 1


def _slots_due(
    job: dict[str, Any], records: dict[int, dict[str, Any]], checked_at: float
) -> int:
    """How many slots must have a record by ``checked_at``."""
    highest = max(records, default=0)
    if job["status"] == "FINISHED":
        return int(job["occurrences"] or highest)
    if job["status"] == "CANCELED":
        # Slots after the cancel are not due; the records say how far it got.
        return highest
    anchor_s = epoch_s(job["accepted_at"]) + job["delay"] / 1000
    late_enough = checked_at - DUE_SLACK_S - anchor_s
    if late_enough < 0:
        return highest
    due = int(late_enough * 1000 // job["interval"]) + 1
    if job["occurrences"] is not None:
        due = min(due, job["occurrences"])
    return max(due, highest)


def _check_deliveries(
    report: Accounting,
    job_id: str,
    records: dict[int, dict[str, Any]],
    deliveries: list[Delivery],
) -> None:
    """Each delivery belongs to a record; only the documented re-send repeats."""
    by_number: dict[int, list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        by_number[delivery.number].append(delivery)
    for number, sent in sorted(by_number.items()):
        record = records.get(number)
        if record is None:
            report.lost += 1
            report.problem(job_id, f"execution {number} was delivered, not recorded")
            continue
        report.delivered += 1
        ids = {d.execution_id for d in sent}
        if ids != {record["executionId"]}:
            report.duplicated += len(sent) - 1
            report.problem(
                job_id, f"execution {number} delivered with ids {sorted(ids)}"
            )
            continue
        if record["outcome"] == "missed":
            report.problem(job_id, f"execution {number} is missed but was delivered")
        _check_repeats(report, job_id, number, record, sent)
    for number, record in records.items():
        if record["outcome"] in ANSWERED_OUTCOMES and number not in by_number:
            report.lost += 1
            report.problem(
                job_id,
                f"execution {number} is recorded {record['outcome']} but the "
                "receiver never got it",
            )


def _check_repeats(
    report: Accounting,
    job_id: str,
    number: int,
    record: dict[str, Any],
    sent: list[Delivery],
) -> None:
    attempts = sorted(d.attempt for d in sent)
    if attempts == [1]:
        return
    if attempts in ([1, 2], [2]) and record["attempt"] == 2:
        report.resent += 1
        return
    report.duplicated += len(sent) - 1
    report.problem(
        job_id,
        f"execution {number} delivered {len(sent)} times with attempts {attempts} "
        f"(recorded attempt {record['attempt']})",
    )


def _check_counters(
    report: Accounting, job: dict[str, Any], records: dict[int, dict[str, Any]]
) -> None:
    settled = [r for r in records.values() if r["outcome"] in SETTLED_OUTCOMES]
    missed = sum(1 for r in settled if r["outcome"] == "missed")
    if job["done"] != len(settled) or job["missed"] != missed:
        report.problem(
            job["id"],
            f"counters say done={job['done']} missed={job['missed']} but the "
            f"records say done={len(settled)} missed={missed}",
        )


def _callback_fields(call: Call) -> dict[str, Any] | None:
    """The envelope of a callback, from its JSON body or its query string."""
    if call.body:
        try:
            fields = call.json()
        except ValueError:
            return None
        return fields if isinstance(fields, dict) else None
    if call.param("parentRequestId") is None:
        return None
    return {name: call.param(name) for name in call.query}


def deliveries_of(calls: Iterable[Call], job_ids: set[str]) -> list[Delivery]:
    """The callbacks of ``job_ids``, in arrival order."""
    found = (Delivery.from_call(call) for call in calls)
    return [d for d in found if d is not None and d.job_id in job_ids]
