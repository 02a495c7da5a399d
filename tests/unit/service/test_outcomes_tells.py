"""``Outcomes.tells``, the rule by which the poller records a change already notified, agrees with what
``on_change`` does: for a change it says tells nobody, ``on_change`` touches nothing (no card, no alert, no retry,
no mark written for nothing)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from bot.service.alerts import Alerter
from bot.service.notify import Notifier
from bot.service.outcomes import Outcomes, RetryPolicy, StepFollower
from bot.store.records import RunOrigin, RunRecord, StoredState, Transition
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Recorder:
    """Stands for every collaborator: records each call, answers None."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.runs = self

    def has_card(self, run: RunRecord) -> bool:
        return run.origin != RunOrigin.WATCH

    def pipeline(self, run: RunRecord) -> object:  # the run's pipeline is in the catalog
        return object()

    def __getattr__(self, name: str) -> Any:
        async def call(*_: object, **__: object) -> None:
            self.calls.append(name)
        return call


def _run(origin: RunOrigin, state: StoredState, *, final: bool = False) -> RunRecord:
    return RunRecord(
        id=1, pipeline="p", provider="rivery", connection="c", job={}, parameters={}, provider_run_id="r", state=state,
        raw_status="", message="", warning="", tasks=(), extra={}, final=final, origin=origin, started_by=None,
        channel="C1", retry_of=None, attempt=1, created_at=NOW, updated_at=NOW, started_at=NOW, ended_at=None,
        next_poll_at=NOW, polls=1, unknown_since=None, last_error="", acknowledged_by=None, acknowledged_at=None,
    )


def _outcomes(rec: Recorder) -> Outcomes:
    return Outcomes(cast(Store, rec), cast(Notifier, rec), cast(Alerter, rec), cast(RetryPolicy, rec),
                    cast(StepFollower, rec))


@pytest.mark.parametrize(("origin", "state", "final", "told"), [
    (RunOrigin.WATCH, StoredState.RUNNING, False, False),  # a watched run found running: nobody sees it
    (RunOrigin.WATCH, StoredState.FAILED, True, True),  # its end: the alert
    (RunOrigin.SLACK, StoredState.RUNNING, False, True),  # a card to update
    (RunOrigin.SCHEDULE, StoredState.RUNNING, False, True),
])
async def test_tells_is_what_on_change_does(origin: RunOrigin, state: StoredState, final: bool, told: bool) -> None:
    rec = Recorder()
    outcomes = _outcomes(rec)
    change = Transition(_run(origin, state, final=final), StoredState.QUEUED, state)
    assert outcomes.tells(change) is told
    await outcomes.on_change(change)
    done = [c for c in rec.calls if c != "mark_notified"]
    assert bool(done) is told
    assert rec.calls.count("mark_notified") == 1  # not notified yet: marked once handled


async def test_a_change_already_marked_is_not_marked_again() -> None:
    rec = Recorder()
    run = replace(_run(RunOrigin.SLACK, StoredState.RUNNING), notified_state=StoredState.RUNNING)
    await _outcomes(rec).on_change(Transition(run, StoredState.RUNNING, StoredState.RUNNING))  # a message changed
    assert "refresh_card" in rec.calls and "mark_notified" not in rec.calls
