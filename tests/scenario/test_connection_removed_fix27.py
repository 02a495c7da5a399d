"""Session 27: a connection removed from the catalog while its "cannot reach" alert is open (the fifteenth pass (b)'s
low). Nothing polls it any more, so nothing ever said it answers: the alert stayed open for good, on App Home and in
the alert channel. At start (and with recovery's periodic job) such an alert is closed, saying why."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import yaml
from sqlalchemy import update

from bot.catalog.load import parse_catalog
from bot.runtime import Runtime
from bot.service.alerts import REMOVED_QUIET
from bot.store.tables import connection_health
from tests.scenario.harness import ENV, World, catalog_text, world
from tests.scenario.test_home import home_text, open_home


async def _restart_without_invision(w: World) -> None:
    """pipelines.yml edited (the InVision connection and its pipeline gone), the bot restarted on it."""
    await w.runtime.stop()
    raw = yaml.safe_load(catalog_text(w.emulators))
    del raw["connections"]["invision"]
    del raw["pipelines"]["budget"]
    w.runtime = Runtime(w.settings, parse_catalog(raw, ENV))
    await w.runtime.start()
    assert w.runtime.http is not None
    w.slack.app_url = f"{w.runtime.http.url}/slack/events"


async def _quiet_since(w: World, connection: str) -> None:
    """The connection last heard of (its call failing) longer than ``REMOVED_QUIET`` ago."""
    async with w.runtime.parts.store.engine.begin() as conn:
        await conn.execute(
            update(connection_health)
            .where(connection_health.c.connection == connection)
            .values(updated_at=w.runtime.parts.now() - REMOVED_QUIET - timedelta(seconds=1))
        )


async def test_a_connection_removed_while_it_could_not_be_reached_has_its_alert_closed_saying_so(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        alerter = w.runtime.parts.alerter
        await alerter.connection_failed("invision", "connection refused", at_once=True)
        await w.until(lambda: any("Cannot reach" in m.text for m in w.slack.messages("C0ALERTS")),
                      what="the connection's alert")
        [message] = [m for m in w.slack.messages("C0ALERTS") if "Cannot reach" in m.text]
        await open_home(w, "Cannot reach")

        # nobody polled it since (no replica has it any more) for REMOVED_QUIET (eighteenth pass (a))
        await _quiet_since(w, "invision")
        await _restart_without_invision(w)
        store = w.runtime.parts.store
        await w.until(lambda: "Cannot reach" not in w.slack.message("C0ALERTS", message.ts).text,
                      what="the alert's message rewritten")
        said = w.slack.message("C0ALERTS", message.ts).text
        assert "removed from the configuration" in said, said
        assert "answers again" not in said, said
        assert not await store.alerting.open_alerts()  # App Home lists none any more
        assert not await store.alerting.failing_connections()
        await w.slack.open_home("U0ALICE")
        await w.settle(1.0)
        assert "Cannot reach" not in home_text(w, "U0ALICE"), home_text(w, "U0ALICE")
        notices = [m.text for m in w.slack.messages("C0ALERTS") if m.ts != message.ts]
        assert not any("is back" in n for n in notices), notices
        assert any("removed from the configuration" in n for n in notices), notices

        # told once: recovery's next rounds, and another restart, add nothing
        await w.runtime.parts.alerter.health_untold()
        await w.restart()
        await w.settle(1.0)
        again = [m.text for m in w.slack.messages("C0ALERTS") if m.ts != message.ts]
        assert again == notices, json.dumps([again, notices])
