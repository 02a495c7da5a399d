"""Which Workflow Builder steps the stale-claim sweep fails: claimed, old enough, without a run and without a
completion written (the key built in SQL matches ``keys.function_completion``), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.store import keys
from bot.store.records import OutboxKind
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


async def test_the_sweep_finds_claims_left_without_a_run_or_an_end(store: Store) -> None:
    old = NOW - timedelta(minutes=5)
    for execution_id, at in (("FxLEFT", old), ("FxRUN", old), ("FxTOLD", old), ("FxNEW", NOW), ("FxANCIENT",
                                                                                              NOW - timedelta(days=3))):
        assert await store.functions.claim(execution_id, user_id="U1", wait=True, now=at)
    await store.functions.started("FxRUN", 7)  # its run's end completes it
    await store.outbox.enqueue(keys.function_completion("FxTOLD"), kind=OutboxKind.FUNCTION, channel="FxTOLD",
                               text="failed", blocks=[{"error": "no"}], now=old)  # refused: already failed
    found = await store.functions.stale_claims(before=NOW - timedelta(minutes=2), since=NOW - timedelta(days=1))
    assert found == ["FxLEFT"]
