"""The periodic ticks' guard (poller, deliverer): ticks never overlap, and a tick that failed midway (the database
went away) hands back the leases it left behind at the start of the next one, so what it had claimed is taken up
at once instead of after the lease."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

__all__ = ["TickGuard"]


class TickGuard:
    def __init__(self, release: Callable[[], Awaitable[None]]) -> None:
        self._release = release
        self._lock = asyncio.Lock()
        self._leftover = False

    async def run(self, tick: Callable[[], Awaitable[int]]) -> int:
        async with self._lock:
            if self._leftover:
                await self._release()
                self._leftover = False
            try:
                return await tick()
            except BaseException:
                self._leftover = True
                raise

    def failed_midway(self) -> None:
        """Some of the tick's work failed (it went on with the rest): hand its leases back next time."""
        self._leftover = True

    async def idle(self) -> None:
        """Return when no tick is running (at shutdown: the last one finished what it claimed)."""
        async with self._lock:
            return
