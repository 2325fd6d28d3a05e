"""C10: cancelling a job while its callback is in flight, and racing the schedule."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from support.jobs import by_number, create_job, get_job, wait_for_status
from support.receiver import Receiver

RACE_JOBS = 50
RACE_WINDOW_S = 3.0
SETTLE_S = 2.0


def unique_path(label: str) -> str:
    return f"/cancel-{label}-{uuid.uuid4().hex[:8]}"


def numbers_at(receiver: Receiver, path: str) -> list[int]:
    """Execution numbers that reached ``path``, in arrival order."""
    return [call.json()["executionNumber"] for call in receiver.calls_to(path)]


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def cancel(api: httpx.AsyncClient, job_id: str) -> httpx.Response:
    return await api.post("/requests/cancel_task", params={"requestId": job_id})


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


async def wait_for_outcome(
    api: httpx.AsyncClient, job_id: str, number: int, timeout_s: float
) -> dict[str, Any]:
    """Poll until execution ``number`` is no longer running; return the job."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = await get_job(api, job_id)
        execution = by_number(body).get(number)
        if execution is not None and execution["outcome"] != "running":
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {number} of {job_id}: {execution}")
        await asyncio.sleep(0.1)


async def test_cancel_during_call_stops_later_slots(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A cancel while call 2 is held answers fast, stops slot 3 on, records call 2."""
    path = unique_path("held")
    job_id = await create_job(
        api,
        interval=2000,
        occurrences=10,
        return_url=receiver.url(path, delay_ms=1500),
    )
    created = time.monotonic()
    await receiver.wait_for_calls(path, 2, timeout_s=4)
    await sleep_until(created + 2.5)

    started = time.monotonic()
    first = await cancel(api, job_id)
    answered_s = time.monotonic() - started
    second = await cancel(api, job_id)
    unknown = await cancel(api, str(uuid.uuid4()))
    body = await wait_for_outcome(api, job_id, 2, timeout_s=5)
    # Slots 3 and 4 were due at 4 s and 6 s after the create.
    await sleep_until(created + 7.0)
    after = await get_job(api, job_id)

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "CANCELED"
    assert answered_s < 1.0
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "CANCELED"
    assert "already canceled" in second.json()["message"]
    assert unknown.status_code == 404
    assert numbers_at(receiver, path) == [1, 2]
    executions = by_number(body)
    assert sorted(executions) == [1, 2]
    assert executions[2]["outcome"] == "succeeded"
    assert executions[2]["httpStatus"] == 200
    assert sorted(by_number(after)) == [1, 2]
    assert after["job"]["status"] == "CANCELED"
    assert (after["job"]["done"], after["job"]["succeeded"]) == (2, 2)


async def test_cancel_link_from_inside_call_stops_job(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A receiver that follows cancelLink during call 1 gets no further numbers."""
    path = unique_path("link")
    job_id = await create_job(
        api,
        interval=1000,
        occurrences=10,
        return_url=receiver.url(path, delay_ms=500),
    )
    call = (await receiver.wait_for_calls(path, 1, timeout_s=5))[0]

    async with httpx.AsyncClient(timeout=5) as anonymous:
        response = await anonymous.get(call.json()["cancelLink"])
    body = await wait_for_outcome(api, job_id, 1, timeout_s=5)
    # Slots 2 and 3 were due 1 s and 2 s after slot 1.
    await asyncio.sleep(2.5)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELED"
    assert numbers_at(receiver, path) == [1]
    assert by_number(body)[1]["outcome"] == "succeeded"
    after = await get_job(api, job_id)
    assert sorted(by_number(after)) == [1]
    assert after["job"]["status"] == "CANCELED"


async def test_cancel_finished_job_keeps_finished(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Cancelling a job that ran all its slots answers 200 and leaves it FINISHED."""
    path = unique_path("finished")
    job_id = await create_job(
        api, interval=300, occurrences=2, return_url=receiver.url(path)
    )
    before = await wait_for_status(api, job_id, "FINISHED", timeout_s=5)

    response = await cancel(api, job_id)
    after = await get_job(api, job_id)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "FINISHED"
    assert "already FINISHED" in response.json()["message"]
    assert after["job"] == before["job"]
    assert numbers_at(receiver, path) == [1, 2]


@dataclass
class RacedJob:
    """One job of the race, and what the receiver had seen when its cancel returned."""

    id: str
    path: str
    arrived_before_cancel: int = 0
    highest_before_cancel: int = 0
    cancel_answered_s: float = 0.0


async def race_one(
    api: httpx.AsyncClient, receiver: Receiver, index: int, rng: random.Random
) -> RacedJob:
    path = unique_path(f"race-{index}")
    job_id = await create_job(api, interval=300, return_url=receiver.url(path))
    raced = RacedJob(job_id, path)
    await asyncio.sleep(rng.uniform(0.0, RACE_WINDOW_S))

    started = time.monotonic()
    response = await cancel(api, job_id)
    raced.cancel_answered_s = time.monotonic() - started
    assert response.status_code == 200, response.text
    seen = numbers_at(receiver, path)
    raced.arrived_before_cancel = len(seen)
    raced.highest_before_cancel = max(seen, default=0)
    return raced


async def test_cancel_race_no_new_slot_after_answer(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """After a cancel answers, at most the one call already claimed can still arrive.

    The cancel commits CANCELED under the job's row lock, and a slot is claimed
    only while the job is live, so no slot is claimed after the cancel answers.
    A slot claimed just before it may still be on its way, and at most one is:
    a slot due while the previous call is in flight is recorded missed, not
    sent. So for each job, with h the highest number seen when its cancel
    answered: at most one more call arrives; every slot between h and that
    call's number was recorded missed (it is h + 1 unless a slot was skipped
    for overlap); no execution was claimed after the job's end time; and every
    fired execution recorded is one the receiver got.
    """
    rng = random.Random(1010)
    raced = await asyncio.gather(
        *(race_one(api, receiver, index, rng) for index in range(RACE_JOBS))
    )
    await asyncio.sleep(SETTLE_S)

    for job in raced:
        body = await get_job(api, job.id)
        executions = by_number(body)
        arrived = numbers_at(receiver, job.path)
        late = arrived[job.arrived_before_cancel :]
        context = f"job {job.id}: arrived {arrived}, h={job.highest_before_cancel}"

        assert body["job"]["status"] == "CANCELED", context
        assert job.cancel_answered_s < 1.0, context
        assert len(late) <= 1, context
        for number in late:
            skipped = range(job.highest_before_cancel + 1, number)
            assert all(executions[n]["outcome"] == "missed" for n in skipped), context
        fired = [n for n, e in executions.items() if e["outcome"] != "missed"]
        assert sorted(arrived) == sorted(fired), context
        assert arrived == sorted(arrived), context
        ended_at = parse_iso(body["job"]["ended_at"])
        assert all(
            parse_iso(e["claimedAt"]) <= ended_at for e in executions.values()
        ), context
        assert all(e["outcome"] != "running" for e in executions.values()), context
