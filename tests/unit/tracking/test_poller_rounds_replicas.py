"""Issue 11's thirteenth pass: two replicas' ticks claiming in rounds at once (small claims, so each tick claims
again and again while the other does), polls held by a slow provider: every due run is polled, and by one of them."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import cast

from bot.service.clients import ClientPool
from bot.store.engine import make_engine, migrate
from bot.store.records import RunRecord, Transition
from bot.store.store import Store
from bot.tracking.poller import Poller
from tests.unit.tracking.test_poller import LEASE, NOW, SlowProvider, _run


async def test_two_replicas_claiming_in_rounds_at_once_poll_each_due_run_once(postgres_url: str) -> None:
    """Replicas are PostgreSQL's (SQLite is one process's: its file lock refuses a second)."""
    engine = make_engine(postgres_url)
    await migrate(engine)
    store = Store(engine)
    try:
        await _two_replicas(store)
    finally:
        await store.close()


async def _two_replicas(store: Store) -> None:
    slow = SlowProvider()

    async def changed(change: Transition) -> None:
        return None

    async def unknown(run: RunRecord) -> None:
        raise AssertionError("the provider answered")

    pollers = [
        Poller(store, cast(ClientPool, slow), owner=owner, now=lambda: NOW, on_change=changed, on_unknown=unknown,
               lease=LEASE, tick_wait=0.0, batch=3, rounds=8)
        for owner in ("a", "b")
    ]
    for n in range(20):
        await _run(store, f"p-{n}")
    claimed = await asyncio.wait_for(asyncio.gather(*(p.tick() for p in pollers)), 10)
    assert sum(claimed) == 20
    assert await asyncio.wait_for(asyncio.gather(*(p.tick() for p in pollers)), 10) == [0, 0]  # all held meanwhile
    slow.answer.set()
    await asyncio.wait_for(asyncio.gather(*(p.idle() for p in pollers)), 10)
    twice = [run for run, times in Counter(slow.asked).items() if times > 1]
    assert twice == [] and len(slow.asked) == 20
