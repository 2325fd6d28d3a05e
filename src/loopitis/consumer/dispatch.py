"""Firing claimed executions: bounded concurrency, one INFO line each, alerts."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
import time
from dataclasses import dataclass

import aiohttp

from loopitis.consumer import metrics
from loopitis.consumer.callback import CallResult, send
from loopitis.consumer.recorder import Recorder
from loopitis.consumer.signing import Signer
from loopitis.model.envelope import Envelope, iso_utc
from loopitis.model.job import BODY_METHODS
from loopitis.model.links import signed_link
from loopitis.storage.claims import AlertOutcome, Outcome

log = logging.getLogger(__name__)
# Signed links depend only on the job; recent jobs' links are kept, not recomputed
# (two HMACs and two URL encodings per call otherwise). Bounded, so memory does
# not grow with the number of jobs.
LINK_CACHE_SIZE = 16_384
execution_context: contextvars.ContextVar[str] = contextvars.ContextVar(
    "execution", default="-"
)


@dataclass(frozen=True, slots=True)
class Firing:
    """One claimed execution, ready to be sent."""

    job_id: str
    partition: int
    job_name: str | None
    return_url: str
    method: str
    payload: str | None
    notify_url: str | None
    occurrences: int | None
    number: int
    execution_id: str
    due_ms: int
    attempt: int


class Dispatcher:
    """Runs callbacks as tasks; at most ``concurrency`` calls are in flight."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        recorder: Recorder,
        *,
        concurrency: int,
        timeout_s: float,
        public_url: str,
        link_secret: bytes,
        signer: Signer,
    ) -> None:
        self._session = session
        self._recorder = recorder
        self._slots = asyncio.Semaphore(concurrency)
        self._timeout_s = timeout_s
        self._public_url = public_url
        self._link_secret = link_secret
        self._signer = signer
        self._in_flight: dict[str, tuple[int, asyncio.Task[None]]] = {}
        self._links = functools.lru_cache(maxsize=LINK_CACHE_SIZE)(self._signed_links)
        metrics.IN_FLIGHT.set_function(lambda: len(self._in_flight))

    def is_in_flight(self, job_id: str) -> bool:
        return job_id in self._in_flight

    @property
    def calls_in_flight(self) -> int:
        return len(self._in_flight)

    def fire(self, firing: Firing) -> None:
        """Send ``firing`` at its due time (at once if that has passed)."""
        task = asyncio.create_task(
            self._run(firing), name=f"call {firing.execution_id}"
        )
        self._in_flight[firing.job_id] = (firing.partition, task)
        task.add_done_callback(lambda _: self._in_flight.pop(firing.job_id, None))

    async def drain(self, partitions: set[int] | None, timeout_s: float) -> int:
        """Wait for the calls of ``partitions`` (None: all); returns how many remain."""
        tasks = [
            task
            for partition, task in self._in_flight.values()
            if partitions is None or partition in partitions
        ]
        if not tasks:
            return 0
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        return len(pending)

    async def _run(self, firing: Firing) -> None:
        execution_context.set(firing.execution_id)
        # Slots are claimed a little ahead of time; the call leaves on time. The
        # loop's timers have millisecond steps and may wake a little early
        # (it waits for a moment, not an event, hence the noqa).
        while (early_s := firing.due_ms / 1000 - time.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(early_s)
        async with self._slots:
            result = await self._send_callback(firing)
        self._recorder.record(_outcome(firing, result))
        metrics.observe_callback(
            result.outcome,
            result.http_status,
            result.duration_ms,
            result.started_ms - firing.due_ms,
        )
        _log_execution(firing, result)
        if not result.ok and firing.notify_url:
            alert = await self._send_alert(firing, result)
            self._recorder.record_alert(alert)
            metrics.ALERTS.labels(alert.outcome).inc()

    async def _send_callback(self, firing: Firing) -> CallResult:
        envelope = self._envelope(firing)
        body = envelope.json_body() if firing.method in BODY_METHODS else None
        url = (
            firing.return_url
            if body is not None
            else envelope.query_url(firing.return_url)
        )
        # The execution id is the message id: a re-sent slot keeps it, so a
        # receiver can de-duplicate. Without a body the empty body is signed.
        headers = {
            "Loopitis-Execution-Id": firing.execution_id,
            "Loopitis-Attempt": str(firing.attempt),
            **self._signer.headers(firing.execution_id, body or b""),
        }
        return await send(
            self._session, firing.method, url, body, headers, self._timeout_s
        )

    async def _send_alert(self, firing: Firing, result: CallResult) -> AlertOutcome:
        assert firing.notify_url is not None
        body = {
            "parentRequestId": firing.job_id,
            "executionId": firing.execution_id,
            "callback_status_code": result.http_status,
            "executionNumber": firing.number,
            "parentRequestName": firing.job_name,
            "error": result.error,
            "scheduledAt": iso_utc(firing.due_ms),
        }
        encoded = json.dumps(body, ensure_ascii=False).encode()
        headers = {
            "Loopitis-Execution-Id": firing.execution_id,
            **self._signer.headers(f"alert-{firing.execution_id}", encoded),
        }
        alert = await send(
            self._session,
            "POST",
            firing.notify_url,
            encoded,
            headers,
            self._timeout_s,
        )
        if not alert.ok:
            log.warning(
                "alert for job %s execution %d failed: %s",
                firing.job_id,
                firing.number,
                alert.error,
            )
        return AlertOutcome(
            firing.execution_id,
            "sent" if alert.ok else "failed",
            alert.http_status,
            alert.error,
        )

    def _envelope(self, firing: Firing) -> Envelope:
        show_link, cancel_link = self._links(firing.job_id)
        return Envelope(
            job_id=firing.job_id,
            job_name=firing.job_name,
            requested_times=firing.occurrences,
            execution_number=firing.number,
            execution_id=firing.execution_id,
            payload=firing.payload,
            show_link=show_link,
            cancel_link=cancel_link,
            scheduled_ms=firing.due_ms,
        )

    def _signed_links(self, job_id: str) -> tuple[str, str]:
        return (
            signed_link(self._public_url, self._link_secret, "show", job_id),
            signed_link(self._public_url, self._link_secret, "cancel", job_id),
        )


def _outcome(firing: Firing, result: CallResult) -> Outcome:
    return Outcome(
        execution_id=firing.execution_id,
        outcome=result.outcome,
        http_status=result.http_status,
        error_kind=result.error_kind,
        error=result.error,
        started_ms=result.started_ms,
        duration_ms=result.duration_ms,
        reported_status=result.reported_status,
    )


def _log_execution(firing: Firing, result: CallResult) -> None:
    log.info(
        "execution job=%s number=%d outcome=%s status=%s duration_ms=%.1f "
        "lateness_ms=%.1f attempt=%d%s",
        firing.job_id,
        firing.number,
        result.outcome,
        result.http_status if result.http_status is not None else "-",
        result.duration_ms,
        result.started_ms - firing.due_ms,
        firing.attempt,
        f" error={result.error!r}" if result.error else "",
    )
