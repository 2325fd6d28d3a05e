"""Field case C6: receivers that never finish meet one deadline for the whole call."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from support.jobs import by_number, create_job, wait_for_status
from support.observe import alerts_recorded, epoch_s, wait_for_job
from support.receiver import Call, Receiver

NEVER_FINISHING = {
    "hang": {"hang": 1},
    "trickle-headers": {"trickle_headers": 1},
    "trickle-body": {"trickle_body": 1},
}
# Generous on purpose: lateness is measured in milliseconds when all is well.
TOLERANCE_S = 0.5


async def test_timeouts_stuck_receivers_time_out_while_a_healthy_job_keeps_time(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Each stuck call ends at the 2 s deadline, alerts once, and delays no slot."""
    stuck_jobs = {
        variant: await create_job(
            api,
            interval=3000,
            occurrences=2,
            return_url=receiver.url(f"/timeouts-{variant}", **behaviour),
            notify_status_not_ok=receiver.url(f"/timeouts-{variant}-alerts"),
        )
        for variant, behaviour in NEVER_FINISHING.items()
    }
    healthy_id = await create_job(
        api, interval=500, occurrences=10, return_url=receiver.url("/timeouts-healthy")
    )

    bodies = await asyncio.gather(
        *(
            wait_for_job(api, job_id, alerts_recorded, 15, "recorded alerts")
            for job_id in stuck_jobs.values()
        )
    )
    healthy = await wait_for_status(api, healthy_id, "FINISHED", timeout_s=5)

    for (variant, job_id), body in zip(stuck_jobs.items(), bodies, strict=True):
        _check_timed_out(receiver, variant, job_id, body)
    _check_on_time(receiver.calls_to("/timeouts-healthy"), healthy)


def _check_timed_out(
    receiver: Receiver, variant: str, job_id: str, body: dict[str, Any]
) -> None:
    executions = by_number(body)
    assert sorted(executions) == [1, 2], variant
    calls = receiver.calls_to(f"/timeouts-{variant}")
    assert [c.json()["executionNumber"] for c in calls] == [1, 2], variant
    for call in calls:
        execution = executions[call.json()["executionNumber"]]
        assert execution["executionId"] == call.json()["executionId"]
        assert execution["outcome"] == "timed_out", (variant, execution)
        assert execution["httpStatus"] is None
        assert execution["errorKind"] == "timeout"
        # The deadline covers the whole call, not each read of a trickle.
        assert 1900 <= execution["durationMs"] <= 2600, (variant, execution)
        assert call.arrived_at - epoch_s(execution["scheduledAt"]) <= TOLERANCE_S
        assert execution["alert"]["outcome"] == "sent"

    alerts = receiver.calls_to(f"/timeouts-{variant}-alerts")
    assert len(alerts) == 2, variant
    documents = sorted((a.json() for a in alerts), key=lambda d: d["executionNumber"])
    for document in documents:
        execution = executions[document["executionNumber"]]
        assert document["executionId"] == execution["executionId"]
        assert document["parentRequestId"] == job_id
        assert document["callback_status_code"] is None
        assert document["error"] == "timeout"
    assert all(alert.method == "POST" for alert in alerts)


def _check_on_time(calls: list[Call], body: dict[str, Any]) -> None:
    executions = by_number(body)
    assert sorted(executions) == list(range(1, 11))
    assert all(e["outcome"] == "succeeded" for e in executions.values())
    assert len(calls) == 10
    for call in calls:
        document = call.json()
        lateness_s = call.arrived_at - epoch_s(document["scheduledAt"])
        assert -0.05 <= lateness_s <= TOLERANCE_S, document["executionNumber"]
