"""Quiet polls written together (``RunStore.record_quiet``): one transaction for many runs, never over a run another
writer changed since its poll read it."""

from __future__ import annotations

from datetime import timedelta

from bot.models import RunState, RunStatus
from bot.store.store import Store
from tests.unit.store.test_store import NOW, new_run

LEASE = timedelta(minutes=5)
RUNNING = RunStatus("p", RunState.RUNNING, "R", message="busy")


async def _running(store: Store, n: int) -> list[int]:
    ids = []
    for i in range(n):
        run = await store.runs.create(new_run(provider_run_id=f"p-{i}"), now=NOW, next_poll_at=NOW)
        assert await store.runs.record_status(run.id, RUNNING, now=NOW, next_poll_at=NOW) is not None
        ids.append(run.id)
    return ids


async def test_quiet_polls_are_written_in_one_batch(store: Store) -> None:
    ids = await _running(store, 5)
    claimed = await store.runs.claim_due("a", now=NOW, limit=10, lease=LEASE)
    later, due = NOW + timedelta(seconds=5), NOW + timedelta(seconds=35)
    polls = [store.runs.quiet(r, RUNNING, now=later, next_poll_at=due) for r in claimed]
    assert None not in polls

    assert await store.runs.record_quiet([p for p in polls if p is not None]) == set()
    for run_id in ids:
        run = await store.runs.get(run_id)
        assert run is not None and run.polls == 2 and run.next_poll_at == due and run.updated_at == later
        assert run.state == "running" and run.message == "busy"
    # the leases are handed back: another replica takes the runs when they fall due, well before "a"'s lease ends
    assert {r.id for r in await store.runs.claim_due("b", now=due, limit=10, lease=LEASE)} == set(ids)


async def test_a_poll_that_changes_what_people_see_is_not_quiet(store: Store) -> None:
    (run_id,) = await _running(store, 1)
    (run,) = await store.runs.claim_due("a", now=NOW, limit=10, lease=LEASE)
    later = NOW + timedelta(seconds=5)
    for status in (RunStatus("p", RunState.RUNNING, "R", message="step 2"), RunStatus("p", RunState.SUCCEEDED, "S",
                   final=True), RunStatus("p", RunState.RUNNING, "R2", message="busy")):
        assert store.runs.quiet(run, status, now=later, next_poll_at=later) is None
    missed = await store.runs.record_poll_error(run_id, "timeout", now=NOW, next_poll_at=NOW)
    assert store.runs.quiet(missed, RUNNING, now=later, next_poll_at=later) is None  # "unknown since" goes away


async def test_quiet_polls_never_overwrite_a_run_changed_since_its_poll_read_it(store: Store) -> None:
    """Between the claim and the batched write, the watcher records one run and the bot ends another: neither is
    overwritten; each run of the batch is either written or handed back untouched (recorded then one by one)."""
    quiet, watched, ended, other = await _running(store, 4)
    claimed = {r.id: r for r in await store.runs.claim_due("a", now=NOW, limit=10, lease=LEASE)}
    later, due = NOW + timedelta(seconds=5), NOW + timedelta(seconds=35)
    polls = [store.runs.quiet(claimed[i], RUNNING, now=later, next_poll_at=due) for i in (quiet, watched, ended, other)]

    watcher_due = NOW + timedelta(seconds=90)
    assert await store.runs.record_status(watched, RUNNING, now=later, next_poll_at=watcher_due) is None
    await store.runs.finish(ended, RunState.UNKNOWN, "the bot stopped following it", now=later)

    missed = await store.runs.record_quiet([p for p in polls if p is not None])
    assert {watched, ended} <= missed
    by_watcher = await store.runs.get(watched)
    assert by_watcher is not None and by_watcher.polls == 2 and by_watcher.next_poll_at == watcher_due
    stopped = await store.runs.get(ended)
    assert stopped is not None and stopped.final and stopped.state == "unknown" and stopped.next_poll_at is None
    for run_id in (quiet, other):
        run = await store.runs.get(run_id)
        assert run is not None
        assert (run.polls, run.next_poll_at) == ((1, NOW) if run_id in missed else (2, due))

    for run_id in missed:  # what the poller does with them: each recorded on its own, read again if it moved
        await store.runs.record_status(run_id, RUNNING, now=later, next_poll_at=due, read=claimed[run_id])
    stopped = await store.runs.get(ended)
    assert stopped is not None and stopped.final and stopped.polls == 1
    for run_id in (quiet, other):
        run = await store.runs.get(run_id)
        assert run is not None and run.polls == 2 and run.next_poll_at == due
