"""Items 1, 2 and 5: firing rate and lateness of consumers, and the ceiling.

A step stores jobs whose intervals add up to a target rate (their first slots
spread evenly over one interval, so the load is smooth), lets the consumers
fire them, and reads from Postgres the calls that started in the measured
period: how many per second, and their lateness (``started_at - due_at``, the
time the call left minus the slot's due time).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.stack import BenchStack, Lateness, cpu_seconds

INTERVAL_MS = 1000
LATENESS_GOAL_MS = 50.0
# Calls of the first second are skipped: jobs are being adopted then.
SETTLE_S = 1.0
# Time after the measured period for the last calls to be recorded.
DRAIN_S = 2.0
ENVELOPE_LIKE_BODY = (
    '{"parentRequestId":"5f0c2a57-8f4e-4d0e-b1d8-2f7c3c9d1e11",'
    '"parentRequestName":null,"requestedTimes":null,"executionNumber":12,'
    '"executionId":"a3a1f0de-5a3b-4f6e-9a3c-2d1b0e4f5a6b","payload":null,'
    '"showRequest":"http://127.0.0.1:8080/requests/get_list?requestId=5f0c2a57'
    '&token=0123456789abcdef0123456789abcdef01234567",'
    '"cancelLink":"http://127.0.0.1:8080/requests/cancel_task?requestId=5f0c2a57'
    '&token=0123456789abcdef0123456789abcdef01234567",'
    '"scheduledAt":"2026-01-01T00:00:00.000Z"}'
)


@dataclass
class Step:
    target_per_s: int
    result: Lateness

    @property
    def kept_up(self) -> bool:
        """Every slot offered was fired (a few edge slots aside)."""
        return self.result.calls_per_s >= 0.97 * self.target_per_s

    @property
    def on_time(self) -> bool:
        return self.kept_up and self.result.p99_ms <= LATENESS_GOAL_MS


@dataclass
class FiringReport:
    ceiling_per_s: float
    steps: list[Step] = field(default_factory=list)

    @property
    def sustained(self) -> Step:
        """The highest step kept up with, else the one that fired most."""
        kept_up = [s for s in self.steps if s.kept_up]
        if kept_up:
            return max(kept_up, key=lambda s: s.target_per_s)
        return max(self.steps, key=lambda s: s.result.calls_per_s)

    @property
    def best_on_time(self) -> Step | None:
        on_time = [s for s in self.steps if s.on_time]
        return max(on_time, key=lambda s: s.target_per_s) if on_time else None

    def nearest(self, rate: float) -> Step:
        return min(self.steps, key=lambda s: abs(s.target_per_s - rate))


async def ceiling(stack: BenchStack, seconds: float) -> float:
    """Calls/s of the aiohttp client alone against the sink, in one process."""
    completed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.load",
        stack.sink_url,
        str(seconds),
        "--body",
        ENVELOPE_LIKE_BODY,
        stdout=subprocess.PIPE,
    )
    out, _ = await completed.communicate()
    figures = dict(re.findall(r"(\w+)=([\d.]+)", out.decode()))
    return float(figures["ok"]) / float(figures["seconds"])


async def step(
    stack: BenchStack, rate: int, seconds: float, consumers: list[int]
) -> Lateness:
    """Fire ``rate`` callbacks/s for ``seconds`` with the running consumers;
    also note the CPU share of consumers, Postgres and the sink meanwhile."""
    start_s = await stack.insert_jobs(rate * INTERVAL_MS // 1000, INTERVAL_MS)
    since_s = start_s + SETTLE_S
    await asyncio.sleep(since_s - time.time())
    roots = {"consumers": consumers, **stack.cpu_pids()}
    before = {name: cpu_seconds(pids) for name, pids in roots.items()}
    await asyncio.sleep(since_s + seconds - time.time())
    used = {name: cpu_seconds(pids) - before[name] for name, pids in roots.items()}
    await asyncio.sleep(DRAIN_S)
    result = await stack.lateness(since_s, since_s + seconds)
    result = dataclasses.replace(
        result, cpu={name: busy / seconds for name, busy in used.items()}
    )
    await stack.clear_jobs()
    await asyncio.sleep(1.0)  # calls still in flight finish, windows empty
    return result


async def firing(
    stack: BenchStack,
    ceiling_per_s: float,
    seconds: float,
    *,
    profile_dir: Path | None = None,
    say: Callable[[str], None] = print,
) -> FiringReport:
    """Item 1: the highest rate one consumer keeps up with, by bisection over
    the ceiling, then the rate the lateness goal is judged at (80% of it) and
    the highest rate whose p99 lateness stays under 50 ms."""
    report = FiringReport(ceiling_per_s)
    consumer = stack.start_consumer(f"bench-{uuid.uuid4().hex[:8]}")

    async def run_at(rate: int) -> Step:
        profiler = _profile(consumer.pid, seconds + 5, profile_dir, rate)
        outcome = Step(rate, await step(stack, rate, seconds, [consumer.pid]))
        _finish_profile(profiler)
        report.steps.append(outcome)
        say(_describe(outcome))
        return outcome

    try:
        await stack.wait_owned([consumer])
        low, high = 0, round(ceiling_per_s)
        rate = _round(0.5 * high)
        for _ in range(3):
            kept_up = (await run_at(rate)).kept_up
            low, high = (rate, high) if kept_up else (low, rate)
            rate = _round((low + high) / 2)
        if _round(high) not in [s.target_per_s for s in report.steps]:
            await run_at(_round(high))
        goal_rate = _round(0.8 * report.sustained.result.calls_per_s)
        if goal_rate not in [s.target_per_s for s in report.steps]:
            await run_at(goal_rate)
    finally:
        await stack.stop_processes([consumer])
    return report


def _round(rate: float) -> int:
    return max(50, round(rate / 50) * 50)


async def precision(stack: BenchStack, rate: int, seconds: float) -> Lateness:
    """Item 2: a light, steady load on one consumer."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    consumer = stack.start_consumer(group)
    try:
        await stack.wait_owned([consumer])
        return await step(stack, rate, seconds, [consumer.pid])
    finally:
        await stack.stop_processes([consumer])


async def scale_out(
    stack: BenchStack, counts: list[int], rate: int, seconds: float
) -> dict[int, Lateness]:
    """Item 5: the same overload on 1, 2, 4... consumers; calls/s achieved."""
    results: dict[int, Lateness] = {}
    for count in counts:
        group = f"bench-{uuid.uuid4().hex[:8]}"
        children = [stack.start_consumer(group) for _ in range(count)]
        try:
            await stack.wait_owned(children, timeout_s=90)
            pids = [child.pid for child in children]
            results[count] = await step(stack, rate, seconds, pids)
        finally:
            await stack.stop_processes(children)
    return results


def _describe(outcome: Step) -> str:
    r = outcome.result
    cpu = ", ".join(f"{name} {share:.0%}" for name, share in r.cpu.items())
    return (
        f"  firing {outcome.target_per_s}/s: {r.calls_per_s:.0f}/s, "
        f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, max {r.max_ms:.1f} ms; "
        f"cpu {cpu}"
    )


def _profile(
    pid: int, seconds: float, profile_dir: Path | None, rate: int
) -> subprocess.Popen[bytes] | None:
    """py-spy on the consumer during a step, when asked for (it costs CPU)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if profile_dir is None or not Path(spy).exists():
        return None
    profile_dir.mkdir(parents=True, exist_ok=True)
    duration = str(max(1, int(seconds)))
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--duration",
            duration,
            "--rate",
            "250",
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(profile_dir / f"consumer-{rate}.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _finish_profile(profiler: subprocess.Popen[bytes] | None) -> None:
    if profiler is not None:
        profiler.wait(timeout=60)
