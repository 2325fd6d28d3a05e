"""Every exception Loopitis raises on purpose, in one tree.

    LoopitisError
    ├── ConfigError            a setting is missing or wrong; the process stops
    ├── InvalidField           one request field breaks a rule (HTTP 400)
    ├── InvalidRequest         several fields break rules (HTTP 400)
    ├── NotFound               an unknown job or execution (HTTP 404)
    ├── BlockedTarget          a callback or alert address the guard refuses
    └── DependencyUnavailable  Postgres or Kafka cannot be reached (retryable)
        ├── StorageUnavailable
        └── BrokerUnavailable

Whether an error is worth retrying is the class attribute ``retryable``.
"""

from __future__ import annotations


class LoopitisError(Exception):
    """Base of all Loopitis errors."""

    retryable = False


class ConfigError(LoopitisError):
    """A setting is missing or invalid; ``setting`` names the variable."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


class InvalidField(LoopitisError):
    """One field of a request breaks a rule."""

    def __init__(self, field: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.details = details


class InvalidRequest(LoopitisError):
    """Several fields of one request break rules; all are reported at once."""

    def __init__(self, problems: list[InvalidField]) -> None:
        super().__init__("; ".join(problem.message for problem in problems))
        self.problems = problems


class NotFound(LoopitisError):
    """A job or execution that does not exist."""

    def __init__(self, field: str, value: str, what: str) -> None:
        super().__init__(f"no {what} with {field} '{value}'")
        self.field = field
        self.value = value
        self.what = what


class BlockedTarget(LoopitisError):
    """A callback or alert would connect to an address the outbound guard refuses."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"target {host!r} refused: {reason}")
        self.host = host
        self.reason = reason


class DependencyUnavailable(LoopitisError):
    """A dependency cannot be reached right now; trying later may succeed."""

    retryable = True
    dependency = "dependency"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.dependency} is unavailable: {detail}")
        self.detail = detail


class StorageUnavailable(DependencyUnavailable):
    """Postgres refused or dropped the connection."""

    dependency = "postgres"


class BrokerUnavailable(DependencyUnavailable):
    """Kafka refused or dropped the connection."""

    dependency = "kafka"
