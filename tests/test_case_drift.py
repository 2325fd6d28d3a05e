"""Field case C4: a slow receiver never pushes later slots back."""

from __future__ import annotations

import time

import httpx
import pytest

from support.jobs import by_number, create_job, wait_for_status
from support.observe import epoch_s
from support.receiver import Receiver

INTERVAL_S = 2.0
OCCURRENCES = 30
# Generous on purpose: drift would show as seconds, jitter is milliseconds.
TOLERANCE_S = 0.5


async def test_drift_slow_calls_keep_thirty_slots_on_the_fixed_rate(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """With 400 ms per call, call k still arrives at (k-1) * 2 s and call 30 at 58 s."""
    path = "/drift-thirty"
    job_id = await create_job(
        api,
        interval=int(INTERVAL_S * 1000),
        occurrences=OCCURRENCES,
        return_url=receiver.url(path, delay_ms=400),
    )
    created_at = time.time()

    calls = await receiver.wait_for_calls(path, OCCURRENCES, timeout_s=70)
    body = await wait_for_status(api, job_id, "FINISHED", timeout_s=5)

    documents = [call.json() for call in calls]
    assert [d["executionNumber"] for d in documents] == list(range(1, 31))
    anchor_s = epoch_s(body["job"]["accepted_at"])
    for number, (call, document) in enumerate(zip(calls, documents, strict=True), 1):
        planned_s = (number - 1) * INTERVAL_S
        scheduled_s = epoch_s(document["scheduledAt"])
        assert scheduled_s == pytest.approx(anchor_s + planned_s, abs=0.002)
        assert abs(call.arrived_at - created_at - planned_s) <= TOLERANCE_S
        assert -0.05 <= call.arrived_at - scheduled_s <= TOLERANCE_S
    # Drifting by the 400 ms of each call would put the last one near 70 s.
    assert calls[-1].arrived_at - created_at < 58 + TOLERANCE_S

    executions = by_number(body)
    assert sorted(executions) == list(range(1, 31))
    for document in documents:
        execution = executions[document["executionNumber"]]
        assert execution["executionId"] == document["executionId"]
        assert execution["scheduledAt"] == document["scheduledAt"]
        assert execution["outcome"] == "succeeded"
        assert execution["durationMs"] >= 400
    assert body["job"]["succeeded"] == OCCURRENCES
