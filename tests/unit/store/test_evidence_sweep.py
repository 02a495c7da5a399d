"""Which failures the evidence sweep reads: handled, with a provider run, recorded lately, and without their note
yet (the key built in SQL matches ``keys.run_evidence``), each with the message its note goes under (the run's card,
or a watched run's posted alert), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.models import RunState, RunStatus
from bot.store import keys
from bot.store.records import NewRun, OutboxKind, RunOrigin
from bot.store.store import Store

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


async def _run(store: Store, origin: RunOrigin = RunOrigin.SLACK, provider_run_id: str | None = "p") -> int:
    new = NewRun(provider="rivery", connection="rivery", job={"river_id": "r"}, parameters={}, origin=origin,
                 pipeline="orders", started_by=None, channel="C1")
    run = await store.runs.create(new, now=NOW, next_poll_at=None, owner="me", lease=timedelta(minutes=1))
    if provider_run_id is not None:
        await store.runs.repoint(run.id, f"{provider_run_id}-{run.id}")
    return run.id


async def _fail(store: Store, run_id: int, *, at: datetime = NOW, notified: bool = True) -> None:
    ended = await store.runs.finish(run_id, RunState.FAILED, "boom", now=at)
    assert ended is not None
    if notified:
        await store.runs.mark_notified(run_id, ended.state)


async def test_the_sweep_finds_handled_failures_without_their_evidence(store: Store) -> None:
    told, waiting, unhandled, watched, never_started, old, succeeded = [await _run(store) for _ in range(7)]
    for run_id in (told, waiting):
        await _fail(store, run_id)
    await _fail(store, unhandled, notified=False)  # its card and alert are not written yet: evidence after them
    watched = await _run(store, RunOrigin.WATCH)  # no card, no thread
    await _fail(store, watched)
    never_started = await _run(store, provider_run_id=None)
    await _fail(store, never_started)
    await _fail(store, old, at=NOW - timedelta(hours=3))
    ended = await store.runs.finish(succeeded, RunState.SUCCEEDED, "", now=NOW)
    assert ended is not None
    await store.runs.mark_notified(succeeded, ended.state)
    await store.outbox.enqueue(keys.run_evidence(told), kind=OutboxKind.THREAD, run_id=told, text="x", now=NOW)
    await store.outbox.enqueue(keys.run_reply(waiting, "failure"), kind=OutboxKind.THREAD, run_id=waiting,
                               text="x", now=NOW)  # another reply of the same run does not count

    found = await store.outbox.failed_runs_without(keys.EVIDENCE, since=NOW - timedelta(hours=1), limit=10)
    assert found == [(waiting, keys.run_card(waiting))]
    assert await store.outbox.failed_runs_without(keys.EVIDENCE, since=NOW - timedelta(hours=1), limit=0) == []


async def _alerted(store: Store, run_id: int, *, muted: bool = False, at: datetime = NOW) -> None:
    await store.alerting.record_failure("orders", channel="C0ALERTS", run_id=run_id, message="boom", muted=muted,
                                        announced_by=None, suppress=timedelta(minutes=30), now=at)


async def test_a_watched_failures_note_goes_under_its_alert_once_the_alert_is_posted(store: Store) -> None:
    first, repeat = await _run(store, RunOrigin.WATCH), await _run(store, RunOrigin.WATCH)
    for run_id in (first, repeat):
        await _fail(store, run_id)
        await _alerted(store, run_id)
    since = NOW - timedelta(hours=1)
    # its alert waits to be announced with others: no message to reply under yet
    assert await store.outbox.failed_runs_without(keys.EVIDENCE, since=since, limit=10) == []
    [key] = await store.alerting.flush(now=NOW + timedelta(minutes=1), window=timedelta(seconds=0),
                                       render=lambda key, group: (key, "failed", []))
    assert keys.is_alert_group(key)
    # one note in its thread: the failure that opened it, not the repeat folded into it
    found = await store.outbox.failed_runs_without(keys.EVIDENCE, since=since, limit=10)
    assert found == [(first, key)]


async def test_of_alerts_grouped_in_one_message_only_the_first_gets_a_note(store: Store) -> None:
    """A storm: alerts of several pipelines announced in one message; its thread gets the first one's note."""
    ids = [await _run(store, RunOrigin.WATCH) for _ in range(3)]
    for n, run_id in enumerate(ids):
        await _fail(store, run_id)
        await store.alerting.record_failure(f"p{n}", channel="C0ALERTS", run_id=run_id, message="boom", muted=False,
                                            announced_by=None, suppress=timedelta(minutes=30), now=NOW)
    [key] = await store.alerting.flush(now=NOW + timedelta(minutes=1), window=timedelta(seconds=0),
                                       render=lambda key, group: (key, "failed", []))
    assert len(await store.alerting.group(key)) == 3
    found = await store.outbox.failed_runs_without(keys.EVIDENCE, since=NOW - timedelta(hours=1), limit=10)
    assert found == [(ids[0], key)]


async def test_a_muted_watched_failure_has_no_thread_for_its_note(store: Store) -> None:
    watched = await _run(store, RunOrigin.WATCH)
    await _fail(store, watched)
    await _alerted(store, watched, muted=True)  # told nowhere
    await store.alerting.flush(now=NOW + timedelta(minutes=1), window=timedelta(seconds=0),
                               render=lambda key, group: (key, "failed", []))
    assert await store.outbox.failed_runs_without(keys.EVIDENCE, since=NOW - timedelta(hours=1), limit=10) == []


async def test_a_failure_is_read_by_when_it_was_recorded_not_when_it_ended(store: Store) -> None:
    """A run that ended while the bot was down is recorded when it comes back: its end (the provider's time) is
    hours before, and the sweep reads it all the same."""
    late = await _run(store)
    status = RunStatus(run_id=f"p-{late}", state=RunState.FAILED, raw_status="failed", message="boom",
                       started_at=NOW - timedelta(hours=3, minutes=5), ended_at=NOW - timedelta(hours=3))
    change = await store.runs.record_status(late, status, now=NOW, next_poll_at=None)
    assert change is not None and change.run.ended_at == NOW - timedelta(hours=3)
    await store.runs.mark_notified(late, change.run.state)
    assert await store.outbox.failed_runs_without(keys.EVIDENCE, since=NOW - timedelta(hours=1), limit=10) == [
        (late, keys.run_card(late))
    ]


async def test_the_sweep_pages_by_id_after_a_cursor(store: Store) -> None:
    ids = [await _run(store) for _ in range(3)]
    for run_id in ids:
        await _fail(store, run_id, at=NOW - timedelta(hours=5))
    since = NOW - timedelta(days=1)
    assert [i for i, _ in await store.outbox.failed_runs_without(keys.EVIDENCE, since=since, limit=2)] == ids[:2]
    assert [i for i, _ in await store.outbox.failed_runs_without(keys.EVIDENCE, since=since, limit=2,
                                                                   after=ids[1])] == ids[2:]
