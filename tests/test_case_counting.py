"""Field case C3: occurrences count slots exactly, and the first call is on time."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest

from support.jobs import by_number, create_job, wait_for_status
from support.receiver import Receiver

# Generous on purpose: timing precision belongs to benchmarks, not tests.
TOLERANCE_S = 0.5


async def test_counting_three_occurrences_fire_three_calls_then_finish(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Three occurrences after a 3 s delay call at 3, 4 and 5 s and never again."""
    path = "/counting-three"
    job_id = await create_job(
        api, interval=1000, delay=3000, occurrences=3, return_url=receiver.url(path)
    )
    created_at = time.time()

    calls = await receiver.wait_for_calls(path, 3, timeout_s=8)
    body = await wait_for_status(api, job_id, "FINISHED", timeout_s=5)
    # A fourth slot would be due at 6 s; wait past it before counting.
    await asyncio.sleep(created_at + 6.5 - time.time())

    assert len(receiver.calls_to(path)) == 3
    for call, expected_s in zip(calls, (3.0, 4.0, 5.0), strict=True):
        assert abs(call.arrived_at - created_at - expected_s) <= TOLERANCE_S
    documents = [call.json() for call in calls]
    assert [d["executionNumber"] for d in documents] == [1, 2, 3]
    assert [d["requestedTimes"] for d in documents] == [3, 3, 3]
    received_ids = {d["executionId"] for d in documents}
    assert len(received_ids) == 3

    executions = by_number(body)
    assert sorted(executions) == [1, 2, 3]
    assert {e["executionId"] for e in executions.values()} == received_ids
    assert all(e["outcome"] == "succeeded" for e in executions.values())
    assert body["job"]["done"] == 3 and body["job"]["succeeded"] == 3
    assert body["job"]["next_due_at"] is None


async def test_counting_one_occurrence_of_an_hourly_job_fires_now_then_finishes(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """An hourly job with one occurrence calls at once and is FINISHED after it."""
    path = "/counting-hourly-once"
    job_id = await create_job(
        api, interval="1h", occurrences=1, return_url=receiver.url(path)
    )
    created_at = time.time()

    calls = await receiver.wait_for_calls(path, 1, timeout_s=5)
    body = await wait_for_status(api, job_id, "FINISHED", timeout_s=5)

    assert calls[0].arrived_at - created_at <= TOLERANCE_S
    assert calls[0].json()["requestedTimes"] == 1
    assert [e["executionId"] for e in body["executions"]] == [
        calls[0].json()["executionId"]
    ]
    assert body["executions"][0]["outcome"] == "succeeded"
    assert body["job"]["interval"] == 3_600_000
    assert body["job"]["next_due_at"] is None


@pytest.mark.parametrize("occurrences", [0, -1, 2.5, True, "3"])
async def test_counting_occurrences_outside_whole_positive_numbers_are_refused(
    api: httpx.AsyncClient,
    receiver: Receiver,
    db: asyncpg.Pool,
    occurrences: object,
) -> None:
    """An occurrences value that is not a whole number of at least 1 is a 400."""
    return_url = receiver.url("/counting-refused", case=repr(occurrences))

    response = await api.post(
        "/set/notifier",
        json={"interval": 1000, "occurrences": occurrences, "return_url": return_url},
    )

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == 400
    assert error["field"] == "occurrences"
    assert "occurrences" in error["message"]
    stored = await db.fetchval(
        "SELECT count(*) FROM jobs WHERE return_url = $1", return_url
    )
    assert stored == 0
