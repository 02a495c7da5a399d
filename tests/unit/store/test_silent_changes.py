"""A change that tells nobody (a watched run found running: no card, no alert) is recorded and marked notified in
one transaction (``RunStore.record_status(tells=…)``); a change that tells someone stays unnotified until its card and
alerts are written, so a process killed between recording and notifying leaves it to recovery (``unnotified``).
Both databases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from bot.models import RunState, RunStatus
from bot.store.records import NewRun, RunOrigin, RunRecord, StoredState, Transition
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)  # past recovery's grace: what a new process after a SIGKILL would look for


def outcomes_rule(change: Transition) -> bool:
    """``Outcomes.tells``: a run with a card, or an end."""
    return change.run.origin != RunOrigin.WATCH or (change.run.final and change.before != change.run.state)


async def _run(store: Store, origin: RunOrigin, provider_run_id: str) -> RunRecord:
    new = NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={}, origin=origin,
                 pipeline="leads-ods", channel="C1", provider_run_id=provider_run_id)
    return await store.runs.create(new, now=NOW, next_poll_at=NOW)


@contextmanager
def commits(store: Store) -> Iterator[list[int]]:
    seen: list[int] = []

    def count(*_: object) -> None:
        seen.append(1)

    event.listen(store.engine.sync_engine, "commit", count)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "commit", count)


async def _unnotified_ids(store: Store) -> set[int]:
    return {r.id for r in await store.runs.unnotified(older_than=LATER)}


async def test_a_change_that_tells_nobody_is_recorded_notified_in_one_transaction(store: Store) -> None:
    run = await _run(store, RunOrigin.WATCH, "w-1")
    with commits(store) as seen:
        change = await store.runs.record_status(run.id, RunStatus("w-1", RunState.RUNNING, "R"), now=NOW,
                                                next_poll_at=NOW, read=run, tells=outcomes_rule)
    assert change is None  # nothing to hand to the notifier
    assert len(seen) == 1
    after = await store.runs.get(run.id)
    assert after is not None and after.state == StoredState.RUNNING and after.notified_state == StoredState.RUNNING
    assert [e[1] for e in await store.runs.events(run.id)][-1] == "running"  # its history line, same transaction
    assert run.id not in await _unnotified_ids(store)


async def test_a_change_that_tells_someone_is_left_to_recovery_until_notified(store: Store) -> None:
    """The process dies (SIGKILL) after the change is recorded, before its card is written: the next process's
    recovery finds it. A watched run's end tells too (its alert), so does any change of a run with a card."""
    carded = await _run(store, RunOrigin.SLACK, "s-1")
    watched = await _run(store, RunOrigin.WATCH, "w-2")
    card_change = await store.runs.record_status(carded.id, RunStatus("s-1", RunState.RUNNING, "R"), now=NOW,
                                                 next_poll_at=NOW, read=carded, tells=outcomes_rule)
    end = await store.runs.record_status(
        watched.id, RunStatus("w-2", RunState.FAILED, "F", final=True), now=NOW, next_poll_at=None, read=watched,
        tells=outcomes_rule,
    )
    assert card_change is not None and card_change.after == StoredState.RUNNING
    assert end is not None and end.after == StoredState.FAILED
    for change in (card_change, end):
        assert change.run.notified_state is None  # not marked: the notifier has not written anything yet
    # killed here: nothing marked them, recovery finds both
    assert {carded.id, watched.id} <= await _unnotified_ids(store)


async def test_an_earlier_change_still_unnotified_is_never_hidden_by_a_silent_one(store: Store) -> None:
    """A change that tells nobody from the run's last state, but would from the state last notified (the one
    recovery starts from), is not marked: the earlier change, never shown, is still recovery's to show."""
    run = await _run(store, RunOrigin.WATCH, "w-3")

    def from_queued(change: Transition) -> bool:  # a rule under which leaving "queued" tells someone
        return change.before == StoredState.QUEUED

    first = await store.runs.record_status(run.id, RunStatus("w-3", RunState.RUNNING, "R"), now=NOW,
                                           next_poll_at=NOW, read=run, tells=from_queued)
    assert first is not None  # told: left unnotified (and the process dies before notifying)
    second = await store.runs.record_status(first.run.id, RunStatus("w-3", RunState.RUNNING, "R", message="step 2"),
                                            now=NOW, next_poll_at=NOW, tells=from_queued)
    assert second is not None and second.run.notified_state is None
    assert run.id in await _unnotified_ids(store)


async def test_without_a_rule_every_change_is_handed_over_as_before(store: Store) -> None:
    run = await _run(store, RunOrigin.WATCH, "w-4")
    change = await store.runs.record_status(run.id, RunStatus("w-4", RunState.RUNNING, "R"), now=NOW,
                                            next_poll_at=NOW, read=run)
    assert change is not None and change.run.notified_state is None
