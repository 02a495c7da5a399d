"""Nineteenth pass: a run whose connection the catalog has no more (a deploy renamed or removed it while the run
went on). It was polled every 5 s, each poll "polling run 1 failed" at ERROR with a traceback, for ever, and its
card said "queued" for ever: nobody was told the bot could not follow it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from bot.catalog.load import parse_catalog
from bot.runtime import Runtime
from tests.scenario.harness import ENV, catalog_text, world


async def test_a_run_whose_connection_left_the_catalog_says_so_on_its_card(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with world(tmp_path) as w:
        await w.command("run budget")
        await w.card_saying("budget is queued")
        await w.runtime.stop()
        raw = yaml.safe_load(catalog_text(w.emulators))
        del raw["connections"]["invision"]  # the deploy: the connection and its pipeline gone
        del raw["pipelines"]["budget"]
        w.runtime = Runtime(w.settings, parse_catalog(raw, ENV))
        caplog.set_level(logging.INFO)
        await w.runtime.start()
        assert w.runtime.http is not None
        w.slack.app_url = f"{w.runtime.http.url}/slack/events"
        for _ in range(10):
            w.advance(30)
            await w.settle(0.2)
        card = await w.card_saying("is no longer in the bot's catalog")  # before: "queued", nothing else, for ever
        assert "its connection *invision*" in str(card.blocks)
        assert "is not answering" not in str(card.blocks)  # nothing was asked of InVision
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors  # before: "polling run 1 failed" with a traceback at every poll
        assert not [a for a in await w.runtime.parts.store.alerting.open_alerts() if a.connection == "invision"]
