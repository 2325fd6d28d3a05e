"""The consumer process: Kafka membership, the scheduler, and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from loopitis import eventloop
from loopitis.consumer import metrics
from loopitis.consumer.callback import create_session
from loopitis.consumer.dispatch import Dispatcher
from loopitis.consumer.recorder import Recorder
from loopitis.consumer.scheduler import Scheduler
from loopitis.consumer.signing import Signer
from loopitis.dependency import DependencyState
from loopitis.errors import BrokerUnavailable, ConfigError, StorageUnavailable
from loopitis.messaging.events import JobEvent
from loopitis.messaging.topic import ensure_topic
from loopitis.settings import Settings
from loopitis.storage import claims as store
from loopitis.storage.pool import create_pool

log = logging.getLogger(__name__)
WINDOW_MS = 60_000
HEARTBEAT_EVERY_S = 5.0
TOPIC_WATCH_EVERY_S = 5.0
LEAVE_TIMEOUT_S = 10.0
GC_THRESHOLDS = (20_000, 50, 100)


class _Ownership(ConsumerRebalanceListener):  # type: ignore[misc]
    """Follows Kafka's assignment: partitions gained are loaded, lost are dropped."""

    def __init__(self, scheduler: Scheduler, topic: str) -> None:
        self._scheduler = scheduler
        self._topic = topic

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._scheduler.revoke(
            tp.partition for tp in revoked if tp.topic == self._topic
        )

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        partitions = sorted(tp.partition for tp in assigned if tp.topic == self._topic)
        log.info("assigned partitions %s", partitions)
        self._scheduler.assign(partitions)


class ConsumerWorker:
    """One member of the consumer group; ``run`` returns after a graceful stop."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.consumer_id = (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        self._stop = asyncio.Event()
        self._postgres = DependencyState("postgres")
        self._kafka = DependencyState("kafka")

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("stop requested: no new slots; letting calls in flight finish")
        self._stop.set()

    async def run(self) -> None:
        settings = self._settings
        started = time.monotonic()
        pool = await create_pool(settings.asyncpg_dsn, settings.db_pool_size)
        session = create_session(
            settings.consumer_concurrency,
            settings.callback_timeout_ms / 1000,
            settings.target_policy,
        )
        recorder = Recorder(pool, self._postgres)
        dispatcher = Dispatcher(
            session,
            recorder,
            concurrency=settings.consumer_concurrency,
            timeout_s=settings.callback_timeout_ms / 1000,
            public_url=settings.public_url,
            link_secret=settings.effective_link_secret,
            signer=Signer(settings.signing_secrets),
        )
        scheduler = Scheduler(
            pool,
            dispatcher,
            recorder,
            self._postgres,
            owner=self.consumer_id,
            window_ms=WINDOW_MS,
            grace_s=settings.shutdown_grace_ms / 1000,
        )
        recorder.start()
        tasks = [
            _supervised("scheduler", scheduler.run),
            _supervised("refill", scheduler.refill_forever),
            _supervised(
                "heartbeat",
                lambda: self._heartbeat_forever(pool, scheduler, dispatcher),
            ),
            _supervised("topic watch", self._watch_topic),
        ]
        consumer = await self._join(scheduler)
        try:
            if consumer is not None:
                await self._consume(consumer, scheduler)
        finally:
            await self._shut_down(scheduler, dispatcher, recorder, tasks)
            if consumer is not None:
                # Only now leave the group: our calls are drained and recorded,
                # so the next owner finds nothing left running.
                await _leave_group(consumer)
            await session.close()
            await self._forget(pool)
            await pool.close()
            log.info(
                "consumer %s stopped after %.0f s",
                self.consumer_id,
                time.monotonic() - started,
            )

    async def _consume(self, consumer: AIOKafkaConsumer, scheduler: Scheduler) -> None:
        while not self._stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            for messages in batches.values():
                for message in messages:
                    await self._handle(scheduler, message.value)

    async def _join(self, scheduler: Scheduler) -> AIOKafkaConsumer | None:
        settings = self._settings
        delay_s = 0.5
        while not self._stop.is_set():
            consumer = AIOKafkaConsumer(
                bootstrap_servers=settings.bootstrap_servers,
                group_id=settings.kafka_group,
                client_id=self.consumer_id,
                enable_auto_commit=True,
                auto_offset_reset="latest",
                # New-job events are latency sensitive; some brokers only answer
                # a fetch when its wait runs out.
                fetch_max_wait_ms=50,
                session_timeout_ms=settings.kafka_session_timeout_ms,
                heartbeat_interval_ms=max(settings.kafka_session_timeout_ms // 5, 300),
                max_poll_interval_ms=max(60_000, settings.shutdown_grace_ms * 3),
                rebalance_timeout_ms=max(60_000, settings.shutdown_grace_ms * 3),
            )
            try:
                await ensure_topic(
                    settings.bootstrap_servers,
                    settings.kafka_topic,
                    settings.kafka_partitions,
                )
                consumer.subscribe(
                    [settings.kafka_topic],
                    listener=_Ownership(scheduler, settings.kafka_topic),
                )
                await consumer.start()
            except (KafkaError, BrokerUnavailable) as exc:
                await consumer.stop()
                self._kafka.mark_down(f"{type(exc).__name__}: {exc}")
                await _wait(self._stop, delay_s)
                delay_s = min(delay_s * 2, 10.0)
                continue
            self._kafka.mark_up()
            log.info(
                "consumer %s joined group %s on topic %s",
                self.consumer_id,
                settings.kafka_group,
                settings.kafka_topic,
            )
            return consumer
        return None

    async def _handle(self, scheduler: Scheduler, raw: bytes | None) -> None:
        event = JobEvent.decode(raw or b"")
        if event is None:
            log.warning("ignored a message on the job topic that is not a job event")
            return
        if event.kind == "canceled":
            scheduler.cancel(event.job_id)
            return
        try:
            await scheduler.add(event.job_id)
        except StorageUnavailable as exc:
            # The job stays PENDING in Postgres; the refill adopts it later.
            self._postgres.mark_down(str(exc))

    async def _shut_down(
        self,
        scheduler: Scheduler,
        dispatcher: Dispatcher,
        recorder: Recorder,
        tasks: list[asyncio.Task[None]],
    ) -> None:
        scheduler.stop()
        grace_s = self._settings.shutdown_grace_ms / 1000
        left = await dispatcher.drain(None, grace_s)
        if left:
            log.warning(
                "%d calls still in flight after the %.1f s grace period; the next "
                "owner re-sends them",
                left,
                grace_s,
            )
        try:
            await asyncio.wait_for(recorder.stop(), timeout=max(grace_s, 5.0))
        except TimeoutError:
            log.warning(
                "%d outcomes could not be written before stopping", recorder.backlog
            )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch_topic(self) -> None:
        """Keep the job topic present and say when Kafka is unreachable.

        A broker that lost its state (a restart of an in-memory broker, or a
        topic deleted by hand) leaves the group with nothing to assign; once
        the topic exists again the group rebalances and owners load their jobs.
        """
        settings = self._settings
        while not self._stop.is_set():
            try:
                await ensure_topic(
                    settings.bootstrap_servers,
                    settings.kafka_topic,
                    settings.kafka_partitions,
                )
            except BrokerUnavailable as exc:
                self._kafka.mark_down(str(exc))
            except ConfigError as exc:
                log.error("job topic no longer matches the settings: %s", exc)
            else:
                self._kafka.mark_up()
            await _wait(self._stop, TOPIC_WATCH_EVERY_S)

    async def _heartbeat_forever(
        self, pool: asyncpg.Pool, scheduler: Scheduler, dispatcher: Dispatcher
    ) -> None:
        host, pid = socket.gethostname(), os.getpid()
        while True:
            scheduler.ownership_changed.clear()
            metrics.observe_ownership(len(scheduler.owned), scheduler.jobs_scheduled)
            try:
                await store.heartbeat(
                    pool,
                    self.consumer_id,
                    host,
                    pid,
                    sorted(scheduler.owned),
                    scheduler.jobs_scheduled,
                    dispatcher.calls_in_flight,
                )
            except StorageUnavailable as exc:
                self._postgres.mark_down(str(exc))
            await _wait(scheduler.ownership_changed, HEARTBEAT_EVERY_S)

    async def _forget(self, pool: asyncpg.Pool) -> None:
        # If Postgres is down the row goes stale and health stops listing it.
        with contextlib.suppress(StorageUnavailable):
            await store.leave(pool, self.consumer_id)


async def _leave_group(consumer: AIOKafkaConsumer) -> None:
    """Leave the group, but never hang a stop on a broker that stopped answering."""
    try:
        await asyncio.wait_for(consumer.stop(), timeout=LEAVE_TIMEOUT_S)
    except TimeoutError:
        log.warning(
            "kafka did not confirm leaving the group within %.0f s; the group "
            "moves our partitions after its session timeout",
            LEAVE_TIMEOUT_S,
        )


def _supervised(
    name: str, loop: Callable[[], Coroutine[Any, Any, None]]
) -> asyncio.Task[None]:
    """Run a background loop; if it fails, log why and start it again."""

    async def keep_running() -> None:
        while True:
            try:
                await loop()
                return
            except Exception:
                log.exception("the %s loop failed; restarting it in 1 s", name)
                await asyncio.sleep(1.0)

    return asyncio.create_task(keep_running(), name=name)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)


def run_consumer(settings: Settings) -> None:
    """Run one consumer until SIGTERM or SIGINT, then stop gracefully."""

    async def main() -> None:
        # What was imported lives as long as the process: keep the collector
        # from walking it again and again, and let young objects (a few per
        # call) pile up longer between collections, which otherwise show as
        # lateness spikes at thousands of calls per second.
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        worker = ConsumerWorker(settings)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, worker.request_stop)
        await worker.run()

    eventloop.run(main())
