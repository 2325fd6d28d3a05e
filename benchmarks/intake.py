"""Item 3: jobs accepted per second by one gateway process, and the baseline.

The same load generator (one process, 64 connections) posts the same job to
``POST /set/notifier`` of a gateway (credentials checked, job validated,
stored in Postgres, its event published to Kafka) and of a bare FastAPI
endpoint on the same uvicorn settings.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from dataclasses import dataclass

from benchmarks.stack import PASSWORD, USERNAME, BenchStack
from loopitis.local.ports import LOOPBACK, accepts_connections, free_port

CONCURRENCY = 64
JOB = json.dumps(
    {
        "interval": "1h",
        "delay": "1h",
        "occurrences": 10,
        "name": "intake benchmark",
        "return_url": "http://127.0.0.1:9/never",
        "payload": '{"user": 1234}',
        "callback_type": "POST",
    }
)


@dataclass(frozen=True, slots=True)
class Intake:
    gateway_per_s: float
    bare_per_s: float
    stored: int


async def intake(stack: BenchStack, seconds: float) -> Intake:
    gateway_port, bare_port = free_port(), free_port()
    gateway = stack.spawn(
        ["-m", "loopitis", "gateway", "--host", LOOPBACK, "--port", str(gateway_port)],
        stack.env(),
        "gateway.log",
    )
    bare = stack.spawn(
        ["-m", "benchmarks.bare", str(bare_port)], stack.env(), "bare.log"
    )
    try:
        await _listening(gateway_port)
        await _listening(bare_port)
        url = f"http://{LOOPBACK}:{gateway_port}/set/notifier"
        # One short round first: the gateway's pool and producer warm up.
        await _load(url, 1.0, auth=True)
        stored_before = await _jobs(stack)
        accepted = await _load(url, seconds, auth=True)
        stored = await _jobs(stack) - stored_before
        baseline = await _load(
            f"http://{LOOPBACK}:{bare_port}/set/notifier", seconds, auth=False
        )
    finally:
        await stack.stop_processes([gateway, bare])
    await stack.fetch("DELETE FROM jobs")
    return Intake(accepted, baseline, stored)


async def _jobs(stack: BenchStack) -> int:
    rows = await stack.fetch("SELECT count(*) AS n FROM jobs")
    return int(rows[0]["n"])


async def _listening(port: int) -> None:
    for _ in range(300):
        if await asyncio.to_thread(accepts_connections, port, LOOPBACK):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port} after 30 s")


async def _load(url: str, seconds: float, *, auth: bool) -> float:
    args = [url, str(seconds), "--concurrency", str(CONCURRENCY), "--body", JOB]
    args += ["--expect", "201"]
    if auth:
        args += ["--auth", f"{USERNAME}:{PASSWORD}"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.load", *args, stdout=subprocess.PIPE
    )
    out, _ = await process.communicate()
    figures = dict(re.findall(r"(\w+)=([\d.]+)", out.decode()))
    return float(figures["ok"]) / float(figures["seconds"])
