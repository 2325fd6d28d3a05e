"""Field case C12: the last execution is recorded before the job shows FINISHED."""

from __future__ import annotations

import asyncio

import httpx

from support.jobs import by_number, create_job, get_job, wait_for_status
from support.receiver import Receiver

# path -> (interval ms, occurrences, receiver behaviour, status, outcome)
LAST_EXECUTIONS: dict[str, tuple[int, int, dict[str, object], int, str]] = {
    "/last-two-failing": (1000, 2, {"status": 500}, 500, "failed"),
    "/last-two-passing": (1000, 2, {}, 200, "succeeded"),
    "/last-one": (1000, 1, {}, 200, "succeeded"),
    # Slow, yet under the stack's 2 s timeout and shorter than the interval.
    "/last-three-slow": (2000, 3, {"delay_ms": 1500}, 200, "succeeded"),
}


async def test_last_execution_is_complete_in_the_first_finished_view(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The first get_list showing FINISHED already holds every code and end time."""
    jobs = {
        path: await create_job(
            api,
            interval=interval_ms,
            occurrences=occurrences,
            return_url=receiver.url(path, **behaviour),
        )
        for path, (interval_ms, occurrences, behaviour, _, _) in LAST_EXECUTIONS.items()
    }

    # Polled side by side, so each job is seen as soon as it shows FINISHED.
    bodies = await asyncio.gather(
        *(wait_for_status(api, job_id, "FINISHED", 12) for job_id in jobs.values())
    )

    for (path, (_, occurrences, _, status, outcome)), body in zip(
        LAST_EXECUTIONS.items(), bodies, strict=True
    ):
        executions = by_number(body)
        assert sorted(executions) == list(range(1, occurrences + 1)), path
        received = [call.json()["executionId"] for call in receiver.calls_to(path)]
        assert [executions[n]["executionId"] for n in sorted(executions)] == received
        for execution in executions.values():
            assert execution["outcome"] == outcome, (path, execution)
            assert execution["httpStatus"] == status, (path, execution)
            assert execution["finishedAt"] is not None, (path, execution)
            assert execution["durationMs"] is not None, (path, execution)
        assert body["job"]["done"] == occurrences, path
        assert body["job"]["ended_at"] is not None, path
    slow = by_number(bodies[-1])
    assert slow[3]["durationMs"] >= 1500


async def test_last_execution_takes_comments_in_order(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Comments on the last execution of a finished job are kept and listed in order."""
    job_id = await create_job(
        api,
        interval=500,
        occurrences=2,
        return_url=receiver.url("/last-commented", status=500),
    )
    body = await wait_for_status(api, job_id, "FINISHED", timeout_s=5)
    last_id = by_number(body)[2]["executionId"]

    first = await api.post(
        "/set/execution/comment",
        json={"executionId": last_id, "comment": "looked into the 500"},
    )
    second = await api.post(
        "/set/execution/comment/",
        json={"executionId": last_id, "comment": "fixed on our side"},
    )

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert first.json()["executionId"] == last_id
    assert first.json()["comment"]["comment"] == "looked into the 500"
    last = by_number(await get_job(api, job_id))[2]
    assert [c["comment"] for c in last["comments"]] == [
        "looked into the 500",
        "fixed on our side",
    ]
    assert all(c["at"] for c in last["comments"])
    assert by_number(await get_job(api, job_id))[1]["comments"] == []
