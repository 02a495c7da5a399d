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
        states = {run_id: run.state for run_id, run in after.items()}
        assert states == {sent: "starting", answered: "queued", given_up: "unknown", left: "waiting"}
        assert after[left].next_poll_at == later and not after[left].final
        # another replica starts it at once, and only it
        taken = await other.starts.claim_waiting("replica-b", now=later, limit=10, lease=LEASE)
        assert [r.id for r in taken] == [left]
    finally:
        await other.close()


async def test_an_answer_recorded_again_never_moves_a_polled_run_back_nor_frees_its_poll(store: Store) -> None:
    """``record_answer`` records the trigger's answer again when the database seemed away: a commit whose
    acknowledgement was lost (a connection cut at COMMIT, a failover) had been written already, and the poller may
    have claimed and polled the run since."""
    from bot.models import RunState, RunStatus

    run = await store.runs.create(new_run(), now=NOW, next_poll_at=None, owner="replica-a", lease=LEASE)
    at = NOW + timedelta(seconds=1)
    await store.starts.answered(run.id, "p-1", now=at, next_poll_at=at + timedelta(seconds=2))  # written, ack lost
    polled = at + timedelta(seconds=3)
    claimed = await store.runs.claim_due("replica-b", now=polled, limit=10, lease=LEASE)
    running = RunStatus(run_id="p-1", state=RunState.RUNNING, raw_status="Running")
    await store.runs.record_status(run.id, running, now=polled, next_poll_at=polled + timedelta(seconds=30),
                                   read=claimed[0])
    polling = polled + timedelta(seconds=31)
    assert [r.id for r in await store.runs.claim_due("replica-b", now=polling, limit=10, lease=LEASE)] == [run.id]
    again, resumed = await store.starts.answered(run.id, "p-1", now=polling, next_poll_at=polling)  # the retry
    assert not resumed
    assert again.state == "running"  # before: back to "queued", a second "queued" event in its history
    assert [state for _, state, _, _ in await store.runs.events(run.id)] == ["queued", "running"]
    # replica-b's poll keeps its lease: before, it was cleared and replica-c polled the run at the same time
    assert await store.runs.claim_due("replica-c", now=polling + timedelta(seconds=1), limit=10, lease=LEASE) == []
