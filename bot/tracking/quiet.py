"""The quiet polls of a tick written together (group commit): a poll whose answer changes nothing a person sees
waits for the next batched write (``RunStore.record_quiet``, one transaction) instead of a transaction of its own.

A write starts as soon as a quiet poll is waiting and none is under way; the polls answered while it runs wait for
the next. Polls answered together (a batched provider call answers a scope's runs at once; a tick's calls land
close together) share one write, and a lone poll is written at once, as before: the busier the tick, the larger
the batches, with no added wait.
"""

from __future__ import annotations

import asyncio

from bot.store.quiet import QuietPoll
from bot.store.runs import RunStore

__all__ = ["QuietWrites"]


class QuietWrites:
    def __init__(self, runs: RunStore) -> None:
        self.runs = runs
        self._waiting: list[tuple[QuietPoll, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.writes = 0  # transactions, and the polls they wrote (for the benchmark's profile and the tests)
        self.written = 0

    async def write(self, poll: QuietPoll) -> bool:
        """Write ``poll`` with the others waiting. False when its run changed meanwhile and was not written (then
        record the poll with ``RunStore.record_status``, which reads the run again)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((poll, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="quiet polls")
        return await done

    async def write_many(self, polls: list[QuietPoll]) -> list[bool | BaseException]:
        """``write`` for each of ``polls`` (one batched call's runs), in the same writes: for each, whether it was
        written, or what its write raised."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bool]] = []
        for poll in polls:
            done: asyncio.Future[bool] = loop.create_future()
            self._waiting.append((poll, done))
            futures.append(done)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="quiet polls")
        return list(await asyncio.gather(*futures, return_exceptions=True))

    async def _write_all(self) -> None:
        while self._waiting:
            await asyncio.sleep(0)  # the polls answered in this same moment (one batched call's runs) join in
            batch, self._waiting = self._waiting, []
            try:
                missed = await self.runs.record_quiet([poll for poll, _ in batch])
            except Exception as exc:  # each poll fails as its own write would have (the database away, mostly)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            except BaseException:  # cancelled (shutdown): the polls waiting are too
                for _, done in batch + self._waiting:
                    done.cancel()
                self._waiting = []
                raise
            self.writes += 1
            self.written += len(batch) - len(missed)
            for poll, done in batch:
                if not done.done():
                    done.set_result(poll.run_id not in missed)
