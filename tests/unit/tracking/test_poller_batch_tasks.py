"""A batched call's runs recorded by the batch's own task (issue 16, memory): no task per run waiting for the one
answer (thousands at once when a scope's runs are claimed together: their memory stayed in the process), the
quiet polls written together, the changes recorded one pipeline at a time, the runs the answer does not show asked
on their own, and a failed call each run's failure as before."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import cast

import pytest

from bot.errors import ProviderError
from bot.models import RunState, RunStatus
from bot.service.clients import ClientPool
from bot.store.records import NewRun, RunOrigin, RunRecord, Transition
from bot.store.store import Store
from bot.tracking.poller import Poller
from tests.unit.tracking.test_poller import LEASE, NOW, ListingProvider


class HeldKitchen(ListingProvider):
    """One scope; each batched call waits until the test lets it answer; ``missing`` runs are not in the answer, and
    ``failing`` makes the call fail."""

    def __init__(self, missing: set[str] = frozenset(), failing: bool = False) -> None:  # type: ignore[assignment]
        super().__init__()
        self.missing = missing
        self.failing = failing
        self.held = asyncio.Event()
        self.go = asyncio.Event()

    async def statuses(
        self, runs: list[tuple[object, str]], *, since: datetime, slots: object = None
    ) -> dict[str, RunStatus]:
        self.batches.append(len(runs))
        self.held.set()
        await self.go.wait()
        if self.failing:
            raise ProviderError("the kitchen is down")
        return {run_id: RunStatus(run_id, RunState.RUNNING, "R") for _, run_id in runs if run_id not in self.missing}

    async def get_status(self, job: object, run_id: str) -> RunStatus:
        self.asked.append(run_id)
        return RunStatus(run_id, RunState.RUNNING, "R")


async def _runs(store: Store, n: int, due_in: list[timedelta] | None = None) -> list[RunRecord]:
    new = NewRun(
        provider="datakitchen",
        connection="dk",
        job={"kitchen": "k"},
        parameters={},
        origin=RunOrigin.WATCH,
        pipeline="orders",
        channel=None,
        provider_run_id="",
    )
    return [
        await store.runs.create(
            replace(new, pipeline=f"pipeline-{i % 2}", provider_run_id=f"o-{i}"),
            now=NOW,
            next_poll_at=NOW + (due_in[i] if due_in else timedelta(0)),
        )
        for i in range(n)
    ]


def _poll_tasks() -> int:
    return sum(1 for t in asyncio.all_tasks() if t.get_name().startswith("poll run"))


async def test_a_batch_s_runs_are_recorded_by_its_own_task_not_a_task_each(store: Store) -> None:
    kitchen = HeldKitchen(missing={"o-3"})
    clock = [NOW]
    changes: list[Transition] = []

    async def changed(change: Transition) -> None:
        changes.append(change)

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(
        store,
        cast(ClientPool, kitchen),
        owner="a",
        now=lambda: clock[0],
        on_change=changed,
        on_unknown=unknown,
        lease=LEASE,
        tick_wait=0.0,
    )
    poller.intervals = replace(poller.intervals, base=timedelta(seconds=30))
    runs = await _runs(store, 20)
    assert await asyncio.wait_for(poller.tick(), 5) == 20
    await asyncio.wait_for(kitchen.held.wait(), 5)
    assert kitchen.batches == [20]
    assert _poll_tasks() == 0  # before: twenty tasks, each waiting for the one answer
    kitchen.go.set()
    await asyncio.wait_for(poller.idle(), 5)
    assert kitchen.asked == ["o-3"]  # not in the answer: asked on its own
    # every first poll is a change (queued → running), each handed over once, each pipeline's in its runs' order
    assert sorted(c.run.id for c in changes) == sorted(r.id for r in runs)
    for pipeline in ("pipeline-0", "pipeline-1"):
        mine = [c.run.id for c in changes if c.run.pipeline == pipeline and c.run.provider_run_id != "o-3"]
        assert mine == sorted(mine)
    for run in runs:
        now = await store.runs.get(run.id)
        assert now is not None and now.state.value == "running" and now.polls == 1, now
    assert await store.runs.claim_due("b", now=NOW + timedelta(seconds=1), limit=50, lease=LEASE) == []

    # the next interval: nothing changes, the batch's quiet polls are written together (one write)
    changes.clear()
    kitchen.held.clear()
    writes = poller.quiet.writes
    clock[0] = NOW + timedelta(minutes=10)
    assert await asyncio.wait_for(poller.tick(), 5) == 20
    await asyncio.wait_for(poller.idle(), 5)
    assert changes == []
    assert poller.quiet.writes - writes <= 2  # the batch's nineteen in one, the run asked on its own maybe apart
    assert poller.quiet.written >= 20
    assert not poller._polling  # every lease handed back, nothing left under way
    for run in runs:
        now = await store.runs.get(run.id)
        assert now is not None and now.polls == 2, now
    # every lease handed back: another replica may claim them all when they are due
    later = await store.runs.claim_due("b", now=clock[0] + timedelta(hours=1), limit=50, lease=LEASE)
    assert len(later) == 20


async def test_a_failed_batch_is_each_of_its_runs_failure(store: Store) -> None:
    kitchen = HeldKitchen(failing=True)
    kitchen.go.set()
    unknowns: list[int] = []
    errors: list[str] = []

    async def changed(change: Transition) -> None:
        raise AssertionError("nothing was learnt")

    async def unknown(run: RunRecord) -> None:
        unknowns.append(run.id)

    async def provider_error(connection: str, message: str) -> None:
        errors.append(connection)

    poller = Poller(
        store,
        cast(ClientPool, kitchen),
        owner="a",
        now=lambda: NOW,
        on_change=changed,
        on_unknown=unknown,
        on_provider_error=provider_error,
        lease=LEASE,
        tick_wait=0.0,
    )
    runs = await _runs(store, 6)
    await asyncio.wait_for(poller.tick(), 5)
    await asyncio.wait_for(poller.idle(), 5)
    assert kitchen.batches == [6]
    assert sorted(unknowns) == sorted(r.id for r in runs)
    assert errors == ["dk"] * 6
    for run in runs:
        now = await store.runs.get(run.id)
        assert now is not None and now.unknown_since == NOW and "the kitchen is down" in now.last_error, now
    assert len(await store.runs.claim_due("b", now=NOW + timedelta(hours=1), limit=50, lease=LEASE)) == 6


async def test_the_runs_claimed_early_for_a_batch_are_read_in_claims_of_batch_runs(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scope's runs falling due within the interval are claimed ``batch`` at a time, up to ``early`` in all, and
    still asked in the one batched call: one claim of 2,500 runs held their rows and records at once (the RSS of that
    burst stayed, docs/PERFORMANCE.md "Seventh pass")."""
    kitchen = HeldKitchen()
    kitchen.go.set()
    claims: list[tuple[int, int]] = []  # (limit, runs claimed)
    claim_soon = store.runs.claim_soon

    async def counted(
        owner: str, connections: Collection[str], *, until: datetime, now: datetime, limit: int, lease: timedelta
    ) -> list[RunRecord]:
        got = await claim_soon(owner, connections, until=until, now=now, limit=limit, lease=lease)
        claims.append((limit, len(got)))
        return got

    async def changed(change: Transition) -> None:
        pass

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    monkeypatch.setattr(store.runs, "claim_soon", counted)
    poller = Poller(
        store, cast(ClientPool, kitchen), owner="a", now=lambda: NOW, on_change=changed, on_unknown=unknown,
        lease=LEASE, tick_wait=0.0, batch=4, early=14,
    )
    poller.intervals = replace(poller.intervals, base=timedelta(seconds=30))
    runs = await _runs(store, 20, due_in=[timedelta(0)] * 4 + [timedelta(seconds=10)] * 16)
    await asyncio.wait_for(poller.tick(), 5)
    await asyncio.wait_for(poller.idle(), 5)
    assert claims == [(4, 4), (4, 4), (4, 4), (2, 2)]  # before: one claim of 14
    assert kitchen.batches == [18]  # the 4 due and the 14 claimed early, in one call
    polls = [found.polls for r in runs if (found := await store.runs.get(r.id)) is not None]
    assert sorted(polls) == [0, 0] + [1] * 18  # each once; the two left are for their own time
