"""The seventeenth pass (a): the runs a starter claimed and did not trigger, handed back when it stops (SQLite and
PostgreSQL, a second engine as another replica)."""

from __future__ import annotations

from datetime import timedelta

from bot.store.engine import make_engine
from bot.store.store import Store
from tests.unit.store.test_limits import NOW, new_run

LEASE = timedelta(seconds=60)


async def test_runs_claimed_and_not_triggered_are_handed_back_to_wait_and_another_replica_starts_them(
    store: Store,
) -> None:
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))
    try:
        ids = [
            (await store.runs.create(new_run(origin="retry", start_at=NOW - timedelta(seconds=1)), now=NOW,
                                     next_poll_at=None)).id
            for _ in range(4)
        ]
        claimed = await store.starts.claim_waiting("replica-a", now=NOW, limit=10, lease=LEASE)
        assert sorted(r.id for r in claimed) == ids
        sent, answered, given_up, left = ids
        later = NOW + timedelta(seconds=5)
        await store.starts.answered(answered, "p-1", now=later, next_poll_at=later)  # its trigger answered
        assert await store.starts.give_up(given_up, "gone", now=NOW + LEASE * 2, unleased_before=NOW) is not None
        # replica-a stops with ``sent``'s trigger under way and ``left`` not sent: only ``left`` is handed back
        # (``sent`` is held by its lease, renewed until its answer; neither replica-b's nor an ended run is touched)
        assert await other.starts.hand_back("replica-b", [left], now=later) == set()
        assert await store.starts.hand_back("replica-a", [answered, given_up, left], now=later) == {left}
        after = await store.runs.many(ids)
        assert [after[i].state for i in ids] == ["starting", "queued", "unknown", "waiting"]
        assert after[left].next_poll_at == later and not after[left].final
        # another replica starts it at once, and only it
        taken = await other.starts.claim_waiting("replica-b", now=later, limit=10, lease=LEASE)
        assert [r.id for r in taken] == [left]
    finally:
        await other.close()
