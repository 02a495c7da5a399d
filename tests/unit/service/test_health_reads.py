"""A poll that answers tells the alerter its connection is healthy: that must cost no database read once the bot
knows which connections are failing, the first tick's thousands of polls included."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import yaml
from sqlalchemy import event

from bot.catalog.load import parse_catalog
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.slack.reporter import SlackReporter
from bot.store.store import Store

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CATALOG = """
defaults: {channel: C0ALERTS}
connections:
  rivery: {provider: rivery, api_token: "${TOKEN}"}
  other: {provider: rivery, api_token: "${TOKEN}"}
pipelines:
  leads-ods: {connection: rivery, river_id: r1}
"""


async def test_the_first_polls_at_once_read_the_failing_connections_once(store: Store) -> None:
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "t0ken-value"})
    await store.alerting.connection_failed("rivery", "503 from Rivery", now=NOW)
    alerter = Alerter(store, catalog, ClientPool.for_catalog(catalog), SlackReporter(store, lambda: NOW), lambda: NOW)
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "connection_health" in statement:
            reads.append(statement)

    event.listen(store.engine.sync_engine, "before_cursor_execute", count)
    try:
        await asyncio.gather(*(alerter.connection_ok("other") for _ in range(200)))  # the first tick's polls
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", count)
    assert len(reads) == 1
    await alerter.connection_ok("rivery")  # what it read still counts: the failing one is back
    assert await store.alerting.failing_connections() == []
