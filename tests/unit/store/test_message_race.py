"""Two writers of a new living message at once (the trigger's answer and the first poll of a run both
refresh its card): both succeed, the second edits what the first created."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.store.store import Store

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


async def test_two_writers_of_a_new_card_at_once_both_succeed(store: Store) -> None:
    for n in range(20):
        key = f"alerts:C1:{n}"
        first, second = await asyncio.gather(
            store.cards.write(key, "C1", "queued", [{"type": "section", "text": "q"}], now=NOW),
            store.cards.write(key, "C1", "running", [{"type": "section", "text": "r"}], now=NOW),
        )
        assert first and second  # neither writer failed, neither was taken for "no change"
        assert await store.cards.ts_of(key) is None  # one message, not yet posted
