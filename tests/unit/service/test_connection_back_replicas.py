"""A connection's "back" notice when the replica that saw it fail is gone (fourteenth independent pass).

Each process keeps the connections it knows are failing in memory, so a healthy poll costs no write. That copy was
read once, at the first poll: a replica that had read it before another replica saw the connection fail (and posted
"Cannot reach") never learnt of it. When that other replica died (or its share of the polls moved to this one), the
connection answered again here and nothing was said: the "cannot reach" alert stayed open for good, its message
never said "answers again", and the connection's health row stayed failing. The copy is now read again every
``failing_refresh``; and a write that fails (the database away) leaves the connection in the copy, to be told later.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import yaml
from sqlalchemy import select

from bot.catalog.load import parse_catalog
from bot.service import alerts as alerts_module
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.slack.reporter import SlackReporter
from bot.store import keys
from bot.store.alerting import AlertKind, AlertState
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


def _alerter(store: Store) -> Alerter:
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "t0ken-value"})
    alerter = Alerter(store, catalog, ClientPool.for_catalog(catalog), SlackReporter(store, lambda: NOW),
                      lambda: NOW, down_after=timedelta(0))
    assert getattr(alerter, "failing_refresh", 30.0) == 30.0  # the default: the failing connections read again
    return alerter


async def _health_message(store: Store, alert_id: int) -> str:
    async with store.engine.connect() as conn:
        row = (await conn.execute(
            select(cards.c.text, cards.c.blocks).where(cards.c.key == keys.health_message("rv", alert_id))
        )).first()
    assert row is not None
    return json.dumps([row.text, row.blocks])


async def test_a_connection_back_on_a_replica_that_never_saw_it_fail_is_told_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(alerts_module, "time", SimpleNamespace(monotonic=lambda: clock[0]), raising=False)
    first, second = _alerter(store), _alerter(store)  # two replicas on one database
    await second.connection_ok("rv")  # its polls answer: it reads the failing connections (none)
    await first.connection_failed("rv", "connection refused")  # the other replica's polls fail: "Cannot reach"
    [alert] = await store.alerting.open_alerts()
    assert alert.kind is AlertKind.UNREACHABLE
    assert "Cannot reach" in await _health_message(store, alert.id)
    # the first replica dies; the connection answers the second one's polls
    clock[0] += 31
    await second.connection_ok("rv")
    assert await store.alerting.open_alerts() == [], "the cannot-reach alert stays open for good"
    closed = await store.alerting.get(alert.id)
    assert closed is not None and closed.state is AlertState.RECOVERED
    assert await store.alerting.failing_connections() == []
    assert "answers again" in await _health_message(store, alert.id)


async def test_a_back_not_written_for_the_database_away_is_told_at_the_next_answer(store: Store) -> None:
    alerter = _alerter(store)
    await alerter.connection_failed("rv", "connection refused")
    [alert] = await store.alerting.open_alerts()
    write = store.alerting.connection_ok

    async def away(connection: str, *, now: datetime) -> None:
        raise ConnectionRefusedError("the database is away")

    store.alerting.connection_ok = away  # type: ignore[method-assign]
    with pytest.raises(ConnectionRefusedError):
        await alerter.connection_ok("rv")
    store.alerting.connection_ok = write  # type: ignore[method-assign]
    await alerter.connection_ok("rv")  # the next poll that answers
    assert await store.alerting.open_alerts() == [], "the connection is back but still said unreachable"
    assert "answers again" in await _health_message(store, alert.id)


async def test_a_stop_between_the_connection_back_and_its_message_leaves_nothing_untold(store: Store) -> None:
    """The health row was cleared in one transaction and the alert closed in the next: a stop between them left the
    alert open for good (the connection no longer failing, nothing would close it). Now one transaction; and the
    "answers again" a stop kept from being written is written by recovery (``Alerter.health_untold``)."""
    alerter = _alerter(store)
    await alerter.connection_failed("rv", "connection refused")
    [alert] = await store.alerting.open_alerts()
    write = store.alerting.connection_ok

    async def then_stopped(connection: str, *, now: datetime) -> object:
        await write(connection, now=now)
        raise asyncio.CancelledError  # the process stops right after the health row's write

    store.alerting.connection_ok = then_stopped  # type: ignore[method-assign,assignment]
    with pytest.raises(asyncio.CancelledError):
        await alerter.connection_ok("rv")
    store.alerting.connection_ok = write  # type: ignore[method-assign]
    assert await store.alerting.open_alerts() == [], "the connection is back, its alert open for good"
    restarted = _alerter(store)
    await restarted.connection_ok("rv")  # nothing failing any more: nothing to do here
    assert "Cannot reach" in await _health_message(store, alert.id)
    assert await restarted.health_untold() == 1  # recovery, at start and periodically
    assert "answers again" in await _health_message(store, alert.id)
    assert await restarted.health_untold() == 0  # told once


async def test_a_stop_between_claiming_the_cannot_reach_alert_and_drawing_it_is_announced_by_recovery(
    store: Store,
) -> None:
    """The alert claimed (the health row points at it), then the stop before its message was written: the connection,
    still failing, never claims another, so the outage was never announced (only "answers again", once back)."""
    alerter = _alerter(store)
    draw = alerter.reporter.connection_down

    async def stopped(key: str, alert: object, display_name: str) -> None:
        raise asyncio.CancelledError  # the process stops right after the claim's commit

    alerter.reporter.connection_down = stopped  # type: ignore[method-assign]
    with pytest.raises(asyncio.CancelledError):
        await alerter.connection_failed("rv", "connection refused")
    alerter.reporter.connection_down = draw  # type: ignore[method-assign]
    [alert] = await store.alerting.open_alerts()
    restarted = _alerter(store)
    await restarted.connection_failed("rv", "connection refused")  # still failing: the alert is claimed already
    async with store.engine.connect() as conn:
        drawn = (await conn.execute(select(cards.c.id).where(cards.c.key == keys.health_message("rv", alert.id))))
        assert drawn.first() is None  # the outage announced nowhere
    assert await restarted.health_untold() == 1
    assert "Cannot reach" in await _health_message(store, alert.id)
    assert await restarted.health_untold() == 0
