"""Signed links that let a receiver view or cancel one job without credentials."""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal
from urllib.parse import urlencode

LinkAction = Literal["show", "cancel"]
_PATHS: dict[LinkAction, str] = {
    "show": "/requests/get_list",
    "cancel": "/requests/cancel_task",
}


def link_token(secret: bytes, action: LinkAction, job_id: str) -> str:
    """A token valid for exactly one action on exactly one job."""
    message = f"{action}:{job_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:40]


def token_is_valid(secret: bytes, action: LinkAction, job_id: str, token: str) -> bool:
    return hmac.compare_digest(link_token(secret, action, job_id), token)


def signed_link(base_url: str, secret: bytes, action: LinkAction, job_id: str) -> str:
    query = urlencode(
        {"requestId": job_id, "token": link_token(secret, action, job_id)}
    )
    return f"{base_url}{_PATHS[action]}?{query}"
