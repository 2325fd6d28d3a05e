"""Field case C7: a redirect is a failure with its own status, never followed."""

from __future__ import annotations

import asyncio

import httpx

from support.jobs import create_job
from support.observe import alerts_recorded, wait_for_job
from support.receiver import Receiver

FINAL = "/redirects-final"


async def test_redirects_are_recorded_as_failures_and_never_followed(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """Each 3xx, a loop and a hop to another host fail with that code, alerting once."""
    async with Receiver() as other_host:
        redirects = {
            f"/redirects-{code}": (code, {"redirect": code, "to": FINAL})
            for code in (301, 302, 303, 307, 308)
        }
        redirects["/redirects-loop"] = (302, {"redirect": 302, "loop": 1})
        redirects["/redirects-other-host"] = (
            302,
            {"redirect": 302, "to": other_host.url("/redirects-elsewhere")},
        )
        jobs = {
            path: await create_job(
                api,
                interval=1000,
                occurrences=1,
                return_url=receiver.url(path, **behaviour),
                notify_status_not_ok=receiver.url(f"{path}-alerts"),
            )
            for path, (_, behaviour) in redirects.items()
        }

        bodies = await asyncio.gather(
            *(
                wait_for_job(api, job_id, alerts_recorded, 10, "recorded alert")
                for job_id in jobs.values()
            )
        )

        assert receiver.calls_to(FINAL) == []
        assert other_host.calls == []

    for (path, job_id), body in zip(jobs.items(), bodies, strict=True):
        code, _ = redirects[path]
        calls = receiver.calls_to(path)
        assert [call.method for call in calls] == ["POST"], path
        [execution] = body["executions"]
        assert execution["executionId"] == calls[0].json()["executionId"]
        assert execution["httpStatus"] == code, path
        assert execution["outcome"] == "failed", path
        assert execution["alert"]["outcome"] == "sent", path

        [alert] = receiver.calls_to(f"{path}-alerts")
        document = alert.json()
        assert document["parentRequestId"] == job_id
        assert document["executionId"] == execution["executionId"]
        assert document["callback_status_code"] == code, path
