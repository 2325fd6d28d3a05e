"""The ``loopitis jobs`` and ``loopitis report`` commands against a real gateway."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from support.receiver import Receiver
from support.stack import Stack


async def _loopitis(
    stack: Stack, *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    username, password = stack.auth
    environment = {
        **os.environ,
        "LOOPITIS_URL": stack.base_url,
        "LOOPITIS_USERNAME": username,
        "LOOPITIS_PASSWORD": password,
        "COLUMNS": "200",
        **(env or {}),
    }
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "loopitis", *arguments],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _json(stack: Stack, *arguments: str) -> Any:
    result = await _loopitis(stack, *arguments, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_cli_adds_watches_and_reports_a_job(
    stack: Stack, receiver: Receiver
) -> None:
    """add, watch until FINISHED, show, list and report through the real command."""
    created = await _json(
        stack,
        "jobs",
        "add",
        "--return-url",
        receiver.url("/cli"),
        "--interval",
        "300ms",
        "--occurrences",
        "3",
        "--name",
        "cli job",
        "--callback-type",
        "get",
    )
    job_id = created["id"]

    watched = await _loopitis(stack, "jobs", "watch", job_id)
    assert watched.returncode == 0, watched.stderr
    assert "3/3" in watched.stdout
    assert f"job {job_id} is FINISHED" in watched.stdout

    shown = await _json(stack, "jobs", "show", job_id)
    assert shown["job"]["succeeded"] == 3
    assert [e["outcome"] for e in shown["executions"]] == ["succeeded"] * 3
    table = await _loopitis(stack, "jobs", "show", job_id)
    assert "cli job: FINISHED, 3 done" in table.stdout

    listed = await _loopitis(stack, "jobs", "list", "--status", "FINISHED")
    assert job_id in listed.stdout
    report = await _json(stack, "report", "--job", job_id)
    assert report["by_outcome"]["succeeded"] == 3


async def test_cli_cancels_a_job(stack: Stack, receiver: Receiver) -> None:
    """cancel stops an unlimited job; a second cancel says it already was."""
    created = await _json(
        stack,
        "jobs",
        "add",
        "--return-url",
        receiver.url("/cli-cancel"),
        "--interval",
        "1s",
    )
    first = await _loopitis(stack, "jobs", "cancel", created["id"])
    assert first.returncode == 0, first.stderr
    assert "job canceled" in first.stdout
    again = await _json(stack, "jobs", "cancel", created["id"])
    assert again == {
        "id": created["id"],
        "status": "CANCELED",
        "message": "job was already canceled",
    }


async def test_cli_says_what_the_api_refused(stack: Stack) -> None:
    """A validation error or bad credentials exit 1 with the API's message."""
    invalid = await _loopitis(
        stack, "jobs", "add", "--return-url", "ftp://x", "--interval", "1h+"
    )
    assert invalid.returncode == 1
    assert "interval" in invalid.stderr and "return_url" in invalid.stderr

    refused = await _loopitis(
        stack, "jobs", "list", env={"LOOPITIS_PASSWORD": "wrong-password"}
    )
    assert refused.returncode == 1
    assert "LOOPITIS_PASSWORD" in refused.stderr
