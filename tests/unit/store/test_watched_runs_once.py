"""A provider run passive watch records is one row whatever the connection's name (migration 0013).

A rolling deploy renaming a connection: two replicas list one new run at once, each under its own catalog's name
for the connection. Each looked (``find``, ``find_moved``) before either wrote, so both recorded it: the same
provider run twice, its failure counted twice in its alert. ``uq_runs_watched`` refuses the second row; the loser is
told ``AlreadyTracked`` with the winner's record, as for a race under one name."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from bot.models import RunState, RunStatus
from bot.store.engine import make_engine, migrate
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import AlreadyTracked, Store
from bot.store.tables import runs
from tests.unit.store.test_store import NOW, new_run


def watched(connection: str, provider_run_id: str = "run-7", pipeline: str = "leads-ods") -> NewRun:
    return new_run(connection=connection, provider_run_id=provider_run_id, origin=RunOrigin.WATCH, pipeline=pipeline,
                   started_by=None, parameters={})


async def _rows(store: Store, provider_run_id: str) -> list[tuple[int, str, str]]:
    query = select(runs.c.id, runs.c.connection, runs.c.origin).where(runs.c.provider_run_id == provider_run_id)
    async with store.engine.connect() as conn:
        return [(r.id, r.connection, r.origin) for r in await conn.execute(query.order_by(runs.c.id))]


async def test_two_replicas_recording_one_watched_run_under_two_connection_names_keep_one_row(store: Store) -> None:
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))
    try:
        # each replica looked first and found nothing (the watch's ``_one``): neither has written yet
        for replica, name in ((store, "rivery-us"), (other, "rivery-prod")):
            assert await replica.runs.find(name, "run-7") is None
            assert await replica.runs.find_moved("leads-ods", "rivery", ["run-7"], besides=name) is None
        answers = await asyncio.gather(
            store.runs.create(watched("rivery-us"), now=NOW, next_poll_at=NOW),
            other.runs.create(watched("rivery-prod"), now=NOW, next_poll_at=NOW),
            return_exceptions=True,
        )
    finally:
        await other.close()
    recorded = [a for a in answers if isinstance(a, RunRecord)]
    refused = [a for a in answers if isinstance(a, AlreadyTracked)]
    assert len(recorded) == 1 and len(refused) == 1, answers
    assert refused[0].run.id == recorded[0].id  # the loser gets the winner's record, and follows it as found
    assert [row[0] for row in await _rows(store, "run-7")] == [recorded[0].id]


async def test_only_the_watchs_rows_are_one_per_provider_run(store: Store) -> None:
    """Not the runs the bot starts: two connections' runs of one pipeline may carry one id (InVision's, an ad-hoc
    target's), and a watched run of another pipeline is another row."""
    await store.runs.create(new_run(connection="invision-a", provider="invision", provider_run_id="42"),
                            now=NOW, next_poll_at=NOW)
    await store.runs.create(new_run(connection="invision-b", provider="invision", provider_run_id="42"),
                            now=NOW, next_poll_at=NOW)
    await store.runs.create(watched("rivery-us"), now=NOW, next_poll_at=NOW)
    await store.runs.create(watched("rivery-prod", pipeline="leads-copy"), now=NOW, next_poll_at=NOW)
    await store.runs.create(new_run(connection="rivery-eu", provider_run_id="run-7"), now=NOW, next_poll_at=NOW)
    assert len(await _rows(store, "42")) == 2
    assert len(await _rows(store, "run-7")) == 3
    with pytest.raises(AlreadyTracked):
        await store.runs.create(watched("rivery-prod"), now=NOW, next_poll_at=NOW)


async def test_a_slow_answer_absorbs_the_copy_watched_under_the_connections_other_name(store: Store) -> None:
    """A run started from Slack on a replica that names the connection ``rivery-us``; a replica whose catalog
    renamed it ``rivery-prod`` listed the run before the trigger answered and recorded it as found: the answer
    takes the copy in, as it does under one name, and the run is one row."""
    mine = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    copy = await store.runs.create(watched("rivery-prod"), now=NOW, next_poll_at=NOW)
    run = await store.starts.record_triggered(mine.id, "run-7", now=NOW, next_poll_at=NOW)
    assert run.id == mine.id and await store.runs.get(copy.id) is None
    assert [row[0] for row in await _rows(store, "run-7")] == [mine.id]


async def test_an_upgrade_keeps_the_duplicates_a_database_holds_and_marks_all_but_the_first(url: str) -> None:
    """Watched runs recorded twice before 0013 (by the race, or under a renamed connection before ``find_moved``):
    the migration must not fail on them, nor lose what they point to."""
    store = Store(make_engine(url))
    try:
        await migrate(store.engine, "0012")
        first = await store.runs.create(watched("rivery-us"), now=NOW, next_poll_at=NOW)
        second = await store.runs.create(watched("rivery-prod"), now=NOW, next_poll_at=NOW)
        third = await store.runs.create(watched("rivery-eu", provider_run_id="x" * 200), now=NOW, next_poll_at=NOW)
        fourth = await store.runs.create(watched("rivery-prod", provider_run_id="x" * 200), now=NOW, next_poll_at=NOW)
        started = await store.runs.create(new_run(connection="rivery-eu", provider_run_id="run-7"), now=NOW,
                                          next_poll_at=NOW)
        ended = RunStatus("x" * 200, RunState.FAILED, "F", message="disk full")
        await store.runs.record_status(fourth.id, ended, now=NOW, next_poll_at=None)
        await migrate(store.engine)
        kept = await store.runs.many([r.id for r in (first, second, third, fourth, started)])
        assert {i: r.provider_run_id for i, r in kept.items()} == {first.id: "run-7", second.id: f"run-7#dup-{second.id}", third.id: "x" * 200,
                       fourth.id: "x" * (200 - len(f"#dup-{fourth.id}")) + f"#dup-{fourth.id}", started.id: "run-7"}
        # the second, still followed, ends quietly: polled under its marked id it would say the connection is down
        assert not kept[first.id].final and kept[first.id].next_poll_at is not None
        assert (kept[second.id].final, kept[second.id].state, kept[second.id].notified_state) == (
            True, "unknown", "unknown")
        assert kept[second.id].next_poll_at is None and f"followed as run #{first.id}" in kept[second.id].message
        assert (kept[fourth.id].state, kept[fourth.id].message) == ("failed", "disk full")  # ended: left as it was
        with pytest.raises(AlreadyTracked):
            await store.runs.create(watched("rivery-new"), now=NOW, next_poll_at=NOW)
        async with store.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(runs)) == 5
            with pytest.raises(IntegrityError):  # the key itself, not the store's look before writing
                await conn.execute(text(
                    "INSERT INTO runs (pipeline, provider, connection, job, parameters, provider_run_id, state,"
                    " raw_status, message, warning, tasks, extra, final, origin, attempt, created_at, updated_at,"
                    " polls, card_draws, last_error) SELECT pipeline, provider, 'rivery-x', job, parameters,"
                    " provider_run_id, state, raw_status, message, warning, tasks, extra, final, origin, attempt,"
                    f" created_at, updated_at, polls, card_draws, last_error FROM runs WHERE id = {first.id}"
                ))
    finally:
        await store.close()
