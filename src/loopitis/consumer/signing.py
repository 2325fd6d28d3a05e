"""Standard Webhooks signatures on every callback and alert.

A receiver verifies a call with any Standard Webhooks library and the secret
it shares with Loopitis. While a secret is being rotated, each call carries one
signature per secret (space separated, as the specification allows), so
receivers holding either the old or the new secret accept it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from standardwebhooks import Webhook


class Signer:
    """Signs message bodies with the current secret and, during a rotation, the
    previous one."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._webhooks = [Webhook(secret) for secret in secrets]

    @property
    def enabled(self) -> bool:
        return bool(self._webhooks)

    def headers(
        self, message_id: str, body: bytes, now_s: float | None = None
    ) -> dict[str, str]:
        """The ``webhook-*`` headers of one message; none without a secret."""
        if not self._webhooks:
            return {}
        moment = datetime.fromtimestamp(time.time() if now_s is None else now_s, tz=UTC)
        signatures = [
            webhook.sign(message_id, moment, body) for webhook in self._webhooks
        ]
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(moment.timestamp())),
            "webhook-signature": " ".join(signatures),
        }
