"""A run waiting its turn is canceled in the store, in one conditional update: a starter that claimed it first
wins (its trigger is on its way), a cancel that came first keeps the starter from taking it; and a run canceled
before it started counts against no provider's cap on starts (it was never triggered)."""

from __future__ import annotations

from datetime import timedelta

from bot.store.store import Store
from tests.unit.store.test_limits import NOW, limits, new_run, started


async def test_a_waiting_run_canceled_first_is_never_claimed_and_one_claimed_first_is_not_canceled(
    store: Store,
) -> None:
    first = await store.runs.create(new_run(origin="retry", start_at=NOW + timedelta(minutes=10)), now=NOW,
                                    next_poll_at=None)
    second = await store.runs.create(new_run(origin="retry", start_at=NOW + timedelta(minutes=10)), now=NOW,
                                     next_poll_at=None)
    assert first.state == second.state == "waiting"
    ended = await store.starts.cancel_waiting(first.id, "U0ALICE", now=NOW)
    assert ended is not None and (ended.state, ended.final, ended.cancel_requested_by) == ("canceled", True, "U0ALICE")
    assert ended.message == "canceled at <@U0ALICE>'s request before it started"
    later = NOW + timedelta(minutes=11)
    claimed = await store.starts.claim_waiting("replica-a", now=later, limit=10, lease=timedelta(seconds=60))
    assert [r.id for r in claimed] == [second.id]  # the canceled one never starts
    assert await store.starts.cancel_waiting(second.id, "U0ALICE", now=later) is None  # its trigger is on its way
    assert await store.starts.cancel_waiting(first.id, "U0BOB", now=later) is None  # ended already


async def test_a_run_canceled_before_it_started_counts_against_no_cap(store: Store) -> None:
    await started(store, NOW - timedelta(seconds=20))  # one of the river's two starts a minute
    waiting = await store.runs.create(new_run(), now=NOW - timedelta(seconds=10), next_poll_at=None)
    held = await store.limits.admit(waiting.id, "rivery-us", limits(), now=NOW - timedelta(seconds=10), queue=True)
    assert held is None  # the second start: admitted, then (say) the provider's cap elsewhere made it wait
    await store.limits.wait_again(waiting.id, until=NOW + timedelta(minutes=5), reason="busy", now=NOW)
    assert await store.starts.cancel_waiting(waiting.id, "U0ALICE", now=NOW) is not None
    third = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    assert await store.limits.admit(third.id, "rivery-us", limits(), now=NOW, queue=False) is None
