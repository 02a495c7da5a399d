"""The poller's ticks with a provider that does not answer yet: the tick does not wait for it, the run stays
leased to its poll for as long as the poll lasts (past the lease's length), and nobody polls it a second time
meanwhile, neither a later tick nor another replica."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import event

from bot.models import RunState, RunStatus
from bot.service.clients import ClientPool
from bot.store.records import NewRun, RunOrigin, RunRecord, Transition
from bot.store.store import Store
from bot.tracking.poller import Poller
from tests.unit.store.test_silent_changes import outcomes_rule

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


class SlowProvider:
    """A connection whose status answers come when the test says."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.asking = asyncio.Event()
        self.answer = asyncio.Event()

    def client(self, connection: str, provider_key: str | None = None) -> SlowProvider:
        return self

    def job(self, provider: str, job: Any) -> object:
        return job

    def slot(self, connection: str) -> asyncio.Semaphore:
        return asyncio.Semaphore(8)

    def can(self, capability: object) -> bool:
        return False  # no batched status calls: each run is asked on its own

    async def get_status(self, job: object, run_id: str) -> RunStatus:
        self.asked.append(run_id)
        self.asking.set()
        await self.answer.wait()
        return RunStatus(run_id, RunState.RUNNING, "R")


async def _run(store: Store, provider_run_id: str) -> RunRecord:
    new = NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
                 pipeline="leads-ods", channel="C1", provider_run_id=provider_run_id)
    return await store.runs.create(new, now=NOW, next_poll_at=NOW)


async def test_a_poll_outlasting_its_lease_keeps_its_run_and_is_never_doubled(store: Store) -> None:
    slow = SlowProvider()
    clock = [NOW]
    changes: list[Transition] = []

    async def changed(change: Transition) -> None:
        changes.append(change)

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(store, cast(ClientPool, slow), owner="a", now=lambda: clock[0], on_change=changed,
                    on_unknown=unknown, lease=LEASE, tick_wait=0.0)
    run = await _run(store, "p-1")
    # the guard only keeps a tick that waits for its polls (the defect) from hanging the suite
    assert await asyncio.wait_for(poller.tick(), 5) == 1
    await asyncio.wait_for(slow.asking.wait(), 5)
    assert slow.asked == ["p-1"]

    clock[0] = NOW + LEASE / 2
    assert await asyncio.wait_for(poller.tick(), 5) == 0  # the run is the poll's: its lease is renewed
    clock[0] = NOW + LEASE + timedelta(seconds=1)  # the poll still waits on the provider, past the first lease
    assert await store.runs.claim_due("b", now=clock[0], limit=10, lease=LEASE) == []  # not another replica's
    assert await asyncio.wait_for(poller.tick(), 5) == 0

    # a tick that failed midway hands back what it left, never the run still being polled
    poller._ticks.failed_midway()
    await asyncio.wait_for(poller.tick(), 5)
    assert await store.runs.claim_due("b", now=clock[0], limit=10, lease=LEASE) == []
    assert slow.asked == ["p-1"]

    slow.answer.set()
    await poller.idle()
    assert slow.asked == ["p-1"]  # asked once in all
    assert [c.run.state for c in changes] == ["running"]
    later = clock[0] + timedelta(hours=1)  # its next poll is due: the lease went back with the answer
    assert [r.id for r in await store.runs.claim_due("b", now=later, limit=10, lease=LEASE)] == [run.id]


async def test_the_quiet_polls_answered_together_are_written_in_one_transaction(store: Store) -> None:
    """Polls whose answers change nothing a person sees share one write (``QuietWrites``); a change still gets its
    own, with its transition reported."""
    slow = SlowProvider()
    changes: list[Transition] = []

    async def changed(change: Transition) -> None:
        changes.append(change)

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(store, cast(ClientPool, slow), owner="a", now=lambda: NOW, on_change=changed,
                    on_unknown=unknown, lease=LEASE, tick_wait=0.0)
    runs = [await _run(store, f"p-{i}") for i in range(10)]
    for run in runs[:8]:  # already running: their next answer changes nothing
        await store.runs.record_status(run.id, RunStatus(run.provider_run_id or "", RunState.RUNNING, "R"), now=NOW,
                                       next_poll_at=NOW)
    assert await asyncio.wait_for(poller.tick(), 5) == 10
    slow.answer.set()
    await asyncio.wait_for(poller.idle(), 5)

    assert (poller.quiet.writes, poller.quiet.written) == (1, 8)
    assert sorted(c.run.id for c in changes) == [r.id for r in runs[8:]]  # queued → running, each reported
    for run in runs:
        after = await store.runs.get(run.id)
        assert after is not None and after.state == "running" and after.polls == (2 if run in runs[:8] else 1)


async def test_a_connection_with_polls_enough_under_way_has_no_more_of_its_runs_claimed(store: Store) -> None:
    """Each claimed run is a task waiting for its connection's slot: a connection with ``in_flight`` polls under way
    has none of its due runs claimed until they finish (they stay due in the store); other connections go on."""
    slow = SlowProvider()

    async def changed(change: Transition) -> None:
        pass

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(store, cast(ClientPool, slow), owner="a", now=lambda: NOW, on_change=changed,
                    on_unknown=unknown, lease=LEASE, tick_wait=0.0, in_flight=2)
    for i in range(3):
        await _run(store, f"p-{i}")
    assert await asyncio.wait_for(poller.tick(), 5) == 3
    late = await _run(store, "p-late")
    await store.runs.create(
        NewRun(provider="rivery", connection="rivery-eu", job={"river_id": "r2"}, parameters={},
               origin=RunOrigin.SLACK, pipeline="leads-eu", channel="C1", provider_run_id="p-eu"),
        now=NOW, next_poll_at=NOW,
    )
    assert await asyncio.wait_for(poller.tick(), 5) == 1  # only the other connection's run
    slow.answer.set()
    await asyncio.wait_for(poller.idle(), 5)
    assert sorted(slow.asked) == ["p-0", "p-1", "p-2", "p-eu"]
    assert [r.id for r in await store.runs.claim_due("b", now=NOW, limit=10, lease=LEASE)] == [late.id]


async def test_a_tick_claims_every_due_run_not_only_one_batch(store: Store) -> None:
    """One claim of ``batch`` runs a tick capped one process at ``batch`` polls a second (500/s by default: 15,000
    runs due every 30 s), however fast the machine: the rest waited for later ticks and fell behind for good. A tick
    claims again while a claim comes back full (within ``rounds`` claims)."""
    slow = SlowProvider()
    slow.answer.set()

    async def changed(change: Transition) -> None:
        pass

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(store, cast(ClientPool, slow), owner="a", now=lambda: NOW, on_change=changed,
                    on_unknown=unknown, lease=LEASE, tick_wait=0.0, batch=4, rounds=3)
    for i in range(14):
        await _run(store, f"p-{i}")
    assert await asyncio.wait_for(poller.tick(), 5) == 12  # three claims of four
    await asyncio.wait_for(poller.idle(), 5)
    assert await asyncio.wait_for(poller.tick(), 5) == 2
    await asyncio.wait_for(poller.idle(), 5)
    assert sorted(slow.asked) == sorted(f"p-{i}" for i in range(14))



async def test_runs_claimed_late_in_a_slow_tick_are_leased_from_their_claim_and_never_doubled(store: Store) -> None:
    """A tick's claims took their leases from the tick's start: on a loaded process (a start-up with thousands of
    runs found at once) a claim made 90 s into the tick had a lease already expired, and another replica claimed
    and polled runs whose polls were still waiting here (two replicas polling one run: issue 16's replicas run had
    59 such calls). Each claim round leases from its own time, and renews the polls under way as the tick goes on."""
    slow = SlowProvider()
    clock = [NOW]

    async def changed(change: Transition) -> None:
        pass

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(store, cast(ClientPool, slow), owner="a", now=lambda: clock[0], on_change=changed,
                    on_unknown=unknown, lease=LEASE, tick_wait=0.0, batch=2, rounds=4)
    claim_due = store.runs.claim_due

    async def slow_claim(*args: Any, **kwargs: Any) -> list[RunRecord]:
        got = await claim_due(*args, **kwargs)
        clock[0] += timedelta(seconds=45)  # each claim round takes 45 s on the loaded process
        return got

    store.runs.claim_due = slow_claim  # type: ignore[method-assign]
    for i in range(6):
        await _run(store, f"p-{i}")
    assert await asyncio.wait_for(poller.tick(), 5) == 6
    store.runs.claim_due = claim_due  # type: ignore[method-assign]
    assert await store.runs.claim_due("b", now=clock[0] + timedelta(seconds=1), limit=10, lease=LEASE) == []
    slow.answer.set()
    await asyncio.wait_for(poller.idle(), 5)
    assert sorted(slow.asked) == sorted(f"p-{i}" for i in range(6))  # each once


class ListingProvider(SlowProvider):
    """A connection that answers for all its runs in one call (one scope), as DataKitchen's kitchen or a Tailer
    configuration does; it records how many runs each batched call asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def can(self, capability: object) -> bool:
        return True

    def status_scope(self, job: object) -> str:
        return "the kitchen"

    async def statuses(self, runs: list[tuple[object, str]], *, since: datetime, slots: object = None
                       ) -> dict[str, RunStatus]:
        self.batches.append(len(runs))
        return {run_id: RunStatus(run_id, RunState.RUNNING, "R") for _, run_id in runs}


async def test_a_scope_s_runs_due_within_the_interval_are_asked_in_one_batched_call(store: Store) -> None:
    """A tick claimed early, for the batched call of its due runs, at most ``batch`` runs across every batched
    connection: a scope's runs due over the interval were asked in several calls an interval, each about fewer runs
    than the scope holds (Tailer's list, whose length follows the runs asked about, then missed the others, polled
    one by one: 0.62 provider calls per run per interval at 20,000 runs). The scope's runs due within the interval
    are claimed early together, and asked about in one call."""
    listing = ListingProvider()

    async def changed(change: Transition) -> None:
        pass

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(store, cast(ClientPool, listing), owner="a", now=lambda: NOW, on_change=changed,
                    on_unknown=unknown, lease=LEASE, tick_wait=0.0, batch=4, rounds=3)
    new = NewRun(provider="datakitchen", connection="dk", job={"kitchen": "k"}, parameters={}, origin=RunOrigin.WATCH,
                 pipeline="orders", channel=None, provider_run_id="")
    for i in range(30):  # one due now, the others over the next 29 s (the interval is 5 s: the base's 30 s)
        await store.runs.create(replace(new, provider_run_id=f"o-{i}"), now=NOW, next_poll_at=NOW + timedelta(seconds=i))
    poller.intervals = replace(poller.intervals, base=timedelta(seconds=30))
    await asyncio.wait_for(poller.tick(), 5)
    await asyncio.wait_for(poller.idle(), 5)
    assert listing.batches == [30], listing.batches
    assert not listing.asked  # none asked on its own


class TwoKitchens(ListingProvider):
    """Two scopes on one connection; the first batched call waits until the test lets it answer."""

    def __init__(self) -> None:
        super().__init__()
        self.first = asyncio.Event()

    def status_scope(self, job: object) -> str:
        return str(cast(dict[str, str], job)["kitchen"])

    async def statuses(self, runs: list[tuple[object, str]], *, since: datetime, slots: object = None
                       ) -> dict[str, RunStatus]:
        if not self.batches:
            self.batches.append(len(runs))
            await self.first.wait()
            return {run_id: RunStatus(run_id, RunState.RUNNING, "R") for _, run_id in runs}
        return await super().statuses(runs, since=since, slots=slots)


async def test_a_batch_under_way_does_not_keep_its_connection_s_other_scopes_from_being_polled(store: Store) -> None:
    """A batch's runs counted one by one against ``in_flight`` (meant for polls each waiting for a slot): a scope of
    1,000 runs answered together kept the connection's other scopes from being claimed until it was recorded (at
    20,000 runs, a Tailer configuration's 1,000 runs were more than 5 s overdue at the end of the window)."""
    kitchens = TwoKitchens()
    clock = [NOW]

    async def changed(change: Transition) -> None:
        pass

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(store, cast(ClientPool, kitchens), owner="a", now=lambda: clock[0], on_change=changed,
                    on_unknown=unknown, lease=LEASE, tick_wait=0.0, in_flight=2)
    poller.intervals = replace(poller.intervals, base=timedelta(seconds=1))
    new = NewRun(provider="datakitchen", connection="dk", job={"kitchen": "a"}, parameters={}, origin=RunOrigin.WATCH,
                 pipeline="orders", channel=None, provider_run_id="")
    for i in range(5):
        await store.runs.create(replace(new, provider_run_id=f"a-{i}"), now=NOW, next_poll_at=NOW)
        await store.runs.create(replace(new, job={"kitchen": "b"}, provider_run_id=f"b-{i}"), now=NOW,
                                next_poll_at=NOW + timedelta(seconds=10))
    await asyncio.wait_for(poller.tick(), 5)  # kitchen a's five runs: one call, its answer held
    assert kitchens.batches == [5]
    clock[0] = NOW + timedelta(seconds=10)  # kitchen b's runs fall due while a's call is under way
    await asyncio.wait_for(poller.tick(), 5)
    assert kitchens.batches == [5, 5], kitchens.batches
    kitchens.first.set()
    await asyncio.wait_for(poller.idle(), 5)


async def test_a_change_that_tells_nobody_is_not_handed_over_and_costs_one_transaction(store: Store) -> None:
    """A watched run found running has no card and no alert to update (``Outcomes.tells``): the poller records it
    already notified, one transaction, and does not call ``on_change``; a run with a card is handed over as before."""
    slow = SlowProvider()
    slow.answer.set()
    changes: list[Transition] = []

    async def changed(change: Transition) -> None:
        changes.append(change)

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    poller = Poller(store, cast(ClientPool, slow), owner="a", now=lambda: NOW, on_change=changed,
                    on_unknown=unknown, lease=LEASE, tick_wait=5.0, tells=outcomes_rule)
    carded = await _run(store, "p-card")
    watched = [await store.runs.create(
        NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.WATCH,
               pipeline="leads-ods", channel="C1", provider_run_id=f"w-{i}"), now=NOW, next_poll_at=NOW)
        for i in range(3)]
    seen: list[int] = []

    def count(*_: object) -> None:
        seen.append(1)

    event.listen(store.engine.sync_engine, "commit", count)
    try:
        assert await asyncio.wait_for(poller.tick(), 5) == 4
        await asyncio.wait_for(poller.idle(), 5)
    finally:
        event.remove(store.engine.sync_engine, "commit", count)
    assert [c.run.id for c in changes] == [carded.id]
    # the claim, each watched run's change, the carded run's change (its mark is the notifier's, not called here)
    assert len(seen) == 1 + 3 + 1
    for run in watched:
        after = await store.runs.get(run.id)
        assert after is not None and after.state == "running" and after.notified_state == "running"
