"""Publishing job events without ever making a stored job depend on Kafka."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from loopitis.dependency import DependencyState
from loopitis.messaging.events import JobEvent

log = logging.getLogger(__name__)
SEND_TIMEOUT_S = 2.0


class JobEventPublisher:
    """A producer that connects in the background and reports its state.

    A job is stored before its event is sent, and consumers reconcile PENDING
    jobs from Postgres, so a failed send delays a job by seconds, never loses it.
    """

    def __init__(self, bootstrap: list[str], topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._producer: AIOKafkaProducer | None = None
        self._connector: asyncio.Task[None] | None = None
        self.state = DependencyState("kafka")
        self.state.mark_down("not connected yet")

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_forever())

    async def stop(self) -> None:
        if self._connector:
            self._connector.cancel()
        if self._producer:
            await self._producer.stop()

    async def publish(self, event: JobEvent, partition: int) -> bool:
        """Send one event; False (logged) when Kafka cannot take it now."""
        producer = self._producer
        if producer is None:
            return False
        try:
            await asyncio.wait_for(
                producer.send_and_wait(
                    self._topic,
                    event.encode(),
                    key=event.job_id.encode(),
                    partition=partition,
                ),
                SEND_TIMEOUT_S,
            )
        # aiokafka asserts that the partition is in its metadata: a topic not
        # created yet, or with fewer partitions than configured, must not turn
        # a job already stored into a 500.
        except (KafkaError, TimeoutError, AssertionError) as exc:
            self.state.mark_down(f"{type(exc).__name__}: {exc}")
            log.warning(
                "job %s %s event not published (%s); consumers will pick it "
                "up from Postgres",
                event.job_id,
                event.kind,
                self.state.error,
            )
            return False
        self.state.mark_up()
        return True

    async def probe(self, timeout_s: float) -> dict[str, object]:
        """Ask the broker for metadata now, so health never reports a stale state."""
        producer = self._producer
        if producer is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await producer.client.fetch_all_metadata()
            except (KafkaError, TimeoutError) as exc:
                self.state.mark_down(f"{type(exc).__name__}: {exc}")
            else:
                self.state.mark_up()
        return self.state.as_json()

    async def _connect_forever(self) -> None:
        delay_s = 0.5
        while self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                acks="all",
                request_timeout_ms=5000,
                retry_backoff_ms=200,
            )
            try:
                await producer.start()
            except KafkaError as exc:
                await producer.stop()
                self.state.mark_down(f"{type(exc).__name__}: {exc}")
                log.debug("kafka producer cannot connect (%s); retrying", exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, 10.0)
                continue
            self._producer = producer
            self.state.mark_up()
            log.info("kafka producer connected to %s", ",".join(self._bootstrap))
