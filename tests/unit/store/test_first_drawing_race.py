"""Two first drawings of a run's card at once on PostgreSQL (twelfth independent pass): the trigger's answer and the
run's first poll, say, in two tasks or two replicas, before the card exists. Each took its ticket; the later ticket's
drawing creates the card while the earlier one, past its ticket check (no card yet), waits on the new row's key.
The earlier one must then see the later ticket and write nothing: it read older facts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text

from bot.store import keys
from bot.store.cards import _write_drawn
from bot.store.engine import make_engine, migrate
from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


async def test_an_earlier_first_drawing_never_overwrites_a_later_one_that_created_the_card(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    await migrate(engine)
    store = Store(engine)
    try:
        run = await store.runs.create(
            NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
                   pipeline="orders", channel="C1", provider_run_id="p-1"),
            now=NOW, next_poll_at=None,
        )
        earlier = await store.cards.draw_ticket(run.id)  # read the run: queued
        later = await store.cards.draw_ticket(run.id)  # read the run after it: failed
        assert earlier < later
        key = keys.run_card(run.id)
        async with engine.connect() as holder:  # the later drawing, its transaction not yet committed
            transaction = await holder.begin()
            await _write_drawn(holder, key, "C1", "orders failed", [{"type": "section", "text": "failed"}], NOW,
                               run.id, later)
            earlier_write = asyncio.create_task(store.cards.write_run_card(
                run.id, "C1", "orders is queued", [{"type": "section", "text": "queued"}], now=NOW, final=False,
                ticket=earlier,
            ))
            async with engine.connect() as watcher:  # until the earlier drawing waits on the new row's key
                for _ in range(500):
                    waiting = (await watcher.execute(text(
                        "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = "
                        "current_database()"
                    ))).scalar()
                    await watcher.commit()
                    if waiting or earlier_write.done():
                        break
                    await asyncio.sleep(0.01)
            await transaction.commit()
        await asyncio.wait_for(earlier_write, 10)
        card = await store.cards.of_run(run.id)
        assert card is not None and card.text == "orders failed", card.text if card else None
    finally:
        await store.close()
