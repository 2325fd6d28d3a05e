"""Writing execution outcomes in small batches, retrying while Postgres is down."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from loopitis.dependency import DependencyState
from loopitis.errors import StorageUnavailable
from loopitis.storage.claims import AlertOutcome, Outcome, record_outcomes

log = logging.getLogger(__name__)
FLUSH_EVERY_S = 0.02
MAX_BATCH = 500


class Recorder:
    """Collects outcomes and writes them together; nothing is dropped on error."""

    def __init__(self, pool: asyncpg.Pool, postgres: DependencyState) -> None:
        self._pool = pool
        self._postgres = postgres
        self._outcomes: list[Outcome] = []
        self._alerts: list[AlertOutcome] = []
        self._pending = asyncio.Event()
        self._flushed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="recorder")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        await self.flush()
        if self._task:
            self._task.cancel()

    def record(self, outcome: Outcome) -> None:
        self._outcomes.append(outcome)
        self._pending.set()

    def record_alert(self, alert: AlertOutcome) -> None:
        self._alerts.append(alert)
        self._pending.set()

    @property
    def backlog(self) -> int:
        return len(self._outcomes) + len(self._alerts)

    async def flush(self) -> None:
        """Return once everything queued before the call is written."""
        while self.backlog:
            self._pending.set()
            async with self._flushed:
                await self._flushed.wait()

    async def _run(self) -> None:
        while True:
            await self._pending.wait()
            await asyncio.sleep(FLUSH_EVERY_S)
            await self._write_batch()

    async def _write_batch(self) -> None:
        outcomes, self._outcomes = (
            self._outcomes[:MAX_BATCH],
            self._outcomes[MAX_BATCH:],
        )
        alerts, self._alerts = self._alerts[:MAX_BATCH], self._alerts[MAX_BATCH:]
        try:
            await record_outcomes(self._pool, outcomes, alerts)
        except asyncpg.TransactionRollbackError as exc:
            # A deadlock or serialization failure with another writer of the
            # same job rows: nothing was written, the next round writes it.
            log.warning("outcome batch rolled back (%s); writing it again", exc)
            self._outcomes[:0] = outcomes
            self._alerts[:0] = alerts
            return
        except StorageUnavailable as exc:
            self._postgres.mark_down(str(exc))
            # Put the batch back in front: order matters for the job counters.
            self._outcomes[:0] = outcomes
            self._alerts[:0] = alerts
            await asyncio.sleep(1.0)
            return
        self._postgres.mark_up()
        if not self.backlog:
            self._pending.clear()
        async with self._flushed:
            self._flushed.notify_all()
