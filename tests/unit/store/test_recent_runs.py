"""The Home tab's pipeline rows read the last runs of all the person's pipelines in one query (``recent_of``): the
same runs, in the same order, as ``recent`` read one pipeline at a time (it was a query a pipeline: 200 owned
pipelines, 200 reads)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


def new_run(pipeline: str | None) -> NewRun:
    return NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
                  pipeline=pipeline)


async def test_the_last_runs_of_many_pipelines_in_one_query_are_those_read_one_by_one(store: Store) -> None:
    # interleaved: 13 of orders (more than a row shows), 3 of leads, 1 of no pipeline, none of quiet
    for i in range(13):
        await store.runs.create(new_run("orders"), now=NOW + timedelta(seconds=i), next_poll_at=None)
        if i % 4 == 0:
            await store.runs.create(new_run("leads"), now=NOW + timedelta(seconds=i), next_poll_at=None)
    await store.runs.create(new_run(None), now=NOW, next_poll_at=None)
    names = ["orders", "leads", "quiet"]
    together = await store.runs.recent_of(names, 10)
    one_by_one = {name: await store.runs.recent(name, 10) for name in names}
    assert together == one_by_one
    assert [len(together[n]) for n in names] == [10, 4, 0]
    assert together["orders"][0].id > together["orders"][-1].id  # newest first
    assert await store.runs.recent_of([], 10) == {}
