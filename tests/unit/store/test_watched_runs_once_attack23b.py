"""Migration 0013's data step, attacked: which row of a group of watched duplicates is followed on.

A connection renamed before ``find_moved`` existed: the run recorded under the old name could not be polled any more
(its connection gone), and a person ended it with Stop following (or it ended ``unknown``); the watch, listing the run
under the new name, recorded it again, and that row follows it. The first recorded row is the ended one."""

from __future__ import annotations

from sqlalchemy import insert, update

from bot.models import RunState, RunStatus
from bot.store.engine import make_engine, migrate
from bot.store.store import Store
from bot.store.tables import runs, workflow_runs
from tests.unit.store.test_store import NOW
from tests.unit.store.test_watched_runs_once import watched


async def test_an_upgrade_keeps_following_the_duplicate_still_followed_when_the_first_recorded_has_ended(
    url: str,
) -> None:
    store = Store(make_engine(url))
    try:
        await migrate(store.engine, "0012")
        old = await store.runs.create(watched("rivery-us"), now=NOW, next_poll_at=NOW)
        stopped = await store.runs.stop_following(old.id, "U1", "rivery-us", now=NOW)
        assert stopped is not None and stopped.final
        live = await store.runs.create(watched("rivery-prod"), now=NOW, next_poll_at=NOW)
        # two ended copies of another provider run: the first stays as the one its key names
        a = await store.runs.create(watched("rivery-us", provider_run_id="run-8"), now=NOW, next_poll_at=NOW)
        b = await store.runs.create(watched("rivery-prod", provider_run_id="run-8"), now=NOW, next_poll_at=NOW)
        for run in (a, b):
            done = RunStatus("run-8", RunState.FAILED, "F", message="disk full")
            await store.runs.record_status(run.id, done, now=NOW, next_poll_at=None)
        await migrate(store.engine)
        kept = await store.runs.many([old.id, live.id, a.id, b.id])
        # the provider run is still running: the row that follows it goes on following it, under its own id
        assert not kept[live.id].final and kept[live.id].provider_run_id == "run-7", kept[live.id]
        assert kept[live.id].next_poll_at is not None
        # the ended one is marked (its state, message and stop as they were)
        assert kept[old.id].provider_run_id == f"run-7#dup-{old.id}" and kept[old.id].stopped_by == "U1"
        # the watch's next list finds the followed row under its name, not an ended one by ``find_moved``
        found = await store.runs.find("rivery-prod", "run-7")
        assert found is not None and found.id == live.id, found
        assert await store.runs.find_moved("leads-ods", "rivery", ["run-7"], besides="rivery-prod") is None
        assert kept[a.id].provider_run_id == "run-8" and kept[b.id].provider_run_id == f"run-8#dup-{b.id}"
        assert kept[b.id].state == "failed" and kept[b.id].message == "disk full"
    finally:
        await store.close()


async def test_an_upgrade_keeps_the_copy_a_workflow_adopted_when_both_are_still_followed(url: str) -> None:
    """Both copies still followed: the one ended quietly (notified already) is never handed to the workflow that
    adopted it as its step, which would wait for it for ever. The adopted one is kept."""
    store = Store(make_engine(url))
    try:
        await migrate(store.engine, "0012")
        first = await store.runs.create(watched("rivery-us"), now=NOW, next_poll_at=NOW)
        adopted = await store.runs.create(watched("rivery-prod"), now=NOW, next_poll_at=NOW)
        async with store.engine.begin() as conn:  # a workflow adopted the second as its step (``adopt_watched``)
            made = insert(workflow_runs).values(workflow="nightly", parameters={}, state="running", origin="slack",
                                                created_at=NOW, updated_at=NOW)
            workflow = (await conn.execute(made.returning(workflow_runs.c.id))).scalar_one()
            await conn.execute(update(runs).where(runs.c.id == adopted.id).values(workflow_run_id=workflow, step="load"))
        await migrate(store.engine)
        kept = await store.runs.many([first.id, adopted.id])
        assert not kept[adopted.id].final and kept[adopted.id].provider_run_id == "run-7", kept[adopted.id]
        assert kept[first.id].final and kept[first.id].provider_run_id == f"run-7#dup-{first.id}"
        assert f"followed as run #{adopted.id}" in kept[first.id].message
    finally:
        await store.close()
