"""Slot arithmetic of a fixed-rate schedule.

Execution k (1-based) is due at ``anchor + (k - 1) * interval`` where the
anchor is the acceptance time plus the delay. All values are integer
milliseconds since the epoch, so no float ever drifts a long schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_GRACE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Schedule:
    """When the slots of one job are due."""

    anchor_ms: int
    interval_ms: int
    occurrences: int | None

    def due_ms(self, number: int) -> int:
        return self.anchor_ms + (number - 1) * self.interval_ms

    def has_slot(self, number: int) -> bool:
        return self.occurrences is None or number <= self.occurrences

    def latest_due_number(self, now_ms: int) -> int:
        """The highest slot number already due at ``now_ms`` (0 before the first)."""
        if now_ms < self.anchor_ms:
            return 0
        number = (now_ms - self.anchor_ms) // self.interval_ms + 1
        if self.occurrences is not None:
            number = min(number, self.occurrences)
        return number

    @property
    def grace_ms(self) -> int:
        """How late a slot may still be fired: one interval, capped at 60 s."""
        return min(self.interval_ms, MAX_GRACE_MS)


@dataclass(frozen=True, slots=True)
class CatchUp:
    """What to do with a job whose next slot is already overdue."""

    missed_first: int
    missed_last: int
    fire_number: int

    @property
    def missed_count(self) -> int:
        return max(0, self.missed_last - self.missed_first + 1)


def plan_catch_up(schedule: Schedule, next_number: int, now_ms: int) -> CatchUp:
    """Apply the downtime rule to slots from ``next_number`` on.

    Slots late by more than the grace period are missed, except the most
    recent overdue slot, which is fired once, late. Nothing is replayed.
    """
    latest = schedule.latest_due_number(now_ms)
    if latest < next_number:
        return CatchUp(next_number, next_number - 1, next_number)
    if now_ms - schedule.due_ms(next_number) <= schedule.grace_ms:
        return CatchUp(next_number, next_number - 1, next_number)
    return CatchUp(next_number, latest - 1, latest)
