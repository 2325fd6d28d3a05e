"""The time-ordered window of upcoming slots of the jobs this consumer owns.

Only jobs due within ``window_ms`` are held in memory, in one heap; the rest
stay in Postgres and are loaded from the (partition, next_due_at) index as the
window moves on. Due slots are claimed in batches, then fired.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from loopitis.consumer.dispatch import Dispatcher, Firing
from loopitis.consumer.recorder import Recorder
from loopitis.dependency import DependencyState
from loopitis.errors import StorageUnavailable
from loopitis.model.job import MissedReason, Outcome
from loopitis.model.schedule import Schedule, plan_catch_up
from loopitis.storage import claims as store
from loopitis.storage.claims import Claim, MissedRange

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 2
MAX_CLAIM_BATCH = 1000
REFILL_EVERY_S = 1.0
# Slots are claimed this long before they are due, and the scheduler claims
# at most every CLAIM_EVERY_S: one statement then covers every slot that fell
# into the horizon meanwhile, instead of one round trip per slot under a
# smooth load. Each claimed call waits for its due time in the dispatcher.
CLAIM_AHEAD_MS = 100
CLAIM_EVERY_S = 0.02


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class OwnedJob:
    """A job in the window, with the next slot it will claim."""

    id: str
    partition: int
    schedule: Schedule
    next_number: int
    name: str | None
    return_url: str
    method: str
    payload: str | None
    notify_url: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OwnedJob:
        anchor_ms = store.epoch_ms(row["accepted_at"]) + row["delay_ms"]
        return cls(
            id=row["id"],
            partition=row["partition"],
            schedule=Schedule(anchor_ms, row["interval_ms"], row["occurrences"]),
            next_number=row["next_number"],
            name=row["name"],
            return_url=row["return_url"],
            method=row["callback_type"],
            payload=row["payload"],
            notify_url=row["notify_url"],
        )

    def firing(self, number: int, execution_id: str, attempt: int) -> Firing:
        return Firing(
            job_id=self.id,
            partition=self.partition,
            job_name=self.name,
            return_url=self.return_url,
            method=self.method,
            payload=self.payload,
            notify_url=self.notify_url,
            occurrences=self.schedule.occurrences,
            number=number,
            execution_id=execution_id,
            due_ms=self.schedule.due_ms(number),
            attempt=attempt,
        )


@dataclass(slots=True)
class _Batch:
    claims: list[Claim] = field(default_factory=list)
    ranges: list[MissedRange] = field(default_factory=list)
    to_fire: dict[str, tuple[OwnedJob, int]] = field(default_factory=dict)


class Scheduler:
    """Owns the window; ``assign``/``revoke`` follow Kafka's partition ownership."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dispatcher: Dispatcher,
        recorder: Recorder,
        postgres: DependencyState,
        *,
        owner: str,
        window_ms: int,
        grace_s: float,
    ) -> None:
        self._pool = pool
        self._dispatcher = dispatcher
        self._recorder = recorder
        self._postgres = postgres
        self._owner = owner
        self._window_ms = window_ms
        self._grace_s = grace_s
        self._jobs: dict[str, OwnedJob] = {}
        self._heap: list[tuple[int, int, str]] = []
        self.owned: set[int] = set()
        self._unloaded: set[int] = set()
        self._horizon_ms = now_ms()
        self._wake = asyncio.Event()
        self._refill_now = asyncio.Event()
        # Held while claiming and firing, so a revoke never misses a call
        # that was claimed for a partition it is giving up.
        self._claiming = asyncio.Lock()
        self._stopping = False
        # Set whenever the owned partitions change, so health shows it at once.
        self.ownership_changed = asyncio.Event()

    @property
    def jobs_scheduled(self) -> int:
        return len(self._jobs)

    # Ownership -------------------------------------------------------------

    def assign(self, partitions: Iterable[int]) -> None:
        """Take partitions; their jobs are loaded by the refill loop at once."""
        added = set(partitions) - self.owned
        self.owned |= added
        self._unloaded |= added
        self._refill_now.set()
        self.ownership_changed.set()

    async def revoke(self, partitions: Iterable[int]) -> None:
        """Stop firing the jobs of ``partitions``; let their calls finish first."""
        lost = set(partitions) & self.owned
        if not lost:
            return
        async with self._claiming:
            self.owned -= lost
            self._unloaded -= lost
            for job_id in [j.id for j in self._jobs.values() if j.partition in lost]:
                del self._jobs[job_id]
        self.ownership_changed.set()
        left = await self._dispatcher.drain(lost, self._grace_s)
        await self._recorder.flush()
        log.info(
            "released partitions %s (%d calls still in flight)", sorted(lost), left
        )

    def cancel(self, job_id: str) -> None:
        if self._jobs.pop(job_id, None) is not None:
            log.info("job %s canceled; no further slots", job_id)

    async def add(self, job_id: str) -> None:
        """A created event: load the job if it is ours and due within the window."""
        if job_id in self._jobs:
            return
        row = await store.load_job(self._pool, job_id)
        if row is None or row["partition"] not in self.owned:
            return
        await self._adopt([row])

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._refill_now.set()

    # Refill ----------------------------------------------------------------

    async def refill_forever(self) -> None:
        while not self._stopping:
            try:
                await self._refill()
                self._postgres.mark_up()
            except StorageUnavailable as exc:
                self._postgres.mark_down(str(exc))
            await _wait(self._refill_now, REFILL_EVERY_S)

    async def _refill(self) -> None:
        if self._unloaded:
            await self._load_partitions(set(self._unloaded))
        if not self.owned:
            return
        old_horizon, new_horizon = self._horizon_ms, now_ms() + self._window_ms
        rows = await store.load_due_jobs(
            self._pool, sorted(self.owned), old_horizon, new_horizon
        )
        self._horizon_ms = new_horizon
        await self._adopt([row for row in rows if row["id"] not in self._jobs])

    async def _load_partitions(self, partitions: set[int]) -> None:
        started = time.monotonic()
        await self._take_over(partitions)
        horizon = max(self._horizon_ms, now_ms() + self._window_ms)
        rows = await store.load_due_jobs(self._pool, sorted(partitions), None, horizon)
        await self._adopt([row for row in rows if row["id"] not in self._jobs])
        self._unloaded -= partitions
        log.info(
            "took partitions %s: %d jobs due within the window, loaded in %.0f ms",
            sorted(partitions),
            len(rows),
            (time.monotonic() - started) * 1000,
        )

    async def _take_over(self, partitions: set[int]) -> None:
        """Re-send, once, the calls an owner that died left in flight."""
        rows = await store.take_over_running(
            self._pool, sorted(partitions), self._owner, MAX_ATTEMPTS
        )
        for row in rows:
            await self._resume(row)

    async def _resume(self, row: dict[str, Any]) -> None:
        if row["give_up"]:
            self._recorder.record(_abandoned(row))
            return
        job_row = await store.load_job(self._pool, row["job_id"])
        if job_row is None:
            return
        job = OwnedJob.from_row(job_row)
        log.warning(
            "job %s execution %d was in flight on a lost owner; re-sending as "
            "attempt %d",
            job.id,
            row["number"],
            row["attempt"],
        )
        self._dispatcher.fire(job.firing(row["number"], row["id"], row["attempt"]))

    async def _adopt(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        pending = [row["id"] for row in rows if row["status"] == "PENDING"]
        if pending:
            await store.activate_jobs(self._pool, pending)
        for row in rows:
            if row["partition"] in self.owned:
                self._push(OwnedJob.from_row(row))
        self._wake.set()

    def _push(self, job: OwnedJob) -> None:
        if job.partition not in self.owned or not job.schedule.has_slot(
            job.next_number
        ):
            self._jobs.pop(job.id, None)
            return
        due_ms = job.schedule.due_ms(job.next_number)
        if due_ms >= self._horizon_ms:
            # Beyond the window: Postgres remembers it, the refill brings it back.
            self._jobs.pop(job.id, None)
            return
        self._jobs[job.id] = job
        heapq.heappush(self._heap, (due_ms, job.next_number, job.id))

    # Firing ----------------------------------------------------------------

    async def run(self) -> None:
        """Wait until a slot nears its due time, claim every such slot, fire them
        (each call waits for its own due time), repeat."""
        while not self._stopping:
            wait_s = self._seconds_until_next()
            if wait_s > 0:
                await _wait(self._wake, wait_s)
                continue
            async with self._claiming:
                batch = self._collect_due()
                if batch.claims or batch.ranges:
                    await self._claim_and_fire(batch)
            await asyncio.sleep(CLAIM_EVERY_S)

    def _seconds_until_next(self) -> float:
        if not self._heap:
            return 1.0
        return (self._heap[0][0] - CLAIM_AHEAD_MS - now_ms()) / 1000

    def _collect_due(self) -> _Batch:
        batch = _Batch()
        now = now_ms()
        horizon = now + CLAIM_AHEAD_MS
        deferred: list[tuple[int, int, str]] = []
        while self._heap and self._heap[0][0] <= horizon:
            if len(batch.claims) >= MAX_CLAIM_BATCH:
                break
            entry = heapq.heappop(self._heap)
            due_ms, number, job_id = entry
            job = self._jobs.get(job_id)
            if job is None or job.next_number != number:
                continue  # canceled, revoked, or an older entry of this job
            if due_ms > now and self._dispatcher.is_in_flight(job_id):
                # Whether the slot overlaps the job's previous call is decided
                # at its due time, as if it had not been planned ahead.
                deferred.append(entry)
                continue
            self._plan(job, now, batch)
        for entry in deferred:
            heapq.heappush(self._heap, entry)
        return batch

    def _plan(self, job: OwnedJob, now: int, batch: _Batch) -> None:
        catch_up = plan_catch_up(job.schedule, job.next_number, now)
        if catch_up.missed_count:
            batch.ranges.append(
                MissedRange(
                    job.id,
                    catch_up.missed_first,
                    catch_up.missed_last,
                    job.schedule.anchor_ms,
                    job.schedule.interval_ms,
                    MissedReason.SCHEDULER_UNAVAILABLE,
                )
            )
        number = catch_up.fire_number
        overlap = self._dispatcher.is_in_flight(job.id)
        following = number + 1
        next_due = (
            job.schedule.due_ms(following) if job.schedule.has_slot(following) else None
        )
        claim = Claim(
            job_id=job.id,
            number=number,
            due_ms=job.schedule.due_ms(number),
            execution_id=str(uuid.uuid4()),
            outcome=Outcome.MISSED if overlap else Outcome.RUNNING,
            missed_reason=MissedReason.OVERLAP if overlap else None,
            next_due_ms=next_due,
        )
        batch.claims.append(claim)
        batch.to_fire[claim.execution_id] = (job, number)
        job.next_number = following

    async def _claim_and_fire(self, batch: _Batch) -> None:
        try:
            won = await store.claim_slots(
                self._pool, batch.claims, batch.ranges, self._owner
            )
        except asyncpg.TransactionRollbackError as exc:
            # A deadlock with another writer of these job rows: nothing was
            # claimed; plan the slots again at once.
            log.warning("slot claim rolled back (%s); claiming again", exc)
            self._retry_later(batch)
            return
        except StorageUnavailable as exc:
            self._postgres.mark_down(str(exc))
            self._retry_later(batch)
            await asyncio.sleep(1.0)
            return
        self._postgres.mark_up()
        for claim in batch.claims:
            job, number = batch.to_fire[claim.execution_id]
            if claim.execution_id not in won:
                # Canceled, finished, or taken by another owner: not ours to fire.
                self._jobs.pop(job.id, None)
                continue
            if claim.outcome == Outcome.RUNNING:
                self._dispatcher.fire(job.firing(number, claim.execution_id, 1))
            else:
                log.info(
                    "execution job=%s number=%d outcome=missed reason=%s",
                    job.id,
                    number,
                    claim.missed_reason,
                )
            self._push(job)

    def _retry_later(self, batch: _Batch) -> None:
        """Nothing was claimed: rewind the jobs so the slots are planned again."""
        for claim in batch.claims:
            job, _ = batch.to_fire[claim.execution_id]
            first = next(
                (r.first for r in batch.ranges if r.job_id == job.id), claim.number
            )
            job.next_number = first
            self._push(job)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Sleep up to ``seconds``, or until ``event`` is set."""
    event.clear()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=max(seconds, 0.0005))


def _abandoned(row: dict[str, Any]) -> store.Outcome:
    live = row["status"] in ("PENDING", "ON_GOING")
    reason = (
        "owner lost twice during this call; not re-sent again"
        if live
        else f"owner lost during this call; not re-sent as the job is {row['status']}"
    )
    return store.Outcome(
        execution_id=row["id"],
        outcome=Outcome.ERROR if live else Outcome.CANCELED,
        http_status=None,
        error_kind="owner_lost",
        error=reason,
        started_ms=None,
        duration_ms=None,
        reported_status=None,
    )
