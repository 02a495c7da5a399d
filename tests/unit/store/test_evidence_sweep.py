"""Which failures the evidence sweep reads: handled, with a card and a provider run, lately, and without their
note yet (the key built in SQL matches ``keys.run_evidence``), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.models import RunState
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
    await store.runs.mark_notified(succeeded, ended.state)
    await store.outbox.enqueue(keys.run_evidence(told), kind=OutboxKind.THREAD, run_id=told, text="x", now=NOW)
    await store.outbox.enqueue(keys.run_reply(waiting, "failure"), kind=OutboxKind.THREAD, run_id=waiting,
                               text="x", now=NOW)  # another reply of the same run does not count

    found = await store.outbox.failed_runs_without(keys.EVIDENCE, since=NOW - timedelta(hours=1), limit=10)
    assert found == [waiting]
    assert await store.outbox.failed_runs_without(keys.EVIDENCE, since=NOW - timedelta(hours=1), limit=0) == []
