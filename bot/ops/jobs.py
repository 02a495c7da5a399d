"""The scheduler's jobs in flight, so that a shutdown lets them finish instead of cutting them off.

APScheduler's asyncio executor cancels every job still running when the scheduler shuts down, at whatever
``await`` it is: a delivery tick between Slack's answer to a post and recording it, a poll between the provider's
answer and writing it down. ``Runtime.stop`` pauses the scheduler (no new ticks start), waits for these within
the grace period, and shuts the scheduler down (cancelling what is left) only then.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import ParamSpec, TypeVar

__all__ = ["RunningJobs"]

P = ParamSpec("P")
T = TypeVar("T")


class RunningJobs:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    def track(self, func: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[object, None, T]]:
        """``func`` as a job whose runs are known here (same name for the scheduler's log lines)."""

        @functools.wraps(func)
        async def job(*args: P.args, **kwargs: P.kwargs) -> T:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.add(task)
            try:
                return await func(*args, **kwargs)
            finally:
                if task is not None:
                    self._tasks.discard(task)

        return job

    def __len__(self) -> int:
        return len(self._tasks)

    async def wait(self, grace: float) -> bool:
        """Wait up to ``grace`` seconds for the jobs running now. True when all of them finished."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
        return not pending
