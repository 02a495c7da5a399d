"""A status no document lists (Boomi's guide: terminal-unknown) is shown at once, with its raw code, and followed
for a bounded time only: 15 minutes from when it first appeared, not hours. The poller runs on a real store and a
real Rivery client against the emulator; only the bot's clock is set by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators.rivery import RiveryEmulator
from bot.models import RunState
from bot.providers import rivery
from bot.service.clients import ClientPool
from bot.store.records import NewRun, RunOrigin, RunRecord, Transition
from bot.store.store import Store
from bot.tracking.intervals import UNKNOWN_STATUS_LIMIT
from bot.tracking.poller import Poller

RIVER = "5e8e1eb46b028e37b73f44f0"
T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class World:
    def __init__(self, store: Store, emulator: RiveryEmulator) -> None:
        self.store = store
        self.emulator = emulator
        self.now = T0
        self.changes: list[Transition] = []
        connection = rivery.Connection(base_url=f"{emulator.url}/api", api_token="t0ken-value")
        self.pool = ClientPool({"rivery": connection})
        self.poller = Poller(store, self.pool, owner="test", now=lambda: self.now, on_change=self._changed,
                             on_unknown=self._unknown)

    async def _changed(self, change: Transition) -> None:
        self.changes.append(change)

    async def _unknown(self, run: RunRecord) -> None:
        raise AssertionError(f"Rivery answered; run {run.id} should not be 'unknown since'")

    async def started_run(self) -> RunRecord:
        triggered = await self.pool.client("rivery").trigger(rivery.Job(river_id=RIVER), {})
        new = NewRun(provider="rivery", connection="rivery", job={"river_id": RIVER}, parameters={}, origin=RunOrigin.SLACK,
                     pipeline="leads-ods", channel="C0")
        run = await self.store.runs.create(new, now=self.now, next_poll_at=None)
        return await self.store.starts.record_triggered(run.id, triggered.run_id, now=self.now, next_poll_at=self.now)

    async def poll_at(self, after: timedelta, run: RunRecord) -> RunRecord:
        self.now = T0 + after
        await self.store.runs.poll_now(run.id, now=self.now)
        await self.poller.tick()
        found = await self.store.runs.get(run.id)
        assert found is not None
        return found


@pytest.fixture
async def world(sqlite_store: Store) -> AsyncIterator[World]:
    clock = ManualClock()
    emulator = RiveryEmulator(EmulatorState(clock=clock, default=Outcome(queued_s=0, running_s=10_000)))
    await emulator.start()
    w = World(sqlite_store, emulator)
    yield w
    await w.pool.aclose()
    await emulator.stop()


async def test_an_unknown_status_shows_at_once_and_polling_stops_after_the_bounded_time(world: World) -> None:
    world.emulator.configure({"running_code": "Z"})
    run = await world.started_run()

    first = await world.poll_at(timedelta(seconds=5), run)
    assert (first.state, first.raw_status, first.final) == ("unknown", "Z", False)
    assert world.changes and world.changes[-1].run.run_state is RunState.UNKNOWN  # the card shows it at once

    still = await world.poll_at(timedelta(seconds=5) + UNKNOWN_STATUS_LIMIT - timedelta(seconds=1), run)
    assert not still.final and still.next_poll_at is not None

    ended = await world.poll_at(timedelta(seconds=5) + UNKNOWN_STATUS_LIMIT, run)
    assert ended.final and ended.next_poll_at is None
    assert ended.raw_status == "Z"
    assert "did not change for 15m 00s; the bot stopped following this run" in ended.message
    assert timedelta(minutes=15) == UNKNOWN_STATUS_LIMIT


async def test_the_bound_counts_from_when_the_unknown_status_appeared_not_from_the_start(world: World) -> None:
    run = await world.started_run()
    running = await world.poll_at(timedelta(hours=2), run)
    assert (running.state, running.raw_status) == ("running", "R")

    world.emulator.configure({"running_code": "Z"})
    odd = await world.poll_at(timedelta(hours=3), run)
    assert (odd.state, odd.final) == ("unknown", False)  # three hours old, but the odd status is new
    later = await world.poll_at(timedelta(hours=3, minutes=10), run)
    assert not later.final
    assert (await world.poll_at(timedelta(hours=3, minutes=15), run)).final
