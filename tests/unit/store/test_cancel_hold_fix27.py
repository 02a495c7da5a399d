"""Session 27: a cancel cut by a process kill, then a second cancel refused, held the run's failure up to ten minutes
after the second click (the fifteenth pass (a)'s low: a kill at 0, a refusal at 9 minutes, the failure recorded at
19). The hold is bounded from the first request nobody answered; only an answer lost later renews it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.models import RunState, RunStatus
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.runs import CANCEL_PENDING_LIMIT
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
FAILED = RunStatus("r-1", RunState.FAILED, "F", message="Table not found")  # Rivery's legacy API: a cancel reads F


async def _running(store: Store) -> RunRecord:
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rivery", job={"river_id": "r"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="orders", channel="C1", provider_run_id="r-1"),
        now=NOW, next_poll_at=NOW,
    )
    await store.runs.record_status(run.id, RunStatus("r-1", RunState.RUNNING, "R"), now=NOW, next_poll_at=NOW)
    return run


def _at(minutes: float) -> datetime:
    return NOW + timedelta(minutes=minutes)


async def test_a_cancel_cut_by_a_kill_then_one_refused_holds_the_failure_no_longer_than_the_first_ones_bound(
    store: Store,
) -> None:
    run = await _running(store)
    assert await store.runs.cancel_requested(run.id, "U_ANN", now=_at(0))  # the process killed inside the call
    assert await store.runs.cancel_requested(run.id, "U_BEN", now=_at(9))  # a second click…
    await store.runs.cancel_withdrawn(run.id)  # …refused: "not running any more"
    held = await store.runs.record_status(run.id, FAILED, now=_at(9.5), next_poll_at=_at(9.6))
    assert held is None or not held.ends  # the first request may still have stopped it: held, as before
    after = CANCEL_PENDING_LIMIT + timedelta(seconds=30)
    change = await store.runs.record_status(run.id, FAILED, now=NOW + after, next_poll_at=None)
    # before: held until ten minutes after the second click (19 minutes), the failure unannounced meanwhile
    assert change is not None and change.ends, change
    assert change.run.state == "failed" and change.run.message == "Table not found"


async def test_a_cancel_whose_answer_was_lost_later_still_takes_the_failure_for_the_cancel(store: Store) -> None:
    """An answer lost at 9 minutes may have stopped the run then: its own ten minutes count from it."""
    run = await _running(store)
    assert await store.runs.cancel_requested(run.id, "U_ANN", now=_at(0))
    await store.runs.cancel_unconfirmed(run.id, now=_at(0))
    assert await store.runs.cancel_requested(run.id, "U_BEN", now=_at(9))
    await store.runs.cancel_unconfirmed(run.id, now=_at(9))
    change = await store.runs.record_status(run.id, FAILED, now=_at(10.5), next_poll_at=None)
    assert change is not None and change.ends
    assert change.run.state == "canceled", change.run
