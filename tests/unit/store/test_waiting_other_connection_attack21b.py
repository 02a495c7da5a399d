"""A replica claims a waiting start of a connection its catalog lacks only once it is well overdue: a replica that
has the connection starts it meanwhile (a rolling deploy); with none left, it is still claimed, and ends saying so."""

from __future__ import annotations

from datetime import timedelta

from bot.store.store import Store
from tests.unit.store.test_limits import NOW, new_run

LEASE = timedelta(seconds=60)


async def test_a_waiting_run_of_a_connection_the_replica_lacks_is_left_until_overdue(store: Store) -> None:
    waiting = await store.runs.create(new_run(origin="retry", start_at=NOW), now=NOW, next_poll_at=None)
    assert waiting.connection == "rivery-us" and waiting.state == "waiting"
    grace = timedelta(minutes=2)

    async def claimed(owner: str, connections: list[str], after: timedelta) -> list[int]:
        found = await store.starts.claim_waiting(owner, now=NOW + after, limit=10, lease=LEASE,
                                                 connections=connections, others_after=grace)
        return [r.id for r in found]

    assert await claimed("lacking", ["tailer"], timedelta(seconds=30)) == []  # left to a replica that has it
    assert await claimed("lacking", ["tailer"], timedelta(minutes=3)) == [waiting.id]  # none did: overdue


async def test_a_replica_with_the_connection_claims_it_when_due(store: Store) -> None:
    waiting = await store.runs.create(new_run(origin="retry", start_at=NOW), now=NOW, next_poll_at=None)
    found = await store.starts.claim_waiting("having", now=NOW, limit=10, lease=LEASE, connections=["rivery-us"],
                                             others_after=timedelta(minutes=2))
    assert [r.id for r in found] == [waiting.id]
