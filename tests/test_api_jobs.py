"""Reading, listing, cancelling and commenting jobs through the real HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from support.jobs import create_job, get_job, wait_for_status
from support.receiver import Call, Receiver
from support.stack import Stack

JOB_FIELDS = {
    "id",
    "internal_id",
    "name",
    "status",
    "interval",
    "interval_text",
    "delay",
    "occurrences",
    "return_url",
    "callback_type",
    "payload",
    "notify_status_not_ok",
    "accepted_at",
    "next_due_at",
    "ended_at",
    "done",
    "succeeded",
    "failed",
    "missed",
}
EXECUTION_FIELDS = {
    "executionId",
    "executionNumber",
    "scheduledAt",
    "claimedAt",
    "startedAt",
    "finishedAt",
    "outcome",
    "missedReason",
    "httpStatus",
    "durationMs",
    "errorKind",
    "error",
    "reportedStatus",
    "attempt",
    "alert",
    "comments",
}
ERROR_FIELDS = {"code", "message", "field", "details"}


@dataclass(frozen=True)
class FinishedJob:
    """A job that ran all of its five executions, shared by the read tests."""

    id: str
    internal_id: int
    path: str
    calls: list[Call]


@pytest.fixture(scope="module")
async def finished_job(stack: Stack, receiver: Receiver) -> FinishedJob:
    path = unique_path("finished")
    async with httpx.AsyncClient(
        base_url=stack.base_url, auth=stack.auth, timeout=10
    ) as client:
        response = await client.post(
            "/set/notifier",
            json={
                "interval": 300,
                "occurrences": 5,
                "name": "five quick calls",
                "payload": '{"report": 7}',
                "callback_type": "put",
                "return_url": receiver.url(path, json_status="done"),
                "notify_status_not_ok": receiver.url(path + "-alerts"),
            },
        )
        assert response.status_code == 201, response.text
        created = response.json()
        calls = await receiver.wait_for_calls(path, 5, timeout_s=10)
        await wait_for_status(client, created["id"], "FINISHED", timeout_s=10)
    return FinishedJob(created["id"], created["internal_id"], path, calls)


@pytest.fixture
async def anonymous(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=10) as client:
        yield client


def unique_path(label: str) -> str:
    return f"/jobs-{label}-{uuid.uuid4().hex[:8]}"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def numbers(body: dict[str, Any]) -> list[int]:
    return [e["executionNumber"] for e in body["executions"]]


def assert_error(response: httpx.Response, code: int, field: str | None) -> None:
    assert response.status_code == code, response.text
    error = response.json()["error"]
    assert set(error) == ERROR_FIELDS
    assert error["code"] == code
    assert error["field"] == field
    assert isinstance(error["message"], str) and error["message"]


async def parked_job(api: httpx.AsyncClient, receiver: Receiver, label: str) -> str:
    """A job whose first slot is a day away, so it never fires during a test."""
    return await create_job(
        api, interval="1h", delay="1d", return_url=receiver.url(unique_path(label))
    )


async def cancel(
    api: httpx.AsyncClient, job_id: str, method: str = "POST"
) -> httpx.Response:
    return await api.request(
        method, "/requests/cancel_task", params={"requestId": job_id}
    )


async def comment(
    api: httpx.AsyncClient, execution_id: str, text: str, path: str = ""
) -> httpx.Response:
    return await api.post(
        path or "/set/execution/comment",
        json={"executionId": execution_id, "comment": text},
    )


# One job ----------------------------------------------------------------------


async def test_get_list_one_job_fields_and_counters(
    api: httpx.AsyncClient, finished_job: FinishedJob, receiver: Receiver
) -> None:
    """A finished job shows its request, counters and every execution, newest first."""
    body = await get_job(api, finished_job.id)

    job = body["job"]
    assert set(job) == JOB_FIELDS
    assert job["id"] == finished_job.id
    assert job["internal_id"] == finished_job.internal_id
    assert job["name"] == "five quick calls"
    assert job["status"] == "FINISHED"
    assert (job["interval"], job["interval_text"], job["delay"]) == (300, "300ms", 0)
    assert job["occurrences"] == 5
    assert job["callback_type"] == "PUT"
    assert job["payload"] == '{"report": 7}'
    assert job["return_url"].startswith(receiver.base_url + finished_job.path)
    assert job["notify_status_not_ok"].endswith(finished_job.path + "-alerts")
    assert job["next_due_at"] is None
    assert parse_iso(job["ended_at"]) > parse_iso(job["accepted_at"])
    assert (job["done"], job["succeeded"], job["failed"], job["missed"]) == (
        5,
        5,
        0,
        0,
    )
    assert body["next_before"] is None
    assert numbers(body) == [5, 4, 3, 2, 1]


async def test_get_list_one_job_executions_recorded(
    api: httpx.AsyncClient, finished_job: FinishedJob
) -> None:
    """Each execution carries its slot, outcome, status, timing and reported status."""
    body = await get_job(api, finished_job.id)

    accepted_at = parse_iso(body["job"]["accepted_at"])
    sent_ids = [call.json()["executionId"] for call in finished_job.calls]
    for execution in body["executions"]:
        assert set(execution) == EXECUTION_FIELDS
        number = execution["executionNumber"]
        assert execution["executionId"] == sent_ids[number - 1]
        assert execution["outcome"] == "succeeded"
        assert execution["httpStatus"] == 200
        assert execution["reportedStatus"] == "done"
        assert execution["attempt"] == 1
        assert execution["comments"] == []
        assert execution["alert"] == {
            "outcome": None,
            "httpStatus": None,
            "error": None,
        }
        assert execution["errorKind"] is None and execution["error"] is None
        assert execution["durationMs"] >= 0
        scheduled_at = parse_iso(execution["scheduledAt"])
        offset = scheduled_at - accepted_at
        assert abs(offset - timedelta(milliseconds=300 * (number - 1))) <= timedelta(
            milliseconds=1
        )
        assert parse_iso(execution["finishedAt"]) >= parse_iso(execution["startedAt"])


async def test_get_list_one_job_pages_with_before_cursor(
    api: httpx.AsyncClient, finished_job: FinishedJob
) -> None:
    """limit and the before cursor walk the executions newest first without gaps."""
    seen: list[int] = []
    params: dict[str, str | int] = {"requestId": finished_job.id, "limit": 2}
    pages = 0
    while True:
        response = await api.get("/requests/get_list", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += numbers(body)
        pages += 1
        if body["next_before"] is None:
            break
        assert body["next_before"] == numbers(body)[-1]
        params["before"] = body["next_before"]

    assert seen == [5, 4, 3, 2, 1]
    assert pages == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"before": 0}, "before"),
        ({"before": "x"}, "before"),
    ],
)
async def test_get_list_one_job_bad_paging_refused(
    api: httpx.AsyncClient,
    finished_job: FinishedJob,
    params: dict[str, str | int],
    field: str,
) -> None:
    """A page size outside 1 to 500 or a bad cursor is a 400 naming it."""
    response = await api.get(
        "/requests/get_list", params={"requestId": finished_job.id, **params}
    )

    assert_error(response, 400, field)


async def test_get_list_one_job_limit_500_accepted(
    api: httpx.AsyncClient, finished_job: FinishedJob
) -> None:
    """The largest page size, 500, is accepted."""
    body = await get_job(api, finished_job.id, limit=500)

    assert numbers(body) == [5, 4, 3, 2, 1]


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-job-id", "1"])
async def test_get_list_unknown_job_not_found(
    api: httpx.AsyncClient, job_id: str
) -> None:
    """An unknown or malformed job id is a 404 with the error body."""
    response = await api.get("/requests/get_list", params={"requestId": job_id})

    assert_error(response, 404, "requestId")
    assert job_id in response.json()["error"]["message"]


async def test_create_location_header_points_at_job(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The Location of a 201 leads to the new job."""
    response = await api.post(
        "/set/notifier",
        json={
            "interval": "1h",
            "delay": "1d",
            "return_url": receiver.url(unique_path("location")),
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()

    shown = await api.get(response.headers["Location"])
    await cancel(api, created["id"])

    assert shown.status_code == 200, shown.text
    assert shown.json()["job"]["id"] == created["id"]
    assert shown.json()["job"]["internal_id"] == created["internal_id"]
    assert isinstance(created["internal_id"], int)


# Job list -----------------------------------------------------------------------


async def test_get_list_jobs_newest_first_paged_and_filtered(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Without requestId: newest first, paged by next_before, filtered by status."""
    created = [await parked_job(api, receiver, "list") for _ in range(3)]
    assert (await cancel(api, created[1])).status_code == 200

    first = (await api.get("/requests/get_list", params={"limit": 2})).json()
    second = (
        await api.get(
            "/requests/get_list", params={"limit": 2, "before": first["next_before"]}
        )
    ).json()
    canceled = (
        await api.get("/requests/get_list", params={"status": "CANCELED", "limit": 500})
    ).json()
    live = (
        await api.get("/requests/get_list", params={"status": "ON_GOING", "limit": 500})
    ).json()
    for job_id in (created[0], created[2]):
        await cancel(api, job_id)

    assert [job["id"] for job in first["jobs"]] == [created[2], created[1]]
    assert first["next_before"] == first["jobs"][-1]["internal_id"]
    assert second["jobs"][0]["id"] == created[0]
    assert set(first["jobs"][0]) == JOB_FIELDS
    internal_ids = [job["internal_id"] for job in first["jobs"] + second["jobs"]]
    assert internal_ids == sorted(internal_ids, reverse=True)
    assert created[1] in [job["id"] for job in canceled["jobs"]]
    assert {job["status"] for job in canceled["jobs"]} == {"CANCELED"}
    assert created[1] not in [job["id"] for job in live["jobs"]]
    assert {job["status"] for job in live["jobs"]} <= {"ON_GOING"}


async def test_get_list_jobs_last_page_has_no_cursor(api: httpx.AsyncClient) -> None:
    """Paging through every job ends with next_before null and repeats no job."""
    seen: list[str] = []
    params: dict[str, str | int] = {"limit": 7}
    while True:
        body = (await api.get("/requests/get_list", params=params)).json()
        seen += [job["id"] for job in body["jobs"]]
        if body["next_before"] is None:
            break
        params["before"] = body["next_before"]

    everything = (await api.get("/requests/get_list", params={"limit": 500})).json()
    assert len(seen) == len(set(seen))
    assert seen[:500] == [job["id"] for job in everything["jobs"]]


@pytest.mark.parametrize("status", ["DONE", "canceled", ""])
async def test_get_list_jobs_bad_status_refused(
    api: httpx.AsyncClient, status: str
) -> None:
    """A status outside PENDING, ON_GOING, FINISHED and CANCELED is a 400."""
    response = await api.get("/requests/get_list", params={"status": status})

    assert_error(response, 400, "status")


# Cancel -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_cancel_task_cancels_then_says_already_canceled(
    api: httpx.AsyncClient, receiver: Receiver, method: str
) -> None:
    """Cancel by GET or POST stops the job; a second cancel says it already was."""
    job_id = await parked_job(api, receiver, "cancel")

    first = await cancel(api, job_id, method)
    second = await cancel(api, job_id, method)
    job = (await get_job(api, job_id))["job"]

    assert first.status_code == 200, first.text
    assert first.json()["id"] == job_id
    assert first.json()["status"] == "CANCELED"
    assert second.status_code == 200, second.text
    assert second.json()["status"] == "CANCELED"
    assert "already" in second.json()["message"]
    assert first.json()["message"] != second.json()["message"]
    assert job["status"] == "CANCELED"
    assert job["next_due_at"] is None
    assert job["ended_at"] is not None


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "nope"])
async def test_cancel_task_unknown_job_not_found(
    api: httpx.AsyncClient, method: str, job_id: str
) -> None:
    """Cancelling an unknown or malformed id is a 404 with the error body."""
    response = await cancel(api, job_id, method)

    assert_error(response, 404, "requestId")


async def test_cancel_task_without_request_id_refused(api: httpx.AsyncClient) -> None:
    """Cancel without requestId is a 400 naming it, not a 500."""
    response = await api.post("/requests/cancel_task")

    assert_error(response, 400, "requestId")


async def test_cancel_task_finished_job_stays_finished(
    api: httpx.AsyncClient, finished_job: FinishedJob
) -> None:
    """Cancelling a finished job answers 200, says so and changes nothing."""
    before = await get_job(api, finished_job.id)

    response = await cancel(api, finished_job.id)
    after = await get_job(api, finished_job.id)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "FINISHED"
    assert "FINISHED" in response.json()["message"]
    assert after["job"]["status"] == "FINISHED"
    assert after["job"]["ended_at"] == before["job"]["ended_at"]


# Comments -----------------------------------------------------------------------


async def test_comment_appended_with_timestamps_in_order(
    api: httpx.AsyncClient, finished_job: FinishedJob
) -> None:
    """Two comments on one execution are both kept, in order, each with its time."""
    execution_id = finished_job.calls[1].json()["executionId"]

    first = await comment(api, execution_id, "report sent")
    second = await comment(
        api, execution_id, "report re-sent", "/set/execution/comment/"
    )
    body = await get_job(api, finished_job.id)

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    assert first.json()["executionId"] == execution_id
    assert first.json()["comment"]["comment"] == "report sent"
    execution = next(e for e in body["executions"] if e["executionId"] == execution_id)
    comments = execution["comments"]
    assert [c["comment"] for c in comments] == ["report sent", "report re-sent"]
    assert [c["at"] for c in comments] == [
        first.json()["comment"]["at"],
        second.json()["comment"]["at"],
    ]
    assert all(c["at"].endswith("Z") for c in comments)
    assert parse_iso(comments[0]["at"]) <= parse_iso(comments[1]["at"])


@pytest.mark.parametrize("execution_id", [str(uuid.uuid4()), "not-an-execution"])
async def test_comment_unknown_execution_not_found(
    api: httpx.AsyncClient, execution_id: str
) -> None:
    """A comment on an unknown execution is a 404 naming executionId."""
    response = await comment(api, execution_id, "hello")

    assert_error(response, 404, "executionId")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"comment": ""}, "comment"),
        ({"comment": "  \n "}, "comment"),
        ({"comment": None}, "comment"),
        ({"comment": 5}, "comment"),
        ({"comment": "x" * 10_001}, "comment"),
        ({"executionId": None}, "executionId"),
    ],
)
async def test_comment_bad_fields_refused(
    api: httpx.AsyncClient,
    finished_job: FinishedJob,
    fields: dict[str, object],
    field: str,
) -> None:
    """An empty, blank, missing or over-long comment is a 400 naming the field."""
    execution_id = finished_job.calls[0].json()["executionId"]
    body = {"executionId": execution_id, "comment": "ok", **fields}

    response = await api.post("/set/execution/comment", json=body)

    assert_error(response, 400, field)


async def test_comment_body_not_json_refused(api: httpx.AsyncClient) -> None:
    """A comment body that is not a JSON object is a 400 naming body."""
    response = await api.post(
        "/set/execution/comment/",
        content=b"[1, 2]",
        headers={"Content-Type": "application/json"},
    )

    assert_error(response, 400, "body")


# Health -------------------------------------------------------------------------


async def test_health_reports_dependencies_and_consumer(
    anonymous: httpx.AsyncClient, stack: Stack
) -> None:
    """/health needs no credentials and lists Postgres, Kafka and the consumer."""
    response = await anonymous.get("/health")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert body["down"] == []
    assert body["postgres"]["ok"] is True
    assert body["kafka"]["ok"] is True
    consumers = body["consumers"]
    live_pids = {p.pid for p in stack.consumers if p.poll() is None}
    assert {c["pid"] for c in consumers} == live_pids
    partitions = sorted(p for c in consumers for p in c["partitions"])
    assert partitions == list(range(6))
    for consumer in consumers:
        assert consumer["consumer"] and consumer["host"]
        assert parse_iso(consumer["heartbeat_at"]) is not None


# Signed links -------------------------------------------------------------------


def with_token(link: str, job_id: str, token: str) -> str:
    parts = urlsplit(link)
    query = urlencode({"requestId": job_id, "token": token})
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{query}"


def token_of(link: str) -> str:
    return parse_qs(urlsplit(link).query)["token"][0]


async def test_signed_links_work_without_credentials(
    api: httpx.AsyncClient, anonymous: httpx.AsyncClient, receiver: Receiver
) -> None:
    """showRequest and cancelLink from a real callback work without credentials."""
    path = unique_path("links")
    job_id = await create_job(api, interval="1h", return_url=receiver.url(path))
    document = (await receiver.wait_for_calls(path, 1, timeout_s=5))[0].json()

    shown = await anonymous.get(document["showRequest"])
    canceled = await anonymous.get(document["cancelLink"])
    again = await anonymous.post(document["cancelLink"])
    after = await anonymous.get(document["showRequest"])

    assert shown.status_code == 200, shown.text
    assert shown.json()["job"]["id"] == job_id
    assert [e["executionNumber"] for e in shown.json()["executions"]] == [1]
    assert canceled.status_code == 200, canceled.text
    assert canceled.json() == {
        "id": job_id,
        "status": "CANCELED",
        "message": "job canceled",
    }
    assert again.status_code == 200 and "already" in again.json()["message"]
    assert after.json()["job"]["status"] == "CANCELED"


async def test_signed_links_refuse_altered_or_borrowed_tokens(
    api: httpx.AsyncClient, anonymous: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A tampered token, another job's id, or the other action's token is a 403."""
    path = unique_path("forged")
    job_id = await create_job(api, interval="1h", return_url=receiver.url(path))
    other_id = await parked_job(api, receiver, "forged-other")
    document = (await receiver.wait_for_calls(path, 1, timeout_s=5))[0].json()
    show_link, cancel_link = document["showRequest"], document["cancelLink"]
    show_token, cancel_token = token_of(show_link), token_of(cancel_link)
    flipped = show_token[:-1] + ("0" if show_token[-1] != "0" else "1")

    forged_links = [
        with_token(show_link, job_id, flipped),
        with_token(show_link, job_id, show_token.upper() + "a"),
        with_token(show_link, job_id, ""),
        with_token(show_link, other_id, show_token),
        with_token(cancel_link, other_id, cancel_token),
        with_token(cancel_link, job_id, show_token),
        with_token(show_link, job_id, cancel_token),
    ]
    responses = [await anonymous.get(link) for link in forged_links]
    statuses = [
        (await get_job(api, job_id))["job"]["status"],
        (await get_job(api, other_id))["job"]["status"],
    ]
    await cancel(api, job_id)
    await cancel(api, other_id)

    for response in responses:
        assert_error(response, 403, "token")
    assert "CANCELED" not in statuses


async def test_signed_link_token_does_not_open_job_list(
    anonymous: httpx.AsyncClient,
) -> None:
    """A job's token without its requestId grants nothing: the job list needs auth."""
    response = await anonymous.get(
        "/requests/get_list", params={"token": "0" * 40, "status": "FINISHED"}
    )

    assert response.status_code == 401, response.text
