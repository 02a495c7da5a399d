"""The seventeenth pass (a): a trigger's answer recorded twice (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from bot.models import RunState, RunStatus
from bot.store.store import Store
from tests.unit.store.test_limits import NOW, new_run

LEASE = timedelta(seconds=60)


async def test_an_answer_recorded_again_never_moves_a_polled_run_back_nor_frees_its_poll(store: Store) -> None:
    """``record_answer`` records the trigger's answer again when the database seemed away: a commit whose
    acknowledgement was lost (a connection cut at COMMIT, a failover) had been written already, and the poller may
    have claimed and polled the run since."""
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
