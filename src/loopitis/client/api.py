"""A small synchronous client of the Loopitis HTTP API, used by the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

TIMEOUT_S = 10.0


class ApiError(Exception):
    """The gateway answered with an error body, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Connection:
    url: str
    username: str
    password: str


class LoopitisClient:
    def __init__(self, connection: Connection) -> None:
        self._http = httpx.Client(
            base_url=connection.url.rstrip("/"),
            auth=(connection.username, connection.password),
            timeout=TIMEOUT_S,
        )

    def __enter__(self) -> LoopitisClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def create_job(self, fields: dict[str, object]) -> dict[str, Any]:
        return self._call("POST", "/set/notifier", json=fields)

    def list_jobs(self, status: str | None, limit: int) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        return self._call("GET", "/requests/get_list", params=params)

    def job(self, job_id: str, limit: int = 50) -> dict[str, Any]:
        params = {"requestId": job_id, "limit": limit}
        return self._call("GET", "/requests/get_list", params=params)

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", "/requests/cancel_task", params={"requestId": job_id})

    def report(
        self, start: str | None, end: str | None, job_id: str | None
    ) -> dict[str, Any]:
        params = {"from": start, "to": end, "requestId": job_id}
        cleaned = {name: value for name, value in params.items() if value}
        return self._call("GET", "/reports", params=cleaned)

    def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **options)
        except httpx.TransportError as exc:
            raise ApiError(
                f"cannot reach {self._http.base_url} ({exc}); check --url "
                "or LOOPITIS_URL"
            ) from exc
        body = _json(response)
        if response.is_success:
            return body
        raise ApiError(_error_text(response.status_code, body), response.status_code)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_text(status: int, body: dict[str, Any]) -> str:
    if status == 401:
        return (
            "the gateway refused the credentials; set --username/--password "
            "or LOOPITIS_USERNAME/LOOPITIS_PASSWORD"
        )
    problems = body.get("errors") or [body.get("error") or {}]
    messages = [str(p.get("message") or f"HTTP {status}") for p in problems]
    return "; ".join(messages)
