"""A card is drawn from the run as it is when the drawing starts, not from the copy its caller read earlier."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import yaml

from bot.catalog.load import parse_catalog
from bot.models import RunState, RunStatus
from bot.service.clients import ClientPool
from bot.service.notify import Notifier
from bot.slack.reporter import SlackReporter
from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CATALOG = """
connections:
  dk: {provider: datakitchen, username: bot, password: "${PW}"}
pipelines:
  orders: {connection: dk, kitchen: k, recipe: r, variation: a, owners: [U0BOB]}
"""


async def test_a_card_redrawn_from_a_copy_read_before_a_click_still_shows_the_click(sqlite_store: Store) -> None:
    """Found by CI (tests/scenario/test_home.py): the alert's link redrew the card from the run it had read before
    Alice acknowledged it; written last, the card no longer said she was on it."""
    store = sqlite_store
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"PW": "secret-pw"})
    notifier = Notifier(store, catalog, ClientPool.for_catalog(catalog), SlackReporter(store, lambda: NOW), lambda: NOW)
    run = await store.runs.create(
        NewRun(provider="datakitchen", connection="dk", job={"kitchen": "k", "recipe": "r", "variation": "a"},
               parameters={}, origin=RunOrigin.SLACK, pipeline="orders", channel="C1", provider_run_id="o-1"),
        now=NOW, next_poll_at=None,
    )
    change = await store.runs.record_status(run.id, RunStatus("o-1", RunState.FAILED, "Failed", ended_at=NOW),
                                            now=NOW, next_poll_at=None)
    assert change is not None
    stale = change.run
    await store.runs.acknowledge(run.id, "U0ALICE", now=NOW)
    await notifier.refresh_card(stale)  # the copy read before the click
    card = await store.cards.of_run(run.id)
    assert card is not None and "<@U0ALICE> is on it" in json.dumps(card.blocks)
