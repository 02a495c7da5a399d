"""A run ended by a person in the state its card already showed (a status outside the model, stored ``unknown``
and not ended, then its connection left the catalog): the end is left unnotified until it is acted on, so the
recovery of unnotified runs replays it after a crash in between (it read as told already: nothing would ever
announce the failure whose retry it was, nor end its workflow's step)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.models import RunState, RunStatus
from bot.store.records import NewRun, RunOrigin, StoredState
from bot.store.store import Store

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


async def test_a_person_ending_a_run_shown_unknown_leaves_it_for_recovery_until_told(store: Store) -> None:
    run = await store.runs.create(
        NewRun(provider="invision", connection="invision", job={"dataflow_id": "f"}, parameters={},
               origin=RunOrigin.SLACK, pipeline="budget", started_by="U0ALICE", channel="C0GENERAL"),
        now=NOW - timedelta(hours=1), next_poll_at=None,
    )
    await store.runs.repoint(run.id, "p-1")
    odd = RunStatus(run_id="p-1", state=RunState.UNKNOWN, raw_status="Reconciling")
    await store.runs.record_status(run.id, odd, now=NOW - timedelta(minutes=50), next_poll_at=NOW)
    await store.runs.mark_notified(run.id, StoredState.UNKNOWN)  # its card shows "unknown"
    assert await store.runs.unnotified(older_than=NOW + timedelta(hours=1)) == []

    ended = await store.runs.stop_following(run.id, "U0ALICE", "invision", now=NOW)
    assert ended is not None and ended.final and ended.state == StoredState.UNKNOWN
    assert [r.id for r in await store.runs.unnotified(older_than=NOW + timedelta(hours=1))] == [run.id]
    await store.runs.mark_notified(run.id, StoredState.UNKNOWN)
    assert await store.runs.unnotified(older_than=NOW + timedelta(hours=1)) == []
