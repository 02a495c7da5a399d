"""``RunReads.reached_after`` counts the runs a provider lists above a run: those that started after it there (by id
where a start is not known yet), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store
from bot.store.tables import runs

T0 = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)


async def _run(store: Store, rid: str, started: datetime | None) -> int:
    new = NewRun(provider="tailer", connection="t", job={}, parameters={}, origin=RunOrigin.WATCH, pipeline="p",
                 channel="C1", provider_run_id=rid)
    run = await store.runs.create(new, now=T0, next_poll_at=None)
    async with store.engine.begin() as conn:
        await conn.execute(update(runs).where(runs.c.id == run.id).values(started_at=started))
    return run.id


async def test_runs_are_newer_by_their_start_at_the_provider(store: Store) -> None:
    first = await _run(store, "a", T0 + timedelta(hours=1))  # waited an hour for its start
    for n in range(3):  # recorded after it, started before it
        await _run(store, f"b{n}", T0 + timedelta(minutes=n))
    assert await store.runs.reached_after("p", "tailer", first, 50) == 0
    await _run(store, "c", T0 + timedelta(hours=2))  # started after it
    await _run(store, "d", None)  # reached the provider, its start not polled yet: newer by id
    assert await store.runs.reached_after("p", "tailer", first, 50) == 2
    unstarted = await _run(store, "e", None)  # a run with no start known: by id, as before
    assert await store.runs.reached_after("p", "tailer", unstarted, 50) == 0
