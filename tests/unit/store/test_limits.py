"""Providers' caps on starting runs, counted from the runs table: a refused start leaves no run, a held one
waits with its reason, and two replicas racing for the last slot cannot both take it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.models import TriggerLimit
from bot.store.engine import make_engine
from bot.store.records import NewRun
from bot.store.store import Store
from bot.store.tables import runs

NOW = datetime(2026, 11, 22, 10, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
PER_TOKEN = TriggerLimit(15, MINUTE, "Rivery allows 15 runs a minute per API token")


def limits(river: str = "r1") -> tuple[TriggerLimit, TriggerLimit]:
    """What the Rivery client states for a start of ``river``."""
    return TriggerLimit(2, MINUTE, "Rivery allows 2 runs of a river a minute", {"river_id": river}), PER_TOKEN


def new_run(river: str = "r1", **kw: object) -> NewRun:
    values: dict[str, object] = {"provider": "rivery", "connection": "rivery-us", "job": {"river_id": river},
                                 "parameters": {}, "origin": "slack", "pipeline": "leads-ods"}
    values.update(kw)
    return NewRun(**values)  # type: ignore[arg-type]


async def started(store: Store, at: datetime, river: str = "r1", **kw: object) -> int:
    run = await store.runs.create(new_run(river, **kw), now=at, next_poll_at=None)
    assert await store.limits.admit(run.id, "rivery-us", limits(river), now=at, queue=False) is None
    return run.id


async def test_a_third_start_of_a_river_within_a_minute_is_refused_and_leaves_no_run(store: Store) -> None:
    await started(store, NOW - timedelta(seconds=20))
    await started(store, NOW - timedelta(seconds=10))
    third = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    held = await store.limits.admit(third.id, "rivery-us", limits(), now=NOW, queue=False)
    assert held is not None and held.limit.reason == "Rivery allows 2 runs of a river a minute"
    # the first run leaves the minute at 10:01:10: shown to the minute, that is 10:02 (at 10:01 it would not fit)
    assert held.until == datetime(2026, 11, 22, 10, 2, tzinfo=UTC)
    assert await store.runs.get(third.id) is None
    other = await store.runs.create(new_run(river="r2"), now=NOW, next_poll_at=None)
    other_river = limits("r2")
    assert await store.limits.admit(other.id, "rivery-us", other_river, now=NOW, queue=False) is None


async def test_a_held_start_of_the_bot_waits_with_its_reason_and_is_admitted_once_the_minute_passed(
    store: Store,
) -> None:
    await started(store, NOW - timedelta(seconds=50))
    await started(store, NOW - timedelta(seconds=5))
    scheduled = await store.runs.create(new_run(origin="schedule"), now=NOW, next_poll_at=None)
    async with store.engine.begin() as conn:  # whatever the run held already stays (it used to be replaced)
        await conn.execute(update(runs).where(runs.c.id == scheduled.id).values(extra={"held": "before"}))
    held = await store.limits.admit(scheduled.id, "rivery-us", limits(), now=NOW, queue=True)
    assert held is not None and held.until == datetime(2026, 11, 22, 10, 1, tzinfo=UTC)
    waiting = await store.runs.get(scheduled.id)
    assert waiting is not None
    assert (waiting.state, waiting.next_poll_at) == ("waiting", held.until)
    assert waiting.extra == {"held": "before", "waiting_for": "Rivery allows 2 runs of a river a minute"}

    claimed = await store.starts.claim_waiting("me", now=held.until, limit=10, lease=MINUTE)
    assert [r.id for r in claimed] == [scheduled.id]
    assert await store.limits.admit(scheduled.id, "rivery-us", limits(), now=held.until, queue=True) is None


async def test_runs_found_by_the_watch_and_retries_still_waiting_do_not_count(store: Store) -> None:
    await store.runs.create(new_run(origin="watch", provider_run_id="x1"), now=NOW, next_poll_at=NOW)
    await store.runs.create(new_run(origin="watch", provider_run_id="x2"), now=NOW, next_poll_at=NOW)
    await store.runs.create(new_run(origin="retry", start_at=NOW + MINUTE), now=NOW, next_poll_at=None)
    await started(store, NOW)
    await started(store, NOW)


async def test_fifteen_starts_a_minute_per_token_across_rivers(store: Store) -> None:
    for number in range(15):
        await started(store, NOW, f"r{number}")
    sixteenth = await store.runs.create(new_run(river="r99"), now=NOW, next_poll_at=None)
    held = await store.limits.admit(sixteenth.id, "rivery-us", limits("r99"), now=NOW, queue=False)
    assert held is not None and held.limit is PER_TOKEN


async def test_two_replicas_racing_for_a_river_start_it_twice_a_minute_at_most(postgres_url: str) -> None:
    """Each replica has its own engine and process-local lock: only the database can keep them to the cap."""
    replicas = [Store(make_engine(postgres_url)) for _ in range(2)]
    from bot.store.engine import migrate

    await migrate(replicas[0].engine)
    try:
        async def attempt(store: Store) -> bool:
            run = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
            return await store.limits.admit(run.id, "rivery-us", limits(), now=NOW, queue=False) is None

        outcomes = await asyncio.gather(*(attempt(replicas[i % 2]) for i in range(8)))
        assert sum(outcomes) == 2
        assert len(await replicas[0].runs.between(NOW - MINUTE, NOW + MINUTE)) == 2
    finally:
        for replica in replicas:
            await replica.close()


async def test_a_start_given_up_before_the_cap_held_it_is_not_set_waiting_again(store: Store) -> None:
    """Found by the fifth independent pass: recovery gave a start up (its process taken for gone) between its claim
    and the cap's check; the check set the ended run waiting again, and a later tick started it after all."""
    await started(store, NOW - timedelta(seconds=50))
    await started(store, NOW - timedelta(seconds=5))
    start = await store.runs.create(new_run(origin="schedule"), now=NOW, next_poll_at=None, owner="gone",
                                   lease=timedelta(seconds=1))
    later = NOW + timedelta(seconds=5)
    assert await store.starts.give_up(start.id, "given up", now=later, unleased_before=NOW) is not None

    held = await store.limits.admit(start.id, "rivery-us", limits(), now=later, queue=True)
    assert held is not None  # the cap is reached: it would have waited, had it still been a start
    run = await store.runs.get(start.id)
    assert run is not None and (run.state, run.final) == ("unknown", True)
    claimed = await store.starts.claim_waiting("next", now=NOW + timedelta(minutes=5), limit=10, lease=MINUTE)
    assert claimed == []
