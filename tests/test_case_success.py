"""Field case C8: any 2xx is success, each code is stored, bodies are read safely."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from support.jobs import create_job
from support.observe import alerts_recorded, wait_for_job
from support.receiver import Receiver

ENVELOPE_FIELDS = {
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
# path suffix -> (callback method, receiver behaviour, status the receiver answers)
ANSWERS: dict[str, tuple[str, dict[str, object], int]] = {
    "empty-200": ("POST", {}, 200),
    "text-200": ("POST", {"body": "all good"}, 200),
    "json-201": (
        "POST",
        {"status": 201, "body": '{"id": 7}', "content_type": "application/json"},
        201,
    ),
    "accepted-202": ("POST", {"status": 202}, 202),
    "no-content-204": ("POST", {"status": 204}, 204),
    "not-found-404": ("POST", {"status": 404}, 404),
    "broken-500": ("POST", {"status": 500}, 500),
    "put-204": ("PUT", {"status": 204}, 204),
    "delete-204": ("DELETE", {"status": 204}, 204),
    "get-204": ("GET", {"status": 204}, 204),
}


async def run_once(
    api: httpx.AsyncClient, receiver: Receiver, path: str, **fields: object
) -> dict[str, Any]:
    """Create a one-shot job alerting to ``path``-alerts and await its final state."""
    job_id = await create_job(
        api,
        interval=1000,
        occurrences=1,
        notify_status_not_ok=receiver.url(f"{path}-alerts"),
        **fields,
    )
    return await wait_for_job(api, job_id, alerts_recorded, 10, "final state")


async def test_success_each_code_is_stored_and_only_failures_alert(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """2xx answers succeed without an alert; 404 and 500 fail with one alert each."""
    paths = {name: f"/success-{name}" for name in ANSWERS}
    bodies = await asyncio.gather(
        *(
            run_once(
                api,
                receiver,
                paths[name],
                return_url=receiver.url(paths[name], **behaviour),
                callback_type=method,
            )
            for name, (method, behaviour, _) in ANSWERS.items()
        )
    )

    for (name, (method, _, status)), body in zip(ANSWERS.items(), bodies, strict=True):
        [call] = receiver.calls_to(paths[name])
        assert call.method == method, name
        [execution] = body["executions"]
        assert execution["executionId"] == call.headers["Loopitis-Execution-Id"]
        assert execution["httpStatus"] == status, name
        assert execution["reportedStatus"] is None, name
        alerts = receiver.calls_to(f"{paths[name]}-alerts")
        if 200 <= status < 300:
            assert execution["outcome"] == "succeeded", name
            assert execution["alert"]["outcome"] is None, name
            assert alerts == [], name
        else:
            assert execution["outcome"] == "failed", name
            assert execution["alert"]["outcome"] == "sent", name
            [alert] = alerts
            assert alert.json()["callback_status_code"] == status


async def test_success_query_callbacks_append_every_field_to_the_existing_query(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """GET and DELETE carry every field as a query parameter after the URL's own."""
    payload = "a=1&b=two words/ü?#"
    for method in ("GET", "DELETE"):
        path = f"/success-query-{method.lower()}"
        body = await run_once(
            api,
            receiver,
            path,
            return_url=receiver.url(path, a=1),
            callback_type=method,
            name=f"query {method}",
            payload=payload,
        )

        [call] = receiver.calls_to(path)
        [execution] = body["executions"]
        assert call.method == method
        assert call.body == b""
        assert "Content-Type" not in call.headers
        assert set(call.query) == ENVELOPE_FIELDS | {"a"}
        assert all(len(values) == 1 for values in call.query.values())
        assert call.param("a") == "1"
        assert call.param("parentRequestId") == body["job"]["id"]
        assert call.param("parentRequestName") == f"query {method}"
        assert call.param("requestedTimes") == "1"
        assert call.param("executionNumber") == "1"
        assert call.param("executionId") == execution["executionId"]
        assert call.param("payload") == payload
        assert call.param("scheduledAt") == execution["scheduledAt"]
        for link in ("showRequest", "cancelLink"):
            assert f"requestId={body['job']['id']}" in (call.param(link) or "")
        assert execution["outcome"] == "succeeded"


async def test_success_answer_bodies_are_read_for_status_and_capped(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """A JSON status is stored as reportedStatus; a 200 kB answer is recorded fine."""
    answers: dict[str, tuple[dict[str, object], str | None]] = {
        "/success-json-status": ({"json_status": "ok"}, "ok"),
        "/success-number-status": (
            {"body": '{"status": 5}', "content_type": "application/json"},
            None,
        ),
        "/success-big": ({"big": 200_000}, None),
    }
    bodies = await asyncio.gather(
        *(
            run_once(api, receiver, path, return_url=receiver.url(path, **behaviour))
            for path, (behaviour, _) in answers.items()
        )
    )

    for (path, (_, reported)), body in zip(answers.items(), bodies, strict=True):
        assert len(receiver.calls_to(path)) == 1
        [execution] = body["executions"]
        assert execution["outcome"] == "succeeded", path
        assert execution["httpStatus"] == 200, path
        assert execution["reportedStatus"] == reported, path
        assert execution["durationMs"] < 2000, path
        assert receiver.calls_to(f"{path}-alerts") == []
