"""A poll asked for while a poll was under way (a cancel's answer, the Refresh button: ``poll_now``) is kept when
that poll writes its own next time. Before, the poll under way overwrote it with "in one interval": a failure held
while a cancel was on its way, then released by the provider's refusal, was announced up to one interval later
(minutes, for a long run), and a Refresh clicked during a poll did nothing (fourteenth pass a, a low)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.models import RunState, RunStatus
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)


async def _claimed(store: Store) -> RunRecord:
    """A running run, due at T0 and claimed by a poll at T0."""
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="refunds", channel="C1", provider_run_id="p1"),
        now=T0 - timedelta(minutes=1), next_poll_at=T0 - timedelta(minutes=1),
    )
    running = RunStatus("p1", RunState.RUNNING, "R")
    await store.runs.record_status(run.id, running, now=T0 - timedelta(minutes=1), next_poll_at=T0)
    [claimed] = await store.runs.claim_due("a", now=T0, limit=10, lease=LEASE)
    return claimed


@pytest.mark.parametrize("write", ["quiet", "record_status"])
@pytest.mark.parametrize("asked", [True, False], ids=["asked meanwhile", "nobody asked"])
async def test_a_poll_asked_for_during_a_poll_is_kept(store: Store, write: str, asked: bool) -> None:
    claimed = await _claimed(store)
    asked_at = T0 + timedelta(seconds=3)
    if asked:
        await store.runs.poll_now(claimed.id, now=asked_at)  # the cancel's answer came while the poll waited
    own_next = T0 + timedelta(minutes=5)  # a long run's interval
    same = RunStatus("p1", RunState.RUNNING, "R")
    if write == "quiet":
        poll = store.runs.quiet(claimed, same, now=T0 + timedelta(seconds=4), next_poll_at=own_next)
        assert poll is not None
        assert await store.runs.record_quiet([poll]) == set()
    else:
        await store.runs.record_status(claimed.id, same, now=T0 + timedelta(seconds=4), next_poll_at=own_next,
                                       read=claimed)
    after = await store.runs.get(claimed.id)
    assert after is not None and after.polls == claimed.polls + 1
    assert after.next_poll_at == (asked_at if asked else own_next)  # polled again at once, as asked
    due = await store.runs.claim_due("b", now=asked_at + timedelta(seconds=5), limit=10, lease=LEASE)
    assert [r.id for r in due] == ([claimed.id] if asked else [])
