"""A cancel clicked while a poll of its run is under way (twelfth independent pass): the poll read the run before the
click, and its provider reports the canceled run as failed (Rivery's legacy API says ``F`` for a canceled run). The
poll must record what the person asked for, a cancel, never a failure: a failure alerts the owners and a retry
policy would start the run again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from bot.models import RunState, RunStatus
from bot.service.clients import ClientPool
from bot.store.records import NewRun, RunOrigin, RunRecord, Transition
from bot.store.store import Store
from bot.tracking.poller import Poller

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class HeldProvider:
    """A legacy Rivery connection whose status answer comes when the test says: a canceled run reads as failed."""

    def __init__(self) -> None:
        self.asking = asyncio.Event()
        self.answer = asyncio.Event()

    def client(self, connection: str, provider_key: str | None = None) -> HeldProvider:
        return self

    def job(self, provider: str, job: Any) -> object:
        return job

    def slot(self, connection: str) -> asyncio.Semaphore:
        return asyncio.Semaphore(8)

    def can(self, capability: object) -> bool:
        return False

    async def get_status(self, job: object, run_id: str) -> RunStatus:
        self.asking.set()
        await self.answer.wait()
        return RunStatus(run_id, RunState.FAILED, "F", message="River run failed")


async def test_a_cancel_clicked_while_its_run_is_polled_is_recorded_as_a_cancel(store: Store) -> None:
    held = HeldProvider()
    changes: list[Transition] = []

    async def changed(change: Transition) -> None:
        changes.append(change)

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(store, cast(ClientPool, held), owner="a", now=lambda: NOW, on_change=changed, on_unknown=unknown,
                    tick_wait=0.0)
    new = NewRun(provider="rivery", connection="rivery-legacy", job={"river_id": "r1"}, parameters={},
                 origin=RunOrigin.SLACK, pipeline="refunds-us", channel="C1", provider_run_id="p-1")
    run = await store.runs.create(new, now=NOW, next_poll_at=NOW)
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.RUNNING, "R"), now=NOW, next_poll_at=NOW)

    assert await asyncio.wait_for(poller.tick(), 5) == 1  # the poll read the run: running, nobody asked to cancel
    await asyncio.wait_for(held.asking.wait(), 5)
    # meanwhile someone clicks Cancel: the request is recorded, Rivery cancels the run and says so
    await store.runs.cancel_requested(run.id, "U_ANN", now=NOW)
    await store.runs.cancel_taken(run.id, "U_ANN")
    held.answer.set()  # the poll's answer comes after the cancel: "F"
    await asyncio.wait_for(poller.idle(), 5)

    after = await store.runs.get(run.id)
    assert after is not None and after.final
    assert after.state == RunState.CANCELED.value, after.state  # not a failure: no alert, no retry
    assert "canceled at <@U_ANN>'s request" in after.message
    assert [c.run.state for c in changes] == [RunState.CANCELED.value]
