"""Running a process's event loop: uvloop when it is installed, else asyncio's.

uvloop does the same work with less CPU per socket event, which is most of
what a consumer does; nothing in Loopitis depends on it being there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a new loop, as ``asyncio.run`` does."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
