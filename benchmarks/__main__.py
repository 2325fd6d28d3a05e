"""The benchmark suite: one command, embedded servers, one table of figures.

    python -m benchmarks                      # every item, about 8 minutes
    python -m benchmarks --items firing,peer  # some of them
    python -m benchmarks --seconds 20 --precision-seconds 120 --jobs 1000000

Items: ``firing`` (1, one consumer against the client ceiling), ``precision``
(2, 100 callbacks/s), ``intake`` (3, gateway against a bare endpoint),
``state`` (4, a million active jobs), ``scale`` (5, 1, 2 and 4 consumers),
``peer`` (6, APScheduler 3.x with its memory and SQLAlchemy job stores).
Ratios are taken between figures of the same run, so a busy machine slows
both sides of each ratio alike.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from benchmarks.firing import FiringReport, ceiling, firing, precision, scale_out
from benchmarks.intake import Intake, intake
from benchmarks.peer import PeerReport, peer
from benchmarks.stack import BenchStack, Lateness
from benchmarks.state import State, state

ITEMS = ("firing", "precision", "intake", "state", "scale", "peer")


class Results:
    """Figures as they come in, printed as one table at the end."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []
        self.goals: list[tuple[str, str, bool]] = []

    def add(self, item: str, what: str, figure: str) -> None:
        self.rows.append((item, what, figure))
        print(f"  {item:<10} {what:<52} {figure}", flush=True)

    def goal(self, name: str, measured: str, met: bool) -> None:
        self.goals.append((name, measured, met))

    def table(self) -> str:
        width = max(len(what) for _, what, _ in self.rows) if self.rows else 10
        lines = [
            f"| item | {'figure':<{width}} | value |",
            f"|---|{'-' * (width + 2)}|---|",
        ]
        lines += [f"| {i} | {w:<{width}} | {f} |" for i, w, f in self.rows]
        if self.goals:
            lines += ["", "| goal | measured | met |", "|---|---|---|"]
            lines += [
                f"| {name} | {measured} | {'yes' if met else 'NO'} |"
                for name, measured, met in self.goals
            ]
        return "\n".join(lines)


def _lateness(r: Lateness) -> str:
    cpu = " ".join(f"{name} {share:.0%}" for name, share in r.cpu.items())
    return (
        f"{r.calls_per_s:.0f}/s, late p50 {r.p50_ms:.1f} / p99 {r.p99_ms:.1f} / "
        f"max {r.max_ms:.1f} ms, not ok {r.not_ok}; cpu {cpu}"
    )


async def _run(args: argparse.Namespace, workdir: Path) -> Results:
    results = Results()
    items = args.items.split(",")
    stack = BenchStack(workdir, prefer_nginx=not args.asyncio_sink)
    started = time.monotonic()
    await stack.start()
    assert stack.sink is not None
    print(f"sink: {stack.sink.kind}; {os.cpu_count()} cores", flush=True)
    try:
        ceiling_per_s = await ceiling(stack, args.ceiling_seconds)
        results.add(
            "1",
            "client ceiling (aiohttp, 1 process, no scheduling)",
            f"{ceiling_per_s:.0f}/s",
        )
        report: FiringReport | None = None
        if "firing" in items:
            report = await firing(
                stack, ceiling_per_s, args.seconds, profile_dir=args.profile
            )
            _report_firing(results, report)
        if "precision" in items:
            low = await precision(stack, 100, args.precision_seconds)
            results.add(
                "2", f"100/s for {args.precision_seconds:.0f} s", _lateness(low)
            )
            results.goal(
                "p99 at 100/s <= 10 ms", f"{low.p99_ms:.1f} ms", low.p99_ms <= 10
            )
        if "intake" in items:
            _report_intake(results, await intake(stack, args.intake_seconds))
        if "state" in items:
            _report_state(results, await state(stack, args.jobs, args.state_seconds))
        if "scale" in items:
            rate = round(ceiling_per_s)
            counts = await scale_out(stack, [1, 2, 4], rate, args.seconds)
            for count, figures in counts.items():
                results.add(
                    "5", f"{count} consumer(s), offered {rate}/s", _lateness(figures)
                )
            if (os.cpu_count() or 1) <= 2:
                results.add(
                    "5", "note", "2 cores: more consumers show overhead, not speed-up"
                )
        if "peer" in items:
            memory = await peer(stack, "memory", 500, 8000, args.seconds)
            persistent = await peer(stack, "sqlalchemy", 50, 2000, args.seconds)
            _report_peer(results, memory, persistent, report)
    finally:
        await stack.stop()
    results.add("-", "suite wall time", f"{time.monotonic() - started:.0f} s")
    return results


def _report_firing(results: Results, report: FiringReport) -> None:
    sustained = report.sustained
    for step in sorted(report.steps, key=lambda s: s.target_per_s):
        figures = _lateness(step.result)
        results.add("1", f"1 consumer, offered {step.target_per_s}/s", figures)
    kept = f"{sustained.result.calls_per_s:.0f}/s"
    results.add("1", "highest rate one consumer keeps up with", kept)
    best = report.best_on_time
    results.add(
        "1",
        "highest rate with p99 < 50 ms",
        f"{best.target_per_s}/s" if best else "none",
    )
    share = sustained.result.calls_per_s / report.ceiling_per_s
    results.goal(">= 50% of client ceiling", f"{share:.0%}", share >= 0.5)
    at_80 = report.nearest(0.8 * sustained.result.calls_per_s)
    results.goal(
        f"p99 <= 50 ms at 80% of achieved ({at_80.target_per_s}/s)",
        f"{at_80.result.p99_ms:.1f} ms",
        at_80.on_time,
    )


def _report_intake(results: Results, figures: Intake) -> None:
    results.add(
        "3",
        "gateway POST /set/notifier (stored + published)",
        f"{figures.gateway_per_s:.0f}/s",
    )
    results.add(
        "3",
        "bare FastAPI endpoint, same uvicorn settings",
        f"{figures.bare_per_s:.0f}/s",
    )
    share = figures.gateway_per_s / figures.bare_per_s
    results.goal("intake >= 50% of bare endpoint", f"{share:.0%}", share >= 0.5)


def _report_state(results: Results, figures: State) -> None:
    results.add(
        "4", f"{figures.jobs} active jobs inserted", f"{figures.insert_s:.1f} s"
    )
    results.add(
        "4",
        "takeover of all partitions (assigned -> loaded)",
        f"{figures.takeover_ms:.0f} ms",
    )
    results.add(
        "4",
        "consumer start -> all partitions loaded",
        f"{figures.start_to_owned_s:.1f} s",
    )
    results.add("4", "jobs held in the window", str(figures.jobs_in_window))
    results.add(
        "4",
        "consumer RSS (peak)",
        f"{figures.rss_mb:.0f} MB ({figures.peak_rss_mb:.0f} MB)",
    )
    results.add(
        "4", "jobs table + indexes per job", f"{figures.bytes_per_job:.0f} bytes"
    )
    results.goal(
        "RSS <= 250 MB with 1M jobs",
        f"{figures.peak_rss_mb:.0f} MB",
        figures.peak_rss_mb <= 250,
    )
    results.goal(
        "takeover <= 10 s",
        f"{figures.takeover_ms / 1000:.1f} s",
        figures.takeover_ms <= 10_000,
    )


def _report_peer(
    results: Results,
    memory: PeerReport,
    persistent: PeerReport,
    report: FiringReport | None,
) -> None:
    for peer_report in (memory, persistent):
        for s in peer_report.steps:
            results.add(
                "6",
                f"apscheduler {s.store} store, {s.rate}/s",
                f"{s.runs_per_s:.0f}/s, p50 {s.p50_ms:.1f} / p99 {s.p99_ms:.1f} / "
                f"max {s.max_ms:.1f} ms, dropped {s.dropped}",
            )
        best = peer_report.best
        results.add(
            "6",
            f"apscheduler {peer_report.store}: highest on time",
            f"{best.rate}/s" if best else "none",
        )
    ours = report.best_on_time if report else None
    if ours is None:
        return
    for peer_report, factor, name in (
        (persistent, 10, ">= 10x apscheduler sqlalchemy"),
        (memory, 0.5, ">= 0.5x apscheduler memory"),
    ):
        best = peer_report.best
        theirs = best.rate if best else 0
        ratio = ours.target_per_s / theirs if theirs else float("inf")
        results.goal(
            name, f"{ours.target_per_s}/s vs {theirs}/s = {ratio:.1f}x", ratio >= factor
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--items",
        default=",".join(ITEMS),
        help="comma-separated subset of: " + ", ".join(ITEMS),
    )
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="measured seconds per firing step"
    )
    parser.add_argument("--ceiling-seconds", type=float, default=4.0)
    parser.add_argument("--precision-seconds", type=float, default=60.0)
    parser.add_argument("--intake-seconds", type=float, default=8.0)
    parser.add_argument(
        "--jobs", type=int, default=1_000_000, help="active jobs of item 4"
    )
    parser.add_argument(
        "--state-seconds",
        type=float,
        default=10.0,
        help="how long item 4's consumer runs",
    )
    parser.add_argument(
        "--asyncio-sink",
        action="store_true",
        help="use the asyncio sink even when nginx is installed",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the saturated consumer into this folder",
    )
    args = parser.parse_args()
    unknown = set(args.items.split(",")) - set(ITEMS)
    if unknown:
        parser.error(f"unknown items {sorted(unknown)}; choose from {', '.join(ITEMS)}")
    with tempfile.TemporaryDirectory(prefix="loopitis-bench-") as workdir:
        results = asyncio.run(_run(args, Path(workdir)))
    print()
    print(results.table())


if __name__ == "__main__":
    main()
