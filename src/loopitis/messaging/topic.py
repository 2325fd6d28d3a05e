"""Creating the job topic with the configured number of partitions."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from loopitis.errors import BrokerUnavailable, ConfigError

log = logging.getLogger(__name__)


async def ensure_topic(bootstrap: list[str], topic: str, partitions: int) -> None:
    """Create the topic if missing; refuse to run on a different partition count."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        existing = await admin.list_topics()
        if topic not in existing:
            await _create(admin, topic, partitions)
        actual = await _partition_count(admin, topic)
    except KafkaError as exc:
        raise BrokerUnavailable(f"{type(exc).__name__}: {exc}") from exc
    finally:
        await admin.close()
    if actual != partitions:
        raise ConfigError(
            "LOOPITIS_KAFKA_PARTITIONS",
            f"topic '{topic}' has {actual} partitions but the setting says "
            f"{partitions}; jobs would be loaded from the wrong partitions",
        )


async def _create(admin: AIOKafkaAdminClient, topic: str, partitions: int) -> None:
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
        log.info("created topic %s with %d partitions", topic, partitions)
    except TopicAlreadyExistsError:
        pass


async def _partition_count(admin: AIOKafkaAdminClient, topic: str) -> int:
    described = await admin.describe_topics([topic])
    return len(described[0]["partitions"])
