"""The first drawing of a connection's "cannot reach" message against its "answers again" (twelfth independent
pass). The eleventh pass made the failing poll re-read the alert after its ticket; but before the message exists
every ticket is 0: the failing poll took its ticket and read the alert open, the answering poll then closed it
and wrote "answers again" (creating the message), and the failing poll's "Cannot reach" was written over it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import yaml
from sqlalchemy import select

from bot.catalog.load import parse_catalog
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.slack.reporter import SlackReporter
from bot.store import keys
from bot.store.alerting import Alert
from bot.store.store import Store
from bot.store.tables import cards

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CATALOG = """
defaults: {channel: C0ALERTS, owners: [U0BOB]}
connections:
  rv: {provider: rivery, api: v1, base_url: "http://127.0.0.1:1", account_id: a, environment_id: e, api_token: "${TOKEN}"}
pipelines:
  orders: {connection: rv, river_id: r1}
"""


async def test_a_first_cannot_reach_drawing_read_before_the_connection_came_back_never_overwrites_its_back(
    store: Store,
) -> None:
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "t0ken-value"})
    alerter = Alerter(store, catalog, ClientPool.for_catalog(catalog), SlackReporter(store, lambda: NOW),
                      lambda: NOW, down_after=timedelta(0))
    read = store.alerting.get
    seen: list[Alert] = []

    async def back_after_the_read(alert_id: int) -> Alert | None:
        alert = await read(alert_id)
        if not seen and alert is not None:  # the failing poll read it open: the other poll answers now
            seen.append(alert)
            await alerter.connection_ok("rv")
        return alert

    store.alerting.get = back_after_the_read  # type: ignore[method-assign]
    await alerter.connection_failed("rv", "connection refused")
    [alert] = seen
    async with store.engine.connect() as conn:
        row = (await conn.execute(
            select(cards.c.text, cards.c.blocks).where(cards.c.key == keys.health_message("rv", alert.id))
        )).first()
    assert row is not None
    message = json.dumps([row.text, row.blocks])
    assert "answers again" in message and "Cannot reach" not in message, message
