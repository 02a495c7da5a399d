"""The sixteenth pass (a): a run waiting its turn or still starting, as the starter, a cancel, Refresh and the
poller see it (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.store.engine import make_engine
from bot.store.store import Store
from tests.unit.store.test_limits import NOW, new_run

LEASE = timedelta(seconds=60)


async def test_a_cancel_landing_while_the_starter_claims_is_never_turned_back_into_a_start(store: Store) -> None:
    # a second engine on the same database: the cancel's click and the starter's claim on connections of their own
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))
    try:
        for _ in range(30):
            run = await store.runs.create(new_run(origin="retry", start_at=NOW - timedelta(seconds=1)), now=NOW,
                                          next_poll_at=None)
            claimed, canceled = await asyncio.gather(
                store.starts.claim_waiting("replica-a", now=NOW, limit=10, lease=LEASE),
                other.starts.cancel_waiting(run.id, "U0ALICE", now=NOW),
            )
            after = await store.runs.get(run.id)
            assert after is not None
            # one of the two, never both: on SQLite the claim's read took no lock, and its write turned a run
            # canceled in between back into "starting" (ended, its card and status saying it was starting)
            assert bool(claimed) != (canceled is not None)
            if canceled is not None:
                assert (after.state, after.final) == ("canceled", True)
            else:
                assert [r.id for r in claimed] == [run.id] and (after.state, after.final) == ("starting", False)
    finally:
        await other.close()


async def test_a_start_refreshed_and_left_by_its_dead_starter_is_given_up_not_claimed_by_the_poller(
    store: Store,
) -> None:
    run = await store.runs.create(new_run(), now=NOW, next_poll_at=None, owner="replica-a", lease=LEASE)
    assert run.state == "starting"
    await store.runs.poll_now(run.id, now=NOW + timedelta(seconds=2))  # Refresh on its "starting" card
    later = NOW + LEASE + timedelta(seconds=1)  # replica-a died during the trigger: its lease expired
    # the poller has nothing to ask of a run without a provider id: claimed, it kept the start from recovery for
    # each lease it took (recovery saw it only between a lease's end and the poller's next claim)
    assert await store.runs.claim_due("replica-b", now=later, limit=10, lease=LEASE) == []
    orphans = await store.starts.orphaned(now=later + timedelta(seconds=1), unleased_before=later)
    assert [r.id for r in orphans] == [run.id]


async def test_refresh_on_a_run_waiting_its_turn_does_not_start_it_early(store: Store) -> None:
    run = await store.runs.create(new_run(origin="retry", start_at=NOW + timedelta(minutes=10)), now=NOW,
                                  next_poll_at=None)
    await store.runs.poll_now(run.id, now=NOW)  # Refresh on the retry's card: its backoff is not skipped
    assert await store.starts.claim_waiting("replica-a", now=NOW + timedelta(seconds=1), limit=10, lease=LEASE) == []
    after = await store.runs.get(run.id)
    assert after is not None and after.next_poll_at == NOW + timedelta(minutes=10)
