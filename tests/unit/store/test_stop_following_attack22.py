"""A run ended by a person in the state its card already showed (a status outside the model, stored ``unknown``
and not ended, then its connection left the catalog): the end is left unnotified until it is acted on, so the
recovery of unnotified runs replays it after a crash in between (it read as told already: nothing would ever
announce the failure whose retry it was, nor end its workflow's step)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.models import RunState, RunStatus
from bot.store.engine import make_engine, migrate
from bot.store.records import NewRun, RunOrigin, StoredState
from bot.store.store import Store
from bot.store.tables import runs

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


async def test_a_person_ending_a_run_shown_unknown_leaves_it_for_recovery_until_told(store: Store) -> None:
    run = await store.runs.create(
        NewRun(provider="invision", connection="invision", job={"dataflow_id": "f"}, parameters={},
               origin=RunOrigin.SLACK, pipeline="budget", started_by="U0ALICE", channel="C0GENERAL"),
        now=NOW - timedelta(hours=1), next_poll_at=None,
    )
    await store.runs.repoint(run.id, "p-1")
    odd = RunStatus(run_id="p-1", state=RunState.UNKNOWN, raw_status="Reconciling")
    await store.runs.record_status(run.id, odd, now=NOW - timedelta(minutes=50), next_poll_at=NOW)
    await store.runs.mark_notified(run.id, StoredState.UNKNOWN)  # its card shows "unknown"
    assert await store.runs.unnotified(older_than=NOW + timedelta(hours=1)) == []

    ended = await store.runs.stop_following(run.id, "U0ALICE", "invision", now=NOW)
    assert ended is not None and ended.final and ended.state == StoredState.UNKNOWN
    assert [r.id for r in await store.runs.unnotified(older_than=NOW + timedelta(hours=1))] == [run.id]
    await store.runs.mark_notified(run.id, StoredState.UNKNOWN)
    assert await store.runs.unnotified(older_than=NOW + timedelta(hours=1)) == []


async def test_a_stop_following_racing_the_real_end_recorded_by_another_replica_ends_the_run_once(
    store: Store,
) -> None:
    """Replica A (its catalog lacks the connection) stops following a run while replica B (it has it) records the
    run's failure: one of them ends it, the other is told it ended already; never both (the failure told and the run
    then read "no longer followed", or the other way round)."""
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))
    try:
        wins = {"stopped": 0, "failed": 0}
        for i in range(12):
            run = await store.runs.create(
                NewRun(provider="rivery", connection="rivery", job={"river_id": "r"}, parameters={},
                       origin=RunOrigin.SLACK, pipeline="orders", started_by="U0ALICE", channel="C0GENERAL"),
                now=NOW, next_poll_at=None,
            )
            await store.runs.repoint(run.id, f"p-{i}")
            running = RunStatus(run_id=f"p-{i}", state=RunState.RUNNING, raw_status="R")
            await other.runs.record_status(run.id, running, now=NOW, next_poll_at=NOW)
            failed = RunStatus(run_id=f"p-{i}", state=RunState.FAILED, raw_status="F", message="boom")
            stopped, change = await asyncio.gather(
                store.runs.stop_following(run.id, "U0ALICE", "rivery", now=NOW + timedelta(seconds=1)),
                other.runs.record_status(run.id, failed, now=NOW + timedelta(seconds=1), next_poll_at=None),
            )
            assert (stopped is None) != (change is None), (stopped, change)
            final = await store.runs.get(run.id)
            assert final is not None and final.final
            if stopped is not None:
                wins["stopped"] += 1
                assert final.state == StoredState.UNKNOWN and final.stopped_by == "U0ALICE"
            else:
                wins["failed"] += 1
                assert final.state == StoredState.FAILED and final.stopped_by is None and final.message == "boom"
        assert sum(wins.values()) == 12, wins
    finally:
        await other.close()


async def test_a_stop_following_waiting_on_another_replicas_poll_keeps_what_that_poll_wrote(postgres_url: str) -> None:
    """PostgreSQL, read committed: replica B's poll has written the run's ``extra`` (not committed yet) when replica A
    stops following it. A's end waits for B's row and merges B's ``extra``: it read it before the lock, B's provider
    facts (a console link, say) were lost under ``stopped_by``."""
    a, b = Store(make_engine(postgres_url)), Store(make_engine(postgres_url))
    try:
        await migrate(a.engine)
        run = await a.runs.create(
            NewRun(provider="rivery", connection="rivery", job={"river_id": "r"}, parameters={},
                   origin=RunOrigin.SLACK, pipeline="orders", started_by="U0ALICE", channel="C0GENERAL"),
            now=NOW, next_poll_at=None,
        )
        await a.runs.repoint(run.id, "p-1")
        async with b.engine.begin() as conn:  # B's poll, holding the row
            await conn.execute(
                update(runs).where(runs.c.id == run.id).values(extra={"console_url": "https://console/r"})
            )
            stopping = asyncio.create_task(a.runs.stop_following(run.id, "U0ALICE", "rivery", now=NOW))
            await asyncio.sleep(0.5)  # A reads, and waits for B's row
            assert not stopping.done()
        ended = await stopping
        assert ended is not None and ended.stopped_by == "U0ALICE"
        assert ended.extra.get("console_url") == "https://console/r", ended.extra
    finally:
        await a.close()
        await b.close()
