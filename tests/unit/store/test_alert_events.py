"""An alert's timeline is written with the change it records, on SQLite and on PostgreSQL (the ``store`` fixture):
the failure, an acknowledgement, a person's and the policy's retry, a mute, the resolution, and a reopening."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.models import RunState
from bot.store.alert_events import EventKind
from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store
from tests.unit.store.test_alert_resolution import PIPELINE, WINDOW, at, ended, failure, started


def render(key: str, group: list[Any]) -> tuple[str, str, list[dict[str, Any]]]:
    return key, "alert", []


async def timeline(store: Store, alert_id: int) -> list[tuple[EventKind, str | None, int | None]]:
    events = (await store.alert_events.of_alerts([alert_id]))[alert_id]
    return [(e.kind, e.actor, e.run_id) for e in events]


async def test_each_change_of_an_alert_writes_its_line_in_order(store: Store) -> None:
    first = await ended(store, await started(store, 0), RunState.FAILED, 5)
    alert = await failure(store, first, 5)
    await store.alerting.flush(now=at(5) + WINDOW, window=WINDOW, render=render)  # posted: reopenable later
    _, was_first = await store.runs.acknowledge(first.id, "U0BOB", now=at(6))
    _, again = await store.runs.acknowledge(first.id, "U0CAROL", now=at(7))
    assert was_first and not again  # the second click writes nothing
    muted = await store.mutes.mute(PIPELINE, until=at(3600), user_id="U0ALICE", now=at(8))
    assert muted == [alert.id]
    new = NewRun(
        provider="rivery",
        connection="rivery",
        job={"river_id": "r1"},
        parameters={},
        origin=RunOrigin.RETRY,
        pipeline=PIPELINE,
        channel="C0GENERAL",
        started_by="U0ALICE",
        retry_of=first.id,
        attempt=2,
    )
    retry = await store.runs.create(new, now=at(9), next_poll_at=None)
    retry = await store.starts.record_triggered(retry.id, f"p-{retry.id}", now=at(9), next_poll_at=at(10))
    await ended(store, retry, RunState.SUCCEEDED, 12)
    [resolved] = await store.alerting.recover(PIPELINE, retry.id, now=at(12))
    assert resolved.id == alert.id
    assert await timeline(store, alert.id) == [
        (EventKind.FAILED, None, first.id),
        (EventKind.ACKNOWLEDGED, "U0BOB", first.id),
        (EventKind.MUTED, "U0ALICE", None),
        (EventKind.RETRIED, "U0ALICE", retry.id),
        (EventKind.RESOLVED, None, retry.id),
    ]
    assert await store.alert_events.involving(retry.id) == [alert.id]  # the retry's card is linked from it

    # the pipeline fails again soon after: the same alert reopens, open again, with its story kept
    later = await ended(store, await started(store, 20), RunState.FAILED, 25)
    reopened, new_alert = await store.alerting.record_failure(
        PIPELINE,
        channel="C0ALERTS",
        run_id=later.id,
        message="again",
        muted=False,
        announced_by=None,
        suppress=timedelta(hours=1),
        now=at(25),
    )
    assert not new_alert and reopened.id == alert.id
    assert reopened.state.value == "open" and reopened.recovered_at is None and reopened.count == 2
    assert (await timeline(store, alert.id))[-1] == (EventKind.REOPENED, None, later.id)


async def test_the_policys_retry_is_told_as_the_policys_and_a_run_never_alerted_writes_nothing(store: Store) -> None:
    first = await ended(store, await started(store, 0), RunState.FAILED, 5)
    alert = await failure(store, first, 5)
    policy = NewRun(
        provider="rivery",
        connection="rivery",
        job={"river_id": "r1"},
        parameters={},
        origin=RunOrigin.RETRY,
        pipeline=PIPELINE,
        channel="C0GENERAL",
        started_by="U0ALICE",
        retry_of=first.id,
        attempt=2,
        start_at=at(60),
        by_policy=True,
    )
    retry = await store.runs.create(policy, now=at(6), next_poll_at=None)
    assert (await timeline(store, alert.id))[-1] == (EventKind.RETRIED, None, retry.id)  # not Alice's
    unalerted = await ended(store, await started(store, 30), RunState.FAILED, 35)
    _, first_click = await store.runs.acknowledge(unalerted.id, "U0BOB", now=at(36))
    assert first_click and await store.alert_events.alert_of_run(unalerted.id) is None
    assert len(await timeline(store, alert.id)) == 2


async def test_a_retry_of_a_retry_joins_the_story_of_the_alert_that_began_them(store: Store) -> None:
    """Alice retries the alerted failure as #2; #2 fails and the policy retries it as #3 (its failure held, not yet
    counted): the alert tells both retries."""
    first = await ended(store, await started(store, 0), RunState.FAILED, 5)
    alert = await failure(store, first, 5)
    retried = NewRun(
        provider="rivery",
        connection="rivery",
        job={"river_id": "r1"},
        parameters={},
        origin=RunOrigin.RETRY,
        pipeline=PIPELINE,
        channel="C0GENERAL",
        started_by="U0ALICE",
        retry_of=first.id,
        attempt=2,
    )
    second = await store.runs.create(retried, now=at(6), next_poll_at=None)
    third = await store.runs.create(
        replace(retried, retry_of=second.id, attempt=3, by_policy=True, start_at=at(60)), now=at(7), next_poll_at=None
    )
    assert (await timeline(store, alert.id))[1:] == [
        (EventKind.RETRIED, "U0ALICE", second.id),
        (EventKind.RETRIED, None, third.id),
    ]
