"""Fifteenth independent pass (a) of issue 11, on the store (SQLite and PostgreSQL): a cancel request never lands on
an ended run, and a failure from a provider that shows its cancels as such is never taken for a cancel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.models import RunState, RunStatus
from bot.providers.rivery import parse_check_run, parse_v1_run
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


async def _running(store: Store, order: str = "o-1") -> RunRecord:
    run = await store.runs.create(
        NewRun(provider="datakitchen", connection="dk", job={"kitchen": "k"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="sales", channel="C1", provider_run_id=order),
        now=NOW, next_poll_at=NOW,
    )
    await store.runs.record_status(run.id, RunStatus(order, RunState.RUNNING, "ACTIVE_SERVING"), now=NOW,
                                   next_poll_at=NOW)
    return run


async def test_a_cancel_asked_of_a_run_that_ended_meanwhile_is_not_recorded(store: Store) -> None:
    """The click read the run running; its failure was recorded before the request (and a retry policy held the
    alert for the next attempt): the request must not land on the failed attempt."""
    run = await _running(store)
    await store.runs.record_status(run.id, RunStatus("o-1", RunState.FAILED, "F"), now=NOW, next_poll_at=NOW)
    assert await store.runs.cancel_requested(run.id, "U_ANN", now=NOW) is False
    after = await store.runs.get(run.id)
    assert after is not None and after.state == "failed"
    assert (after.cancel_requested_by, after.cancel_pending_since, after.cancel_asks) == (None, None, 0)
    live = await _running(store, "o-2")
    assert await store.runs.cancel_requested(live.id, "U_ANN", now=NOW) is True


async def test_a_failure_from_a_provider_that_shows_cancels_is_never_held_nor_taken_for_a_cancel(store: Store) -> None:
    failed = RunStatus("o-1", RunState.FAILED, "FAILED_SERVING", message="Node load failed", shows_cancels=True)
    on_its_way = await _running(store)  # a stop on its way: announced at once, not held
    await store.runs.cancel_requested(on_its_way.id, "U_ANN", now=NOW)
    lost = await _running(store, "o-2")  # a stop whose answer was lost
    await store.runs.cancel_requested(lost.id, "U_ANN", now=NOW)
    await store.runs.cancel_unconfirmed(lost.id, now=NOW)
    taken = await _running(store, "o-3")  # a stop taken, yet the provider says failed: it failed on its own
    await store.runs.cancel_requested(taken.id, "U_ANN", now=NOW)
    await store.runs.cancel_taken(taken.id, "U_ANN")
    for run in (on_its_way, lost, taken):
        change = await store.runs.record_status(run.id, failed, now=NOW + timedelta(seconds=30), next_poll_at=None)
        assert change is not None and change.ends, run.id
        assert change.run.state == "failed" and change.run.message == "Node load failed"


def test_rivery_v1_shows_its_cancels_and_the_legacy_api_does_not() -> None:
    assert parse_v1_run({"run_id": "r", "status": "failed"}).shows_cancels
    assert not parse_check_run({"river_run_status": "F"}, "r").shows_cancels  # a cancel reads "F" there
