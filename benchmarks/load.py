"""A load generator: as many HTTP calls as one process can make, for a while.

Runs in its own process so that it has a core of its own, like a consumer:

    python -m benchmarks.load URL SECONDS --concurrency 256 [--auth user:pass]
        [--body JSON] [--expect 200]

It prints one line, ``calls=N ok=N seconds=S``. With the aiohttp client and
uvloop (when installed), the same as a consumer's, against the sink, it gives
the ceiling of the client library with no scheduling and no recording.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from loopitis.eventloop import run


async def _hammer(args: argparse.Namespace) -> tuple[int, int, float]:
    body = args.body.encode()
    headers = {"Content-Type": "application/json"}
    if args.auth:
        user, _, password = args.auth.partition(":")
        headers["Authorization"] = aiohttp.BasicAuth(user, password).encode()
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    calls = ok = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.monotonic() + args.seconds

        async def worker() -> None:
            nonlocal calls, ok
            while time.monotonic() < deadline:
                async with session.post(args.url, data=body, headers=headers) as r:
                    await r.read()
                    calls += 1
                    ok += r.status == args.expect

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.monotonic() - started
    return calls, ok, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("seconds", type=float)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--auth", default="")
    parser.add_argument("--body", default='{"n": 1}')
    parser.add_argument("--expect", type=int, default=200)
    args = parser.parse_args()
    calls, ok, elapsed = run(_hammer(args))
    print(f"calls={calls} ok={ok} seconds={elapsed:.3f}", flush=True)


if __name__ == "__main__":
    main()
