"""The seed scenario of the Core issue, end to end on real servers."""

from __future__ import annotations

import json

import httpx

from support.jobs import by_number, create_job, wait_for_status
from support.receiver import Receiver

EXPECTED_FIELDS = {
    "parentRequestId",
    "parentRequestName",
    "requestedTimes",
    "executionNumber",
    "executionId",
    "payload",
    "showRequest",
    "cancelLink",
    "scheduledAt",
}


async def test_seed_job_ten_callbacks_with_every_field(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A POST job with name, payload and notify URL fires exactly 10 numbered calls."""
    payload = json.dumps({"request_report_for_user_id": 1234})
    job_id = await create_job(
        api,
        interval=500,
        delay=0,
        occurrences=10,
        name="my job request",
        return_url=receiver.url("/seed"),
        payload=payload,
        callback_type="POST",
        notify_status_not_ok=receiver.url("/seed-alerts"),
    )

    calls = await receiver.wait_for_calls("/seed", 10, timeout_s=20)
    body = await wait_for_status(api, job_id, "FINISHED", timeout_s=10)

    documents = [call.json() for call in calls]
    assert [d["executionNumber"] for d in documents] == list(range(1, 11))
    assert len({d["executionId"] for d in documents}) == 10
    for call, document in zip(calls, documents, strict=True):
        assert set(document) == EXPECTED_FIELDS
        assert call.method == "POST"
        assert call.headers["Content-Type"] == "application/json"
        assert call.headers["User-Agent"].startswith("Loopitis/")
        assert call.headers["Loopitis-Execution-Id"] == document["executionId"]
        assert document["parentRequestId"] == job_id
        assert document["parentRequestName"] == "my job request"
        assert document["requestedTimes"] == 10
        assert document["payload"] == payload
        assert document["showRequest"].startswith("http://127.0.0.1:")
        assert f"requestId={job_id}" in document["cancelLink"]
        assert document["scheduledAt"].endswith("Z")
    executions = by_number(body)
    assert sorted(executions) == list(range(1, 11))
    assert all(e["outcome"] == "succeeded" for e in executions.values())
    assert {e["executionId"] for e in executions.values()} == {
        d["executionId"] for d in documents
    }
    assert body["job"]["done"] == 10 and body["job"]["succeeded"] == 10
    assert receiver.calls_to("/seed-alerts") == []
