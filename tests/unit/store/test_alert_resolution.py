"""A failure alert is always announced; only a run that began after its latest counted failure resolves it.

Each test runs on SQLite and on PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.models import RunState, RunStatus
from bot.store import alerting
from bot.store.alerting import Alert
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=10)
PIPELINE = "leads-ods"


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


async def started(store: Store, created: float, *, origin: RunOrigin = RunOrigin.SLACK, provider_start: float | None = None,
                  ref: str = "") -> RunRecord:
    """A run the bot recorded at ``created`` (seconds after NOW), running at the provider since ``provider_start``."""
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rivery", job={"river_id": "r1"}, parameters={}, origin=origin,
               pipeline=PIPELINE, channel="C0GENERAL", provider_run_id=ref or None),
        now=at(created), next_poll_at=None,
    )
    if not ref:
        run = await store.starts.record_triggered(run.id, f"p-{run.id}", now=at(created), next_poll_at=at(created + 1))
    begun = at(provider_start) if provider_start is not None else None
    status = RunStatus(run.provider_run_id or "", RunState.RUNNING, "RUNNING", started_at=begun)
    change = await store.runs.record_status(run.id, status, now=at(created), next_poll_at=at(created + 1))
    assert change is not None
    return change.run


async def ended(store: Store, run: RunRecord, state: RunState, when: float) -> RunRecord:
    status = RunStatus(run.provider_run_id or "", state, state.value.upper(), message="Table missing"
                       if state is RunState.FAILED else "")
    change = await store.runs.record_status(run.id, status, now=at(when), next_poll_at=None)
    assert change is not None
    return change.run


async def failure(store: Store, run: RunRecord, when: float) -> Alert:
    alert, _ = await store.alerting.record_failure(
        PIPELINE, channel="C0ALERTS", run_id=run.id, message=run.message, muted=False, announced_by=None,
        suppress=timedelta(hours=1), now=at(when),
    )
    return alert


async def flushed(store: Store, when: float) -> list[list[Alert]]:
    """Flush due alerts; returns each group as it was rendered."""
    groups: list[list[Alert]] = []

    def render(key: str, group: list[Alert]) -> tuple[str, str, list[dict[str, Any]]]:
        groups.append(group)
        return key, "alert", []

    await store.alerting.flush(now=at(when), window=WINDOW, render=render)
    return groups


async def open_ids(store: Store) -> list[int]:
    return [a.id for a in await store.alerting.open_alerts()]


async def test_a_failure_resolved_before_its_flush_is_still_announced_and_shows_what_resolved_it(store: Store) -> None:
    first = await started(store, 0)
    second = await started(store, 1)  # run again right away
    first = await ended(store, first, RunState.FAILED, 3)
    alert = await failure(store, first, 3)
    assert await open_ids(store) == [alert.id]  # App Home: open until resolved
    second = await ended(store, second, RunState.SUCCEEDED, 4)
    await store.alerting.recover(PIPELINE, second.id, now=at(4))
    assert await open_ids(store) == []  # resolved by a run that began after the failure
    [[posted]] = await flushed(store, 3 + WINDOW.total_seconds())
    assert posted.id == alert.id
    assert posted.state == "recovered" and posted.recovered_by_run == second.id
    assert posted.group_key is not None and posted.group_key.startswith("alerts:")
    assert posted.message == "Table missing"
    assert await flushed(store, 100) == []  # posted once


async def test_a_success_recorded_before_the_failure_of_an_earlier_run_resolves_its_alert_which_is_still_posted(
    store: Store,
) -> None:
    """Both runs ended between two polls and the success was handled first: it began after the failing run."""
    first = await started(store, 0)
    second = await started(store, 1)
    second = await ended(store, second, RunState.SUCCEEDED, 3)
    assert await store.alerting.recover(PIPELINE, second.id, now=at(3)) == []  # nothing to resolve yet
    first = await ended(store, first, RunState.FAILED, 3)
    alert = await failure(store, first, 3)
    assert alert.recovered_by_run == second.id
    assert await open_ids(store) == []
    [[posted]] = await flushed(store, 3 + WINDOW.total_seconds())
    assert posted.id == alert.id and posted.state == "recovered"


async def test_a_run_started_before_the_failing_one_that_succeeds_after_it_does_not_resolve_it(store: Store) -> None:
    slow = await started(store, 0)
    failing = await started(store, 1)
    failing = await ended(store, failing, RunState.FAILED, 3)
    alert = await failure(store, failing, 3)
    slow = await ended(store, slow, RunState.SUCCEEDED, 5)  # finished after the failure, began before it
    assert await store.alerting.recover(PIPELINE, slow.id, now=at(5)) == []
    assert await open_ids(store) == [alert.id]
    [[posted]] = await flushed(store, 3 + WINDOW.total_seconds())
    assert posted.state == "open" and posted.recovered_by_run is None
    assert await open_ids(store) == [alert.id]

    retry = await started(store, 20)  # a run begun after the failure resolves the posted alert
    retry = await ended(store, retry, RunState.SUCCEEDED, 25)
    [resolved] = await store.alerting.recover(PIPELINE, retry.id, now=at(25))
    assert resolved.id == alert.id and resolved.state == "recovered" and resolved.recovered_by_run == retry.id
    assert resolved.group_key == posted.group_key  # the message that announced it is the one rewritten
    assert await open_ids(store) == []


async def test_an_alert_counting_several_failures_resolves_only_after_its_latest_counted_failure(
    store: Store,
) -> None:
    one = await started(store, 0)
    slow = await started(store, 1)
    two = await started(store, 2)
    one = await ended(store, one, RunState.FAILED, 3)
    alert = await failure(store, one, 3)
    two = await ended(store, two, RunState.FAILED, 4)
    folded = await failure(store, two, 4)
    assert folded.id == alert.id and folded.count == 2
    slow = await ended(store, slow, RunState.SUCCEEDED, 5)  # began after failure one, before failure two
    assert await store.alerting.recover(PIPELINE, slow.id, now=at(5)) == []
    assert await open_ids(store) == [alert.id]
    later = await started(store, 6)
    later = await ended(store, later, RunState.SUCCEEDED, 8)
    [resolved] = await store.alerting.recover(PIPELINE, later.id, now=at(8))
    assert resolved.id == alert.id and resolved.recovered_by_run == later.id


async def test_watched_runs_are_ordered_by_when_the_provider_started_them_not_when_the_bot_found_them(
    store: Store,
) -> None:
    """A watch finds runs after they began: one it found later may have begun earlier."""
    failing = await started(store, 0, origin=RunOrigin.WATCH, provider_start=-30, ref="w-1")
    earlier = await started(store, 1, origin=RunOrigin.WATCH, provider_start=-60, ref="w-2")
    failing = await ended(store, failing, RunState.FAILED, 2)
    alert = await failure(store, failing, 2)
    earlier = await ended(store, earlier, RunState.SUCCEEDED, 3)
    assert await store.alerting.recover(PIPELINE, earlier.id, now=at(3)) == []
    assert await open_ids(store) == [alert.id]


async def test_a_new_failure_after_a_resolution_before_the_flush_is_a_new_alert_posted_with_it(store: Store) -> None:
    first = await started(store, 0)
    first = await ended(store, first, RunState.FAILED, 1)
    alert = await failure(store, first, 1)
    fixed = await started(store, 2)
    fixed = await ended(store, fixed, RunState.SUCCEEDED, 3)
    await store.alerting.recover(PIPELINE, fixed.id, now=at(3))
    again = await started(store, 4)
    again = await ended(store, again, RunState.FAILED, 5)
    fresh = await failure(store, again, 5)
    assert fresh.id != alert.id and fresh.count == 1 and fresh.recovered_by_run is None
    assert await failure(store, again, 6) == fresh  # the same failure told twice is counted once
    assert await failure(store, first, 6) == await store.alerting.get(alert.id)  # also once it is resolved
    [group] = await flushed(store, 1 + WINDOW.total_seconds())
    assert [(a.id, a.state) for a in group] == [(alert.id, "recovered"), (fresh.id, "open")]
    assert await open_ids(store) == [fresh.id]


async def test_a_repeat_is_never_folded_into_an_alert_whose_only_post_is_the_first_runs_card(store: Store) -> None:
    """The card told its own run only: the repeat needs an alert that is posted (pending, flushed)."""
    first = await started(store, 0)
    first = await ended(store, first, RunState.FAILED, 1)
    carded, new = await store.alerting.record_failure(
        PIPELINE, channel="C0ALERTS", run_id=first.id, message="first", muted=False, announced_by=f"run:{first.id}",
        suppress=timedelta(hours=1), now=at(1),
    )
    assert new and carded.state == "open" and carded.group_key == f"run:{first.id}"
    second = await started(store, 60, origin=RunOrigin.WATCH, ref="w-2")
    second = await ended(store, second, RunState.FAILED, 61)
    repeat = await failure(store, second, 61)
    assert repeat.id != carded.id and repeat.state == "pending" and repeat.count == 1
    third = await started(store, 70, origin=RunOrigin.WATCH, ref="w-3")
    third = await ended(store, third, RunState.FAILED, 71)
    assert (await failure(store, third, 71)).id == repeat.id  # later repeats fold into the posted alert
    [[posted]] = await flushed(store, 61 + WINDOW.total_seconds())
    assert posted.id == repeat.id and posted.count == 2
    fixed = await started(store, 80)
    fixed = await ended(store, fixed, RunState.SUCCEEDED, 81)
    resolved = await store.alerting.recover(PIPELINE, fixed.id, now=at(81))
    assert sorted(a.id for a in resolved) == [carded.id, repeat.id]
    assert all(a.state == "recovered" for a in resolved)


async def test_a_failure_and_the_success_that_resolves_it_recorded_at_once_leave_no_alert_open(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poller records a failure while the watcher records the success of a run begun after it (two jobs of
    one process, or two replicas). Forced interleaving: the failure has looked for a later success (none yet)
    when the success is recorded and resolves; neither may miss the other."""
    failing = await started(store, 0)
    later = await started(store, 10, origin=RunOrigin.WATCH, ref="w-later")
    failing = await ended(store, failing, RunState.FAILED, 60)
    looked, go = asyncio.Event(), asyncio.Event()
    real = alerting._later_success

    async def slow(conn: Any, pipeline: str, run_id: int) -> int | None:
        found = await real(conn, pipeline, run_id)
        looked.set()
        await go.wait()  # what a slow disk or a busy event loop does between the look and the insert
        return found

    monkeypatch.setattr(alerting, "_later_success", slow)

    async def success() -> None:
        await looked.wait()
        done = await ended(store, later, RunState.SUCCEEDED, 61)
        resolving = asyncio.create_task(store.alerting.recover(PIPELINE, done.id, now=at(61)))
        # unserialized, the recovery looks for alerts now and finds none; serialized, it waits its turn
        await asyncio.wait({resolving}, timeout=2.0)
        go.set()
        await resolving

    recorded, _ = await asyncio.wait_for(asyncio.gather(failure(store, failing, 60), success()), 30)
    assert await open_ids(store) == []
    [[posted]] = await flushed(store, 60 + WINDOW.total_seconds())
    assert posted.id == recorded.id and posted.state == "recovered" and posted.recovered_by_run == later.id


async def test_a_provider_clock_ahead_of_the_bots_never_lets_a_run_begun_earlier_resolve(store: Store) -> None:
    """The provider's times read an hour ahead (its naive local times taken as UTC, say). A scheduled run began
    at 0 and is found by the watch at 45; a run started from Slack at 20 fails. The scheduled run succeeding
    must not resolve that failure: it began first (provider's clock against itself), whatever the bot's clock
    says of when each was recorded."""
    ahead = 3600
    failing = await started(store, 20, provider_start=20 + ahead)
    failing = await ended(store, failing, RunState.FAILED, 25)
    alert = await failure(store, failing, 25)
    scheduled = await started(store, 45, origin=RunOrigin.WATCH, provider_start=0 + ahead, ref="sched-1")
    scheduled = await ended(store, scheduled, RunState.SUCCEEDED, 105)
    assert await store.alerting.recover(PIPELINE, scheduled.id, now=at(105)) == []
    assert await open_ids(store) == [alert.id]
    retry = await started(store, 120, provider_start=120 + ahead)  # begun after the failure: resolves it
    retry = await ended(store, retry, RunState.SUCCEEDED, 130)
    assert [a.id for a in await store.alerting.recover(PIPELINE, retry.id, now=at(130))] == [alert.id]



async def test_a_storm_too_large_for_one_message_is_flushed_as_several_each_alert_in_exactly_one(
    store: Store,
) -> None:
    failed = []
    for i in range(5):
        run = await started(store, i)
        failed.append(await ended(store, run, RunState.FAILED, 5))
    ids = []
    for i, run in enumerate(failed):
        alert, _ = await store.alerting.record_failure(
            f"pipeline-{i}", channel="C0ALERTS", run_id=run.id, message="boom", muted=False, announced_by=None,
            suppress=timedelta(hours=1), now=at(5),
        )
        ids.append(alert.id)
    rendered: dict[str, list[int]] = {}

    def render(key: str, group: list[Alert]) -> tuple[str, str, list[dict[str, Any]]]:
        rendered[key] = [a.id for a in group]
        return key, "alerts", []

    def pairs(group: list[Alert]) -> list[list[Alert]]:
        return [group[i:i + 2] for i in range(0, len(group), 2)]

    keys = await store.alerting.flush(now=at(5) + WINDOW, window=WINDOW, render=render, split=pairs)
    assert keys == [f"alerts:C0ALERTS:{ids[0]}", f"alerts:C0ALERTS:{ids[2]}", f"alerts:C0ALERTS:{ids[4]}"]
    assert list(rendered.values()) == [ids[0:2], ids[2:4], ids[4:]]
    for key, members in rendered.items():  # a repeat or a recovery rewrites the one message that lists it
        assert [a.id for a in await store.alerting.group(key)] == members
    assert await store.alerting.flush(now=at(60), window=WINDOW, render=render, split=pairs) == []


async def test_a_failure_alerted_for_a_watched_copy_of_a_slow_trigger_counts_once_for_the_run_it_becomes(
    store: Store,
) -> None:
    """A trigger answered late: the watch listed the new run first, recorded it as found outside Slack and its
    failure was alerted. The answer arrives, the copy is merged into the run the bot triggered, which then
    reports the same failure: one failure, counted once, and the alert names the run that remains."""
    mine = await store.runs.create(
        NewRun(provider="rivery", connection="rivery", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline=PIPELINE, channel="C0GENERAL"), now=at(0), next_poll_at=None)
    copy = await started(store, 3, origin=RunOrigin.WATCH, ref="X")
    copy = await ended(store, copy, RunState.FAILED, 3)
    alert = await failure(store, copy, 3)
    mine = await store.starts.record_triggered(mine.id, "X", now=at(5), next_poll_at=at(6))
    assert await store.runs.get(copy.id) is None  # merged
    mine = await ended(store, mine, RunState.FAILED, 6)
    again = await failure(store, mine, 6)
    assert again.id == alert.id and again.count == 1 and again.runs == (mine.id,) and again.last_run_id == mine.id
