"""The seventeenth pass (a): a poll that got no answer, recorded after another writer ended the run (SQLite and
PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from bot.models import RunState, RunStatus
from bot.store.store import Store
from tests.unit.store.test_limits import NOW, new_run

LEASE = timedelta(seconds=60)


async def test_a_poll_error_recorded_after_the_run_ended_leaves_the_ended_run_as_it_is(store: Store) -> None:
    run = await store.runs.create(new_run(provider_run_id="p-1"), now=NOW, next_poll_at=NOW)
    claimed = await store.runs.claim_due("replica-a", now=NOW, limit=5, lease=LEASE)
    # passive watch (or a replica whose claim came after replica-a's lease) records the run's end meanwhile
    done = RunStatus(run_id="p-1", state=RunState.SUCCEEDED, raw_status="Done", final=True)
    await store.runs.record_status(run.id, done, now=NOW + timedelta(seconds=1), next_poll_at=None)
    # replica-a's poll then gets a 502
    after = await store.runs.record_poll_error(run.id, "HTTP 502", now=NOW + timedelta(seconds=2),
                                               next_poll_at=NOW + timedelta(seconds=30), read=claimed[0])
    # before: "status unknown since", the error and a next poll written on the succeeded run
    assert (after.state, after.final) == ("succeeded", True)
    assert (after.unknown_since, after.last_error, after.next_poll_at, after.polls) == (None, "", None, 1)
