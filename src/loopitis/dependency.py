"""Tracking whether a dependency (Postgres, Kafka) is up, and since when it is down."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter

from loopitis.model.envelope import iso_utc

log = logging.getLogger(__name__)
ERRORS = Counter(
    "loopitis_dependency_errors",
    "Failed operations on Postgres or Kafka seen by this process",
    ["dependency"],
)
for _name in ("postgres", "kafka"):
    ERRORS.labels(_name)


class DependencyState:
    """The last known state of one dependency; logs each change once."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down_since: float | None = None
        self.error = ""

    @property
    def ok(self) -> bool:
        return self.down_since is None

    def mark_down(self, error: str) -> None:
        ERRORS.labels(self.name).inc()
        self.error = error
        if self.down_since is None:
            self.down_since = time.time()
            log.warning("%s is down: %s", self.name, error)

    def mark_up(self) -> None:
        if self.down_since is not None:
            log.warning(
                "%s is back after %.1f s", self.name, time.time() - self.down_since
            )
        self.down_since = None
        self.error = ""

    def as_json(self) -> dict[str, object]:
        down = self.down_since
        return {
            "ok": down is None,
            "down_since": None if down is None else iso_utc(int(down * 1000)),
            "error": self.error or None,
        }
