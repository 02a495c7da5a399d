"""Recovery shows the changes a stopped process left unshown, one run at a time: a run whose handling raises (a bug)
must not keep the others from being shown, nor stop the bot from starting (``prepare`` runs recovery before the
bot serves). Before, the first such run raised out of ``recover_unnotified``: at start-up the bot could not start,
and every later recovery stopped at the same run, so the runs after it were never shown (fourteenth pass a, a low
from reading: "200 runs whose handling fails every time would keep the others waiting"). Now a run whose handling
failed is logged once and left aside for ``RETRY_FAILED_AFTER``, while the others are shown."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from bot.models import RunState, RunStatus
from bot.service.notify import Notifier
from bot.service.outcomes import Outcomes
from bot.service.recovery import RETRY_FAILED_AFTER, Recovery
from bot.store.records import NewRun, RunOrigin, RunRecord, Transition
from bot.store.store import Store

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


class Outcomes_:
    """Stands for ``Outcomes``: shows a change (marks it notified, as the real one does last), except the runs it
    was told to fail on, where it raises as a bug would."""

    def __init__(self, store: Store, broken: set[int]) -> None:
        self.store = store
        self.broken = broken
        self.shown: list[int] = []
        self.tried: list[int] = []

    async def on_change(self, change: Transition) -> None:
        self.tried.append(change.run.id)
        if change.run.id in self.broken:
            raise KeyError("a bug in showing this run")
        self.shown.append(change.run.id)
        await self.store.runs.mark_notified(change.run.id, change.run.state)


async def _failed_unshown(store: Store, n: int) -> list[RunRecord]:
    """``n`` runs whose failure was recorded but never shown (the process stopped in between)."""
    made = []
    for i in range(n):
        run = await store.runs.create(
            NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
                   pipeline="refunds", channel="C1", provider_run_id=f"p{i}"),
            now=T0, next_poll_at=T0,
        )
        status = RunStatus(f"p{i}", RunState.FAILED, "E", message="boom", final=True)
        assert await store.runs.record_status(run.id, status, now=T0, next_poll_at=None) is not None
        made.append(run)
    return made


async def test_a_run_whose_handling_fails_keeps_no_other_from_being_shown(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    runs = await _failed_unshown(store, 3)
    bad = runs[0].id  # the oldest: first in line
    outcomes = Outcomes_(store, broken={bad})
    now = [T0 + timedelta(minutes=5)]
    recovery = Recovery(store, cast(Notifier, None), cast(Outcomes, outcomes), lambda: now[0])
    with caplog.at_level(logging.ERROR):
        await recovery.recover_unnotified(timedelta(seconds=10))  # raised before: the bot did not start
    assert outcomes.shown == [runs[1].id, runs[2].id]
    assert [r.message for r in caplog.records if r.levelno >= logging.ERROR] == [
        f"showing run {bad}'s change failed; it is tried again in 15m 00s"
    ]
    now[0] += timedelta(minutes=1)
    await recovery.recover_unnotified(timedelta(seconds=10))
    assert outcomes.tried.count(bad) == 1  # left aside meanwhile: not one traceback a recovery
    now[0] += RETRY_FAILED_AFTER
    outcomes.broken.clear()  # fixed (a new version, or what it depended on came back)
    await recovery.recover_unnotified(timedelta(seconds=10))
    assert outcomes.shown == [runs[1].id, runs[2].id, bad]
    assert await store.runs.unnotified(older_than=now[0]) == []


class Notifier_:
    """Stands for the notifier: refreshing one run's card raises (a bug); the others' are drawn."""

    def __init__(self, broken: set[int]) -> None:
        self.broken = broken
        self.drawn: list[int] = []

    async def refresh_card(self, run: RunRecord) -> None:
        if run.id in self.broken:
            raise KeyError("a bug in drawing this card")
        self.drawn.append(run.id)

    async def thread(self, *_: object) -> None:
        return None


class GivenUp(Outcomes_):
    steps = subscribers = None  # no Workflow Builder step waits, nobody subscribed

    async def no_attempt_follows(self, run: RunRecord) -> None:
        return None


async def test_a_given_up_start_whose_handling_fails_keeps_no_other_from_being_given_up(store: Store) -> None:
    made = []
    for i in range(3):  # three runs left "starting" by a process that is gone (no lease)
        made.append(await store.runs.create(
            NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
                   pipeline="refunds", channel="C1", started_by=f"U{i}"),
            now=T0, next_poll_at=None,
        ))
    notifier = Notifier_(broken={made[0].id})
    outcomes = GivenUp(store, broken=set())
    now = T0 + timedelta(minutes=5)
    recovery = Recovery(store, cast(Notifier, notifier), cast(Outcomes, outcomes), lambda: now)
    given_up = await recovery.recover_starting(timedelta(seconds=30))  # raised before: the bot did not start
    assert [r.id for r in given_up] == [r.id for r in made]
    assert notifier.drawn == [made[1].id, made[2].id]
    # the first is left unshown, for ``recover_unnotified`` once what failed works again
    assert [r.id for r in await store.runs.unnotified(older_than=now + timedelta(minutes=1))] == [made[0].id]
