"""The end of a run whose pipeline this replica's catalog lacks is left for 2 minutes to a replica that has it (on
PostgreSQL). A run started from Slack has a card, drawn from the run alone: left untold with the rest, it said
"running" for those 2 minutes (in a mixed fleet until the other replica's recovery, 10 to 40 s; a single replica
whose catalog lost the pipeline the whole 2 minutes), and a person's Cancel of a run waiting its turn seemed to do
nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bot.catalog.load import parse_catalog
from bot.models import RunState, RunStatus
from bot.runtime import Runtime
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store
from tests.postgres import create_postgres_database, drop_postgres_database
from tests.scenario.harness import ENV, World, catalog_text, world


def _without_orders(raw: dict[str, Any]) -> None:
    del raw["pipelines"]["orders"]


async def test_a_slack_runs_card_shows_its_failure_at_once_where_its_pipeline_left_the_catalog(tmp_path: Path) -> None:
    url = await create_postgres_database()
    try:
        async with world(tmp_path, database_url=url) as w:
            await w.command("run orders")
            await w.card_saying("orders is queued")
            w.advance(6)
            await w.card_saying("orders is running")
            await w.restart(_without_orders)  # a deploy removing the pipeline, its connection kept
            w.clock.advance(31)
            await w.card_saying("orders failed", timeout=15)
            # the rest (its alert, details, retry by policy) stays left to a replica that has the pipeline
            run = (await w.runtime.parts.store.runs.recent("orders", 1))[0]
            assert run.notified_state != run.state, run
    finally:
        await drop_postgres_database(url)


def _without_budget(raw: dict[str, Any]) -> None:
    del raw["pipelines"]["budget"]


async def _failed_run(store: Store, pipeline: str, provider: str, connection: str) -> RunRecord:
    made = await store.runs.create(NewRun(provider=provider, connection=connection, job={}, parameters={},
                                          origin=RunOrigin.SLACK, pipeline=pipeline, started_by="U0ALICE"),
                                   now=datetime.now(UTC), next_poll_at=None)
    status = RunStatus(f"{pipeline}-1", RunState.FAILED, "F", message="boom")
    await store.starts.record_triggered(made.id, f"{pipeline}-1", now=datetime.now(UTC), next_poll_at=datetime.now(UTC))
    change = await store.runs.record_status(made.id, status, now=datetime.now(UTC), next_poll_at=None)
    assert change is not None
    return change.run


async def test_replicas_lacking_one_pipeline_each_announce_the_alerts_they_have_without_waiting(
    tmp_path: Path,
) -> None:
    """A deploy adding `orders` and removing `budget`: the old replica lacks one, the new one the other. Each held
    its whole flush while the other's alert was younger than 2 minutes: neither announced anything (nor any other
    pipeline's alert in those channels), as long as new episodes of such pipelines kept coming."""
    url = await create_postgres_database()
    try:
        async with world(tmp_path, database_url=url, catalog_edit=_without_budget) as w:
            other = Runtime(w.settings, parse_catalog(_catalog(w, _without_orders), ENV))
            await other.start()
            try:
                store = w.runtime.parts.store
                orders = await _failed_run(store, "orders", "rivery", "rivery")
                budget = await _failed_run(store, "budget", "invision", "invision")
                assert await w.runtime.parts.alerter.on_failure(orders, card_channel="C0GENERAL") is not None
                assert await other.parts.alerter.on_failure(budget, card_channel="C0GENERAL") is not None
                await w.until(lambda: len(_alerts(w)) == 2, 15, what=lambda: f"both alerts: {_alerts(w)}")
                told = " ".join(_alerts(w))
                assert "U0BOB" in told  # orders' owners: announced by the replica that has it
            finally:
                await other.stop()
    finally:
        await drop_postgres_database(url)


def _catalog(w: World, edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(catalog_text(w.emulators))
    edit(raw)
    return raw


def _alerts(w: World) -> list[str]:
    return [m.text + json.dumps(m.blocks) for m in w.slack.messages("C0ALERTS") if not m.thread_ts
            and ("orders" in m.text or "budget" in m.text)]
