"""The fields a callback carries, as a JSON body or as query parameters."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

# One encoder for every body: json.dumps with options builds a new one per call.
_encode_json = json.JSONEncoder(ensure_ascii=False).encode


# The names a callback carries, in the order they are sent.
ENVELOPE_FIELDS = (
    "parentRequestId",
    "parentRequestName",
    "requestedTimes",
    "executionNumber",
    "executionId",
    "payload",
    "showRequest",
    "cancelLink",
    "scheduledAt",
)


@dataclass(frozen=True, slots=True)
class Envelope:
    """What one execution tells its receiver."""

    job_id: str
    job_name: str | None
    requested_times: int | None
    execution_number: int
    execution_id: str
    payload: str | None
    show_link: str
    cancel_link: str
    scheduled_ms: int

    def fields(self) -> dict[str, object]:
        return {
            "parentRequestId": self.job_id,
            "parentRequestName": self.job_name,
            "requestedTimes": self.requested_times,
            "executionNumber": self.execution_number,
            "executionId": self.execution_id,
            "payload": self.payload,
            "showRequest": self.show_link,
            "cancelLink": self.cancel_link,
            "scheduledAt": iso_utc(self.scheduled_ms),
        }

    def json_body(self) -> bytes:
        return _encode_json(self.fields()).encode()

    def query_url(self, url: str) -> str:
        """``url`` with the fields appended to whatever query it already has."""
        parts = urlsplit(url)
        added = urlencode(
            [(key, _query_value(value)) for key, value in self.fields().items()]
        )
        # The receiver's own query is kept byte for byte; ours goes after it.
        query = f"{parts.query}&{added}" if parts.query else added
        return urlunsplit(parts._replace(query=query))


def iso_utc(epoch_ms: int) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _query_value(value: object) -> str:
    return "" if value is None else str(value)
