"""Field case C5: a receiver slower than the interval never gets two calls at once."""

from __future__ import annotations

import asyncio
from itertools import pairwise

import httpx

from support.jobs import by_number, create_job, wait_for_status
from support.receiver import Receiver

SLOTS = set(range(1, 6))


async def test_overlap_slots_due_during_a_call_are_missed_not_stacked(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Slots due while a 1.8 s call runs are missed for overlap; the rest fire once."""
    path = "/overlap-slow"
    job_id = await create_job(
        api,
        interval=1000,
        occurrences=5,
        # Slower than the 1 s interval, yet under the stack's 2 s callback timeout.
        return_url=receiver.url(path, delay_ms=1800),
    )

    body = await wait_for_status(api, job_id, "FINISHED", timeout_s=12)
    await asyncio.sleep(1.2)  # nothing may arrive once the job is over

    calls = receiver.calls_to(path)
    numbers = [call.json()["executionNumber"] for call in calls]
    assert numbers == sorted(set(numbers))
    for earlier, later in pairwise(calls):
        assert earlier.finished_at is not None
        assert later.arrived_at >= earlier.finished_at

    executions = by_number(body)
    assert set(executions) == SLOTS
    missed = {n for n, e in executions.items() if e["outcome"] == "missed"}
    fired = set(numbers)
    assert fired | missed == SLOTS and not fired & missed
    # Slot 2 is due at 1 s, while call 1 still has 0.8 s to go.
    assert 1 in fired and 2 in missed
    for number in missed:
        assert executions[number]["missedReason"] == "overlap"
        assert executions[number]["httpStatus"] is None
    for call in calls:
        document = call.json()
        execution = executions[document["executionNumber"]]
        assert execution["executionId"] == document["executionId"]
        assert execution["outcome"] == "succeeded"
    job = body["job"]
    assert job["done"] == 5 and job["missed"] == len(missed)
    assert job["succeeded"] == len(fired)
