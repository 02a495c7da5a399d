"""The ledger of Slack requests taken: one claim per key across every connection, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from bot.store.engine import make_engine
from bot.store.store import Store

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
HOLD = timedelta(seconds=3)
KEEP = timedelta(minutes=15)


async def test_the_first_claim_wins_and_repeats_are_refused(store: Store) -> None:
    ledger = store.requests
    token = await ledger.claim("k1", now=NOW, hold=HOLD, keep=KEEP)
    assert token is not None
    assert await ledger.claim("k1", now=NOW + timedelta(seconds=1), hold=HOLD, keep=KEEP) is None
    assert await ledger.claim("k2", now=NOW, hold=HOLD, keep=KEEP) is not None

    # answered: refused however late, until forgotten
    await ledger.answered("k1", token)
    assert await ledger.claim("k1", now=NOW + timedelta(minutes=14), hold=HOLD, keep=KEEP) is None
    assert await ledger.prune(now=NOW + timedelta(minutes=16)) == 2
    assert await ledger.claim("k1", now=NOW + timedelta(minutes=16), hold=HOLD, keep=KEEP) is not None


async def test_an_unanswered_claim_is_given_back_or_lapses(store: Store) -> None:
    ledger = store.requests
    first = await ledger.claim("k", now=NOW, hold=HOLD, keep=KEEP)
    assert first is not None
    await ledger.release("k", first)
    second = await ledger.claim("k", now=NOW, hold=HOLD, keep=KEEP)
    assert second is not None

    # the holder died: refused within the hold, taken over after it
    assert await ledger.claim("k", now=NOW + HOLD, hold=HOLD, keep=KEEP) is None
    third = await ledger.claim("k", now=NOW + HOLD + timedelta(seconds=1), hold=HOLD, keep=KEEP)
    assert third is not None
    # the dead attempt's late word changes nothing: the claim is the new holder's
    await ledger.release("k", second)
    assert await ledger.claim("k", now=NOW + HOLD + timedelta(seconds=2), hold=HOLD, keep=KEEP) is None
    await ledger.answered("k", third)
    assert await ledger.claim("k", now=NOW + timedelta(minutes=5), hold=HOLD, keep=KEEP) is None


async def test_claims_racing_from_several_connections_make_one_winner(store: Store) -> None:
    engines = [make_engine(store.engine.url.render_as_string(hide_password=False)) for _ in range(4)]
    stores = [Store(engine) for engine in engines]
    try:
        for key in ("a", "b", "c"):
            tokens = await asyncio.gather(
                *(s.requests.claim(key, now=NOW, hold=HOLD, keep=KEEP) for s in stores for _ in range(3))
            )
            assert sum(token is not None for token in tokens) == 1, tokens
    finally:
        for s in stores:
            await s.close()


async def test_a_renewed_claim_is_not_taken_over(store: Store) -> None:
    """A live attempt renews its claim: only a claim left without renewal for ``hold`` is taken over."""
    ledger = store.requests
    token = await ledger.claim("k", now=NOW, hold=HOLD, keep=KEEP)
    assert token is not None
    assert await ledger.renew("k", token, now=NOW + timedelta(seconds=2))
    assert await ledger.claim("k", now=NOW + timedelta(seconds=4), hold=HOLD, keep=KEEP) is None
    taker = await ledger.claim("k", now=NOW + timedelta(seconds=6), hold=HOLD, keep=KEEP)
    assert taker is not None
    # the old holder's renewal is refused: the claim is the taker's now
    assert not await ledger.renew("k", token, now=NOW + timedelta(seconds=6))
    await ledger.answered("k", taker)
    assert not await ledger.renew("k", taker, now=NOW + timedelta(seconds=7))
