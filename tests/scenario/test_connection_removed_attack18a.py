"""Eighteenth pass (a): a connection in one replica's catalog and not the other's (a rolling deploy: the new
pipelines.yml on one replica, the old on the other). The replica without it closed its "cannot reach" alert as
"removed from the configuration" at every recovery round (30 s), though the other replica still polled it and saw it
fail: the alert channel read "removed", then "cannot reach" again after ``down_after``, then "removed", for as long
as the two ran side by side, and an outage of a connection just added read as its removal."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import yaml

from bot.catalog.load import parse_catalog
from bot.service.alerts import REMOVED_QUIET, Alerter
from tests.scenario.harness import ENV, catalog_text, world


async def test_a_connection_another_replica_still_polls_keeps_its_alert_until_nobody_hears_of_it(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        parts = w.runtime.parts
        await parts.alerter.connection_failed("invision", "connection refused", at_once=True)
        await w.until(lambda: any("Cannot reach" in m.text for m in w.slack.messages("C0ALERTS")),
                      what="the connection's alert")
        [message] = [m for m in w.slack.messages("C0ALERTS") if "Cannot reach" in m.text]

        raw = yaml.safe_load(catalog_text(w.emulators))
        del raw["connections"]["invision"]
        del raw["pipelines"]["budget"]
        # the other replica, started on the new pipelines.yml, same database and Slack
        at = [parts.now()]  # the other replica's clock, moved on by hand
        other = Alerter(parts.store, parse_catalog(raw, ENV), parts.pool, parts.alerter.reporter, lambda: at[0])
        await other.health_untold()
        await w.settle(0.5)
        said = w.slack.message("C0ALERTS", message.ts).text
        assert "removed from the configuration" not in said, said  # this replica still polls it: failing just now
        assert [h.connection for h in await parts.store.alerting.failing_connections()] == ["invision"]

        # the old replica's poll fails again a while later: still heard of, still not removed
        at[0] += REMOVED_QUIET / 2
        await parts.store.alerting.connection_failed("invision", "connection refused", now=at[0])
        at[0] += REMOVED_QUIET / 2 + timedelta(seconds=1)
        await other.health_untold()
        await w.settle(0.5)
        assert "removed from the configuration" not in w.slack.message("C0ALERTS", message.ts).text

        # the old replica gone: nobody has heard of the connection for REMOVED_QUIET, so its alert is closed
        at[0] += REMOVED_QUIET / 2
        await other.health_untold()
        await w.until(lambda: "removed from the configuration" in w.slack.message("C0ALERTS", message.ts).text,
                      what="the alert closed as removed")
        assert not await parts.store.alerting.failing_connections()
