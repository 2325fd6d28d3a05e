"""Reports, /metrics and request ids against a running gateway and consumers."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from loopitis.local.ports import free_port
from loopitis.logs import JsonFormatter, request_id
from support.database import create_database
from support.jobs import create_job, wait_for_status
from support.receiver import Receiver
from support.stack import Stack, stack_env

# A concrete job id or a receiver's URL in a label would grow without bound.
_UNBOUNDED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-|https?://|127\.0\.0\.1")
FAMILIES_OF_CONSUMERS = (
    "loopitis_callbacks_total",
    "loopitis_callback_duration_seconds_bucket",
    "loopitis_callback_lateness_seconds_bucket",
    "loopitis_calls_in_flight",
    "loopitis_owned_partitions",
    "loopitis_alerts_total",
    "loopitis_dependency_errors_total",
)
FAMILIES_OF_GATEWAY = (
    "loopitis_jobs{",
    "loopitis_executions_recent{",
    "loopitis_consumers_live",
    "loopitis_group_calls_in_flight",
    "loopitis_group_owned_partitions",
    "loopitis_recent_lateness_seconds",
    "loopitis_http_requests_total",
    "loopitis_dependency_errors_total",
)


def _samples(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def test_report_counts_outcomes_of_a_finished_job(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """The JSON report and the CSV agree with what the job recorded."""
    job_id = await create_job(
        api,
        interval="300ms",
        occurrences=4,
        name="reported job",
        return_url=receiver.url("/report", status=500),
    )
    await wait_for_status(api, job_id, "FINISHED", timeout_s=20)

    report = (await api.get("/reports", params={"requestId": job_id})).json()
    assert report["executions"] == 4
    assert report["by_outcome"]["failed"] == 4
    assert report["success_rate"] == 0.0
    assert report["duration_ms"]["p50"] is not None
    assert report["top_failing_jobs"][0]["id"] == job_id
    assert report["top_failing_targets"][0]["target"].startswith("127.0.0.1:")

    response = await api.get("/reports.csv", params={"requestId": job_id})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["job_id"], r["failed"], r["succeeded"]) for r in rows] == [
        (job_id, "4", "0")
    ]


async def test_report_refuses_an_empty_range(api: httpx.AsyncClient) -> None:
    """A range that ends before it starts is a 400 naming ``from``."""
    response = await api.get(
        "/reports", params={"from": "2026-01-02T00:00:00Z", "to": "2026-01-01"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "from"


async def test_gateway_metrics_show_database_gauges(
    api: httpx.AsyncClient, receiver: Receiver
) -> None:
    """/metrics needs credentials and shows jobs by status and recent outcomes."""
    job_id = await create_job(
        api, interval="300ms", occurrences=2, return_url=receiver.url("/metered")
    )
    await wait_for_status(api, job_id, "FINISHED", timeout_s=20)
    anonymous = await api.get("/metrics", auth=None)
    assert anonymous.status_code == 401

    text = (await api.get("/metrics")).text
    for family in FAMILIES_OF_GATEWAY:
        assert family in text, family
    samples = _samples(text)
    assert samples['loopitis_jobs{status="FINISHED"}'] >= 1
    assert (
        samples['loopitis_executions_recent{outcome="succeeded",status_class="2xx"}']
        >= 2
    )
    assert samples["loopitis_group_owned_partitions"] == 6
    unbounded = [name for name in samples if _UNBOUNDED.search(name)]
    assert unbounded == [], "a job id or URL became a label"


async def test_gateway_answers_with_a_request_id(api: httpx.AsyncClient) -> None:
    """Each answer carries a request id; a caller's own plain id is kept."""
    generated = await api.get("/requests/get_list")
    assert len(generated.headers["x-request-id"]) == 16
    kept = await api.get("/requests/get_list", headers={"X-Request-ID": "trace-42"})
    assert kept.headers["x-request-id"] == "trace-42"


@pytest.fixture(scope="module")
def metered_stack(
    postgres_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, int]]:
    """A stack of its own (own database and topic) whose consumer serves metrics."""
    database_url = asyncio.run(create_database(postgres_url))
    topic = f"loopitis-metrics-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = stack_env(
        database_url,
        kafka_bootstrap,
        topic,
        LOOPITIS_KAFKA_PARTITIONS="2",
        LOOPITIS_METRICS_PORT=str(port),
    )
    running = Stack(env, tmp_path_factory.mktemp("metered"), free_port())
    running.env["LOOPITIS_PUBLIC_URL"] = running.base_url
    try:
        running.start_gateway()
        running.start_consumer()
        running.wait_for_partitions(2)
        yield running, port
    finally:
        running.stop()


async def test_consumer_metrics_count_callbacks_and_alerts(
    metered_stack: tuple[Stack, int], receiver: Receiver
) -> None:
    """A consumer's /metrics counts callbacks by outcome and status class."""
    stack, port = metered_stack
    async with httpx.AsyncClient(base_url=stack.base_url, auth=stack.auth) as api:
        ok = await create_job(
            api, interval="300ms", occurrences=3, return_url=receiver.url("/m-ok")
        )
        bad = await create_job(
            api,
            interval="300ms",
            occurrences=2,
            return_url=receiver.url("/m-bad", status=503),
            notify_status_not_ok=receiver.url("/m-alert"),
        )
        await wait_for_status(api, ok, "FINISHED", timeout_s=20)
        await wait_for_status(api, bad, "FINISHED", timeout_s=20)
        await receiver.wait_for_calls("/m-alert", count=2, timeout_s=10)
        metrics = await api.get(f"http://127.0.0.1:{port}/metrics", auth=None)

    text = metrics.text
    for family in FAMILIES_OF_CONSUMERS:
        assert family in text, family
    samples = _samples(text)
    assert (
        samples['loopitis_callbacks_total{outcome="succeeded",status_class="2xx"}'] == 3
    )
    assert samples['loopitis_callbacks_total{outcome="failed",status_class="5xx"}'] == 2
    assert samples["loopitis_callback_duration_seconds_count"] == 5
    assert samples["loopitis_owned_partitions"] == 2
    assert samples.get('loopitis_alerts_total{outcome="sent"}', 0) >= 1


def test_json_log_lines_carry_the_request_id() -> None:
    """A line logged while a request is served names that request's id."""
    record = logging.LogRecord("loopitis", logging.INFO, __file__, 1, "hi", (), None)
    token = request_id.set("abc123")
    try:
        inside = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    outside = json.loads(JsonFormatter().format(record))
    assert inside["request_id"] == "abc123"
    assert "request_id" not in outside
