"""Nineteenth pass: the replica without a connection closes its "cannot reach" alert as removed only once nobody has
heard of it for three of the polls' longest waits after an error, never less than ``REMOVED_QUIET``. With
``POLL_INTERVAL_MAX_SECONDS`` of 30 minutes the other replica, on the old pipelines.yml, polls the failing connection
every 30 minutes: the fixed 15 closed it as removed between two polls ("removed", then "cannot reach" again)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml

from bot.catalog.load import parse_catalog
from bot.config import Settings
from bot.ops.redact import Redactor
from bot.runtime import build
from bot.service.alerts import REMOVED_QUIET, Alerter
from bot.service.clients import ClientPool
from bot.slack.reporter import SlackReporter
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


async def test_a_connection_polled_every_30_minutes_by_the_other_replica_keeps_its_alert(store: Store) -> None:
    clock = [NOW]
    raw = yaml.safe_load(CATALOG)
    old_catalog = parse_catalog(raw, {"TOKEN": "t0ken-value"})
    del raw["connections"]["rv2"]
    new_catalog = parse_catalog(raw, {"TOKEN": "t0ken-value"})
    settings = Settings(
        _env_file=None,
        slack_bot_token="xoxb-1-attack19",
        slack_signing_secret="s" * 32,
        slack_api_url="http://127.0.0.1:1/api/",
        database_url=store.engine.url.render_as_string(hide_password=False),
        poll_interval_max_seconds=1800,
    )
    # the replica on the new pipelines.yml, as the runtime wires it; the old one's failures straight to the store
    new = await build(settings, new_catalog, owner="new", now=lambda: clock[0], secrets=Redactor())
    old = Alerter(store, old_catalog, ClientPool.for_catalog(old_catalog), SlackReporter(store, lambda: clock[0]),
                  lambda: clock[0], down_after=timedelta(0))
    try:
        gap = new.poller.intervals.error_max
        assert gap == timedelta(minutes=30)
        await old.connection_failed("rv2", "connection refused")
        [alert] = await store.alerting.open_alerts()
        for _ in range(3):  # the old replica's polls of its runs of rv2, 30 minutes apart after a long outage
            clock[0] += gap - timedelta(minutes=1)
            await new.alerter.health_untold()
            assert [a.id for a in await store.alerting.open_alerts()] == [alert.id]  # before: closed, "removed"
            clock[0] += timedelta(minutes=1)
            await old.connection_failed("rv2", "connection refused")
        clock[0] += 3 * gap + timedelta(seconds=1)  # the old replica gone: nobody hears of rv2 any more
        assert 3 * gap > REMOVED_QUIET
        await new.alerter.health_untold()
        assert not await store.alerting.open_alerts()
    finally:
        await new.store.close()
