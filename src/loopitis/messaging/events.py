"""Job events on the Kafka topic. They are hints: Postgres holds the truth."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from aiokafka.partitioner import murmur2

EventKind = Literal["created", "canceled"]


@dataclass(frozen=True, slots=True)
class JobEvent:
    kind: EventKind
    job_id: str

    def encode(self) -> bytes:
        return json.dumps({"kind": self.kind, "job_id": self.job_id}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> JobEvent | None:
        """The event, or None for a message this version does not understand."""
        try:
            data = json.loads(raw)
            kind, job_id = data["kind"], data["job_id"]
        except (ValueError, TypeError, KeyError):
            return None
        if kind not in ("created", "canceled") or not isinstance(job_id, str):
            return None
        return cls(kind, job_id)


def partition_for(job_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for this key.

    The gateway stores it on the job, so a consumer can load the jobs of the
    partitions it owns straight from Postgres.
    """
    hashed: int = murmur2(job_id.encode())
    return (hashed & 0x7FFFFFFF) % partitions
