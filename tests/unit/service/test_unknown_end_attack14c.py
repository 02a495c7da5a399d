"""A run whose status stayed outside the model too long is ended "unknown" by the poller, in the state it already
showed (fourteenth pass c). Its end was never acted on: ``Outcomes`` took an end to be a change of state, so a
workflow's step waited for its run for ever (the workflow never went on nor stopped), a Workflow Builder step never
completed, the retry policy was never asked and a failure held for this attempt was never announced. Recorded on
the real store (SQLite, PostgreSQL) as the poller records it, handed to the real ``Outcomes``; after a crash between
the two, recovery acts on it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from bot.models import RunState, RunStatus
from bot.service.alerts import Alerter
from bot.service.notify import Notifier
from bot.service.outcomes import Outcomes, RetryPolicy, StepFollower, StepWaiter
from bot.service.recovery import Recovery
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
HELD = "(status 'Z' did not change for 15m 00s; the bot stopped following this run)"


class Recorder:
    """Stands for the notifier, alerter, retrier, workflows and steps: records each call, answers None."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def has_card(self, run: RunRecord) -> bool:
        return run.origin != RunOrigin.WATCH

    def pipeline(self, run: RunRecord) -> object:  # the run's pipeline is in the catalog
        return object()

    def __getattr__(self, name: str) -> Any:
        async def call(*_: object, **__: object) -> None:
            self.calls.append(name)
        return call


async def _held_unknown(store: Store, origin: RunOrigin, outcomes: Outcomes, *, crash: bool) -> RunRecord:
    """A step's run: running, then an unlisted status "Z" (unknown, followed), then "Z" held too long (ended)."""
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=origin,
               pipeline="refunds", channel="C1", provider_run_id=f"p-{origin.value}", workflow_run_id=7, step="load"),
        now=T0, next_poll_at=T0,
    )
    answers = [
        RunStatus(run.provider_run_id or "", RunState.RUNNING, "R"),
        RunStatus(run.provider_run_id or "", RunState.UNKNOWN, "Z"),
        RunStatus(run.provider_run_id or "", RunState.UNKNOWN, "Z", message=HELD, final=True),
    ]
    for i, status in enumerate(answers):
        now = T0 + timedelta(minutes=20 * i)
        change = await store.runs.record_status(
            run.id, status, now=now, next_poll_at=None if status.final else now, tells=outcomes.tells
        )
        if change is not None and not (crash and status.final):
            await outcomes.on_change(change)
    found = await store.runs.get(run.id)
    assert found is not None and found.final and found.state == RunState.UNKNOWN.value
    return found


def _outcomes(rec: Recorder) -> Outcomes:
    return Outcomes(cast(Store, None), cast(Notifier, rec), cast(Alerter, rec), cast(RetryPolicy, rec),
                    cast(StepFollower, rec), steps=cast(StepWaiter, rec))


@pytest.mark.parametrize("origin", [RunOrigin.WORKFLOW, RunOrigin.WATCH])  # a step's own run, or one it adopted
async def test_a_run_ended_unknown_in_the_state_it_showed_moves_its_workflow_on(store: Store, origin: RunOrigin) -> None:
    rec = Recorder()
    outcomes = _outcomes(rec)
    outcomes.store = store
    await _held_unknown(store, origin, outcomes, crash=False)
    assert "step_ended" in rec.calls  # the workflow goes on (or stops, announced)
    assert "run_ended" in rec.calls  # a Workflow Builder step waiting for it completes
    assert "maybe_retry" in rec.calls and "held_failure" in rec.calls
    assert await store.runs.unnotified(older_than=T0 + timedelta(days=1)) == []


async def test_a_crash_before_such_an_end_was_acted_on_leaves_it_to_recovery(store: Store) -> None:
    rec = Recorder()
    outcomes = _outcomes(rec)
    outcomes.store = store
    run = await _held_unknown(store, RunOrigin.WORKFLOW, outcomes, crash=True)
    assert "step_ended" not in rec.calls  # the process was killed after recording the end
    recovery = Recovery(store, cast(Notifier, rec), outcomes, lambda: T0 + timedelta(hours=2))
    assert await recovery.recover_unnotified(timedelta(seconds=10)) == 1
    assert "step_ended" in rec.calls and "run_ended" in rec.calls
    after = await store.runs.get(run.id)
    assert after is not None and after.notified_state == after.state
    assert await recovery.recover_unnotified(timedelta(seconds=10)) == 0  # once
