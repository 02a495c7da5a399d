"""A connection answering on one replica while another claims its "cannot reach" alert (fifteenth pass, b).

``AlertStore.connection_ok`` read the health row, then cleared it, in one transaction but without a lock: a poll
failing at that moment (another replica, or another task of this process on a flaky connection) was claiming the
connection's alert. The row read showed no alert yet; the claim then committed; the clear went over it. Nothing
closed the alert: "Cannot reach" was posted after the connection had answered, stayed open for good (App Home,
the channel), and "answers again" never came (recovery's ``health_untold`` finds it open and drawn: nothing to do).
Seen on PostgreSQL (two engines, the row's lock) and on SQLite (a SELECT takes no lock in Python's sqlite3).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.catalog.load import parse_catalog
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.slack.reporter import SlackReporter
from bot.store import alerting as alerting_module
from bot.store import keys
from bot.store.alerting import Alert, AlertKind
from bot.store.engine import make_engine
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
    return Alerter(
        store,
        catalog,
        ClientPool.for_catalog(catalog),
        SlackReporter(store, lambda: NOW),
        lambda: NOW,
        down_after=timedelta(minutes=2),
    )


async def test_a_connection_answering_while_another_replica_claims_its_alert_closes_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))  # a second replica
    try:
        failing, answering = _alerter(store), _alerter(other)
        # the connection has been failing for three minutes (the polls of both replicas saw it)
        await store.alerting.connection_failed("rv", "connection refused", now=NOW - timedelta(minutes=3))
        read = alerting_module._alert
        claiming = asyncio.Event()

        async def slow_claim(conn: AsyncConnection, alert_id: int) -> Alert:
            if not claiming.is_set():  # the claim's transaction, its alert inserted, not committed yet
                claiming.set()
                await asyncio.sleep(0.5)
            return await read(conn, alert_id)

        monkeypatch.setattr(alerting_module, "_alert", slow_claim)

        async def answers() -> None:
            await claiming.wait()
            await answering.connection_ok("rv")  # a poll of the other replica answers meanwhile

        await asyncio.gather(failing.connection_failed("rv", "connection refused"), answers())
        monkeypatch.setattr(alerting_module, "_alert", read)
        assert await store.alerting.failing_connections() == []  # the connection answers
        assert await store.alerting.open_alerts() == [], "its 'cannot reach' alert open for good"
        [alert] = await store.alerting.alerts_between(NOW - timedelta(days=1), NOW + timedelta(days=1))
        assert alert.kind is AlertKind.UNREACHABLE and alert.recovered_at is not None
        async with store.engine.connect() as conn:
            [(key, text, blocks)] = (await conn.execute(select(cards.c.key, cards.c.text, cards.c.blocks))).all()
        assert key == keys.health_message("rv", alert.id)  # the connection's one message
        assert "answers again" in json.dumps([text, blocks]), "posted 'cannot reach' after the connection answered"
        assert await failing.health_untold() == 0 and await answering.health_untold() == 0
    finally:
        await other.close()


async def test_an_answer_read_while_the_connection_fails_again_and_is_claimed_leaves_no_alert_open_for_good(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same race from a healthy row: the answering replica still counts the connection failing (its copy is
    up to 30 s old), the row says healthy when its transaction begins, then the other replica's polls fail, write
    the row failing and claim the alert before the answer reads the row. Found flapping a connection with 400 polls
    at once on two replicas (PostgreSQL): a lock taken only on a failing row did not hold this one off."""
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))
    try:
        failing, answering = _alerter(store), _alerter(other)
        await store.alerting.connection_failed("rv", "connection refused", now=NOW - timedelta(minutes=3))
        await answering.connection_failed("rv", "connection refused")  # in its copy; no alert yet (down_after)
        await store.alerting.connection_ok("rv", now=NOW - timedelta(minutes=1))  # the other replica saw it answer
        read_row, read_alert = alerting_module._health_row, alerting_module._alert
        began, claiming = asyncio.Event(), asyncio.Event()

        async def row_of(conn: AsyncConnection, connection: str) -> RowMapping | None:
            if conn.engine.sync_engine is other.engine.sync_engine and not began.is_set():
                began.set()  # the answer's transaction has begun: the failure and its claim now, if they can
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(claiming.wait(), 1.0)
            return await read_row(conn, connection)

        async def slow_claim(conn: AsyncConnection, alert_id: int) -> Alert:
            if not claiming.is_set():
                claiming.set()
                await asyncio.sleep(0.5)
            return await read_alert(conn, alert_id)

        monkeypatch.setattr(alerting_module, "_health_row", row_of)
        monkeypatch.setattr(alerting_module, "_alert", slow_claim)

        async def fails_again() -> None:
            await began.wait()
            await store.alerting.connection_failed("rv", "connection refused", now=NOW - timedelta(minutes=3))
            await failing.connection_failed("rv", "connection refused")

        await asyncio.gather(answering.connection_ok("rv"), fails_again())
        monkeypatch.setattr(alerting_module, "_health_row", read_row)
        monkeypatch.setattr(alerting_module, "_alert", read_alert)
        # either order is right, but the store must agree with itself: an open alert is its failing connection's
        health = {h.connection: h.alert_id for h in await store.alerting.failing_connections()}
        opened = await store.alerting.open_alerts()
        assert [(a.connection, a.id) for a in opened] == list(health.items()), (opened, health)
        await failing.connection_ok("rv")  # and once it answers, nothing is left open
        assert await store.alerting.open_alerts() == [], "a 'cannot reach' alert open for good"
    finally:
        await other.close()


async def test_a_connections_first_failure_seen_by_many_polls_at_once_raises_out_of_none(store: Store) -> None:
    """The first failure a connection ever had (no health row yet) is seen by every poll of its runs at once, on
    both replicas: the row was read, found missing and inserted by each, all but one an ``IntegrityError`` raised out
    of the poll ("N polls failed" at ERROR, a traceback) on SQLite and PostgreSQL alike."""
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))
    try:
        replicas = [_alerter(store), _alerter(other)]
        for connection in ("rv", "rv2", "rv3"):
            calls = [replicas[i % 2].connection_failed(connection, "connection refused") for i in range(8)]
            raised = [r for r in await asyncio.gather(*calls, return_exceptions=True) if r is not None]
            assert raised == [], raised
        failing = await store.alerting.failing_connections()
        assert sorted(h.connection for h in failing) == ["rv", "rv2", "rv3"]
    finally:
        await other.close()
