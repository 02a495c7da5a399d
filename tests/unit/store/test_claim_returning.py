"""The poller's claim (``RunStore.claim_due``, ``claim_soon``) is one ``UPDATE … RETURNING``: one statement a claim
instead of three, the records it returns the same as the runs read back, and on PostgreSQL two replicas claiming at
once never take the same run. Both databases."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from bot.models import RunState, RunStatus, TaskStatus
from bot.store.engine import make_engine, migrate
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store
from bot.store.tables import runs

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def _runs(store: Store, n: int, connection: str = "rivery-us") -> list[RunRecord]:
    made = []
    for i in range(n):
        new = NewRun(provider="rivery", connection=connection, job={"river_id": f"r{i}"}, parameters={"k": "v"},
                     origin=RunOrigin.SLACK, pipeline="leads-ods", channel="C1", provider_run_id=f"{connection}-{i}")
        made.append(await store.runs.create(new, now=NOW - timedelta(seconds=n - i), next_poll_at=NOW - timedelta(
            seconds=n - i)))
    return made


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)


async def test_a_claim_is_one_statement_and_returns_the_runs_as_stored(store: Store) -> None:
    made = await _runs(store, 5)
    # a run with everything a record reads back: tasks, extra fields, times
    status = RunStatus(made[0].provider_run_id or "", RunState.RUNNING, "R", message="m", extra={"x": "1"},
                       tasks=(TaskStatus("load", RunState.RUNNING, "R"),), started_at=NOW - timedelta(minutes=3))
    await store.runs.record_status(made[0].id, status, now=NOW - timedelta(seconds=9),
                                   next_poll_at=NOW - timedelta(hours=1))
    await _runs(store, 2, connection="other")
    with statements(store) as seen:
        claimed = await store.runs.claim_due("a", now=NOW, limit=4, lease=LEASE, skip=["other"])
    assert len(seen) == 1 and "RETURNING" in seen[0].upper()
    assert [r.id for r in claimed] == sorted(r.id for r in made[:4])  # the 4 most overdue of the connection, by id
    for run in claimed:
        assert run == await store.runs.get(run.id)
    assert claimed[0].tasks and claimed[0].extra == {"x": "1"} and claimed[0].started_at is not None
    with statements(store) as seen:
        soon = await store.runs.claim_soon("a", ["rivery-us", "other"], until=NOW + timedelta(seconds=30), now=NOW,
                                           limit=10, lease=LEASE)
    assert len(seen) == 1
    assert len(soon) == 3 and [r.id for r in soon] == sorted(r.id for r in soon)
    assert await store.runs.claim_due("b", now=NOW, limit=10, lease=LEASE) == []  # all leased


async def test_without_update_returning_the_claim_is_the_three_statements_as_before(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite before 3.35 has no ``RETURNING``: the claim falls back to select, update, read back."""
    made = await _runs(store, 3)
    monkeypatch.setattr(store.engine.dialect, "update_returning", False)
    with statements(store) as seen:
        claimed = await store.runs.claim_due("a", now=NOW, limit=2, lease=LEASE)
    assert len(seen) == 3
    assert [r.id for r in claimed] == [made[0].id, made[1].id]
    for run in claimed:
        assert run == await store.runs.get(run.id)


async def test_two_replicas_claiming_at_once_never_take_the_same_run(postgres_url: str) -> None:
    """Each replica its own engine (its own connections), many small claims of both at once: every due run is
    claimed, by one replica, and its lease in the table names that replica."""
    stores = []
    for _ in range(2):
        engine = make_engine(postgres_url)
        await migrate(engine)
        stores.append(Store(engine))
    try:
        made = await _runs(stores[0], 120)

        async def replica(store: Store, owner: str) -> list[RunRecord]:
            got: list[RunRecord] = []
            for _ in range(30):
                more = await store.runs.claim_due(owner, now=NOW, limit=7, lease=LEASE)
                got += more
                await asyncio.sleep(0)
            return got

        results = await asyncio.gather(*(replica(stores[i % 2], f"r{i}") for i in range(6)))
        taken = Counter(r.id for got in results for r in got)
        assert set(taken) == {r.id for r in made}
        assert max(taken.values()) == 1  # nobody took a run twice
        for i, got in enumerate(results):
            for run in got:
                assert await _lease_owner(stores[0], run.id) == f"r{i}"
    finally:
        for store in stores:
            await store.close()


async def _lease_owner(store: Store, run_id: int) -> str | None:
    async with store.engine.connect() as conn:
        owner: str | None = (await conn.execute(select(runs.c.lease_owner).where(runs.c.id == run_id))).scalar_one()
        return owner
