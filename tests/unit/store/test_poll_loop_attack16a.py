"""A run's next poll stored as another text for the same instant (SQLite keeps times as text: an operator's
``UPDATE runs SET next_poll_at = datetime('now')`` to have a run polled at once, a copy of the database made by
another tool) was taken for a poll asked for meanwhile (``sooner``): each poll kept it, in the past, instead of
writing its own, and the run was polled at every tick for good (sixteenth pass a)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from bot.models import RunState, RunStatus
from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


@pytest.mark.parametrize("write", ["quiet", "record_status"])
@pytest.mark.parametrize("stored", ["2026-12-07 08:59:30", "2026-12-07 08:59:30.0"])
async def test_a_next_poll_stored_as_other_text_is_replaced_by_the_polls_own(
    sqlite_store: Store, write: str, stored: str
) -> None:
    store = sqlite_store
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="refunds", channel="C1", provider_run_id="p1"),
        now=T0 - timedelta(minutes=1), next_poll_at=T0 - timedelta(minutes=1),
    )
    async with store.engine.begin() as conn:  # written by hand, as SQLite's own functions write a time
        await conn.execute(text("UPDATE runs SET next_poll_at = :at WHERE id = :id"), {"at": stored, "id": run.id})
    same = RunStatus("p1", RunState.QUEUED, "")
    now = T0
    for _ in range(3):  # three ticks: the first poll writes its own next time, the others find nothing due
        for claimed in await store.runs.claim_due("a", now=now, limit=10, lease=LEASE):
            own_next = now + timedelta(seconds=30)
            if write == "quiet":
                poll = store.runs.quiet(claimed, same, now=now, next_poll_at=own_next)
                assert poll is not None
                assert await store.runs.record_quiet([poll]) == set()
            else:
                await store.runs.record_status(claimed.id, same, now=now, next_poll_at=own_next, read=claimed)
        now += timedelta(seconds=1)
    after = await store.runs.get(run.id)
    assert after is not None and after.polls == 1 and after.next_poll_at == T0 + timedelta(seconds=30)


async def test_a_poll_asked_for_during_a_poll_that_fails_is_kept(store: Store) -> None:
    """A refused cancel asks for a poll at once (its held failure is to be announced) while the poll under way gets
    no answer (a flaky provider): the error's backoff (up to minutes) put the announcement off (sixteenth pass a)."""
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="refunds", channel="C1", provider_run_id="p1"),
        now=T0 - timedelta(minutes=1), next_poll_at=T0,
    )
    [claimed] = await store.runs.claim_due("a", now=T0, limit=10, lease=LEASE)
    asked_at = T0 + timedelta(seconds=3)
    await store.runs.poll_now(run.id, now=asked_at)  # the cancel's refusal, while the poll waits for its answer
    after = await store.runs.record_poll_error(run.id, "502", now=T0 + timedelta(seconds=4),
                                               next_poll_at=T0 + timedelta(minutes=5), read=claimed)
    assert after.next_poll_at == asked_at and after.last_error == "502"
    # nobody asked: the error's own backoff
    [again] = await store.runs.claim_due("a", now=asked_at, limit=10, lease=LEASE)
    after = await store.runs.record_poll_error(run.id, "502", now=asked_at, next_poll_at=T0 + timedelta(minutes=5),
                                               read=again)
    assert after.next_poll_at == T0 + timedelta(minutes=5)
