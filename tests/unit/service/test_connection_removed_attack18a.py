"""Eighteenth pass (a): a connection in one replica's catalog and not in the other's, each replica with its own
engine on one database (SQLite file, PostgreSQL). The replica without it closes its "cannot reach" alert as removed
only once nobody has heard of it for ``REMOVED_QUIET``; before, at every recovery round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from bot.catalog.load import parse_catalog
from bot.service.alerts import REMOVED_QUIET, Alerter
from bot.service.clients import ClientPool
from bot.slack.reporter import SlackReporter
from bot.store.engine import make_engine
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CATALOG = """
defaults: {channel: C0ALERTS, owners: [U0BOB]}
connections:
  rv: {provider: rivery, api: v1, base_url: "http://127.0.0.1:1", account_id: a, environment_id: e, api_token: "${TOKEN}"}
  rv2: {provider: rivery, api: v1, base_url: "http://127.0.0.1:1", account_id: a, environment_id: e, api_token: "${TOKEN}"}
pipelines:
  orders: {connection: rv, river_id: r1}
"""


def _alerter(store: Store, clock: list[datetime], *, without: str | None = None) -> Alerter:
    raw = yaml.safe_load(CATALOG)
    if without is not None:
        del raw["connections"][without]
    catalog = parse_catalog(raw, {"TOKEN": "t0ken-value"})
    return Alerter(store, catalog, ClientPool.for_catalog(catalog), SlackReporter(store, lambda: clock[0]),
                   lambda: clock[0], down_after=timedelta(0))


async def test_a_connection_the_other_replica_still_polls_keeps_its_alert(store: Store) -> None:
    clock = [NOW]
    other_store = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))
    try:
        old = _alerter(store, clock)  # the replica on the old pipelines.yml: it has rv2
        new = _alerter(other_store, clock, without="rv2")  # the one on the new pipelines.yml
        await old.connection_failed("rv2", "connection refused")
        [alert] = await store.alerting.open_alerts()
        for _ in range(3):  # recovery rounds while the old replica still polls rv2, every 5 minutes at most
            clock[0] += timedelta(minutes=5)
            await old.connection_failed("rv2", "connection refused")
            await new.health_untold()
            assert [a.id for a in await store.alerting.open_alerts()] == [alert.id]  # before: closed, "removed"
        clock[0] += REMOVED_QUIET + timedelta(seconds=1)  # the old replica gone: nobody hears of rv2 any more
        await new.health_untold()
        assert not await store.alerting.open_alerts()
        assert not await store.alerting.failing_connections()
    finally:
        await other_store.close()
