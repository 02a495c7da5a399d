"""Two replicas on one PostgreSQL database, one whose catalog lacks a watched pipeline (its connection kept: a rolling
deploy removing it). The watched run's failure, polled by the replica lacking the pipeline, got that replica's
fallback: its card where its watch alerted, no owners named, no page; the run marked told, so the replica that has
the pipeline never alerted it."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.catalog.load import parse_catalog
from bot.emulators._core import Outcome
from bot.runtime import Runtime
from bot.service import alerts
from tests.postgres import create_postgres_database, drop_postgres_database
from tests.scenario.harness import DK_JOB, ENV, World, catalog_text, world


def _without_sales_dashboard(raw: dict[str, Any]) -> None:
    del raw["pipelines"]["sales-dashboard"]


async def _watched_run_in_flight(w: World) -> int:
    w.advance(120)
    await w.settle(0.5)  # watching begins
    w.emulators["datakitchen"].external_run(DK_JOB, {}, Outcome(
        result="fail", queued_s=1, running_s=60, message="Node late failed", failed_tasks=("late",)))
    w.advance(5)
    for _ in range(200):
        if found := await w.runtime.store.runs.in_flight():
            return found[0].id
        await w.settle(0.05)
    raise AssertionError("the watched run was never found")


async def _failed(w: World, run_id: int) -> None:
    for _ in range(200):
        run = await w.runtime.store.runs.get(run_id)
        if run is not None and run.state == "failed":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the run's failure was never recorded")


def _told(w: World) -> list[str]:
    """What #data-alerts shows of sales-dashboard: each top-level message's text and blocks."""
    return [m.text + json.dumps(m.blocks) for m in w.slack.messages("C0ALERTS")
            if "sales-dashboard" in m.text and not m.thread_ts]


async def test_a_failure_polled_by_the_replica_lacking_its_pipeline_is_alerted_by_the_one_that_has_it(
    tmp_path: Path,
) -> None:
    url = await create_postgres_database()
    try:
        async with world(tmp_path, database_url=url) as w:
            run_id = await _watched_run_in_flight(w)
            raw = yaml.safe_load(catalog_text(w.emulators))
            _without_sales_dashboard(raw)
            other = Runtime(w.settings, parse_catalog(raw, ENV))
            await other.start()
            try:
                # the replica with the pipeline takes no poll (nor lists it): the one lacking it sees the failure
                for job in ("poll", "watch", "recover"):
                    w.runtime.parts.scheduler.pause_job(job)
                w.advance(70)
                await _failed(w, run_id)
                await w.settle(1.0)
                assert not _told(w), "told by the replica lacking the pipeline at once: " + repr(_told(w))
                # the replica that has it finds the failure untold (its periodic recovery, done by hand here)
                await w.runtime.parts.recovery.recover_unnotified(timedelta(0))
                await w.until(lambda: bool(_told(w)), 10, what="the failure alerted")
                [alert] = _told(w)
                assert "S0DATAENG" in alert, alert  # its owners, which only a catalog with the pipeline names
            finally:
                await other.stop()
    finally:
        await drop_postgres_database(url)


async def test_a_failure_no_replica_can_alert_is_still_told(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One replica on PostgreSQL whose catalog lost the pipeline: nobody else will tell it, so it does, once it
    left the others their time (the twenty-first pass (b)'s card where its watch alerted)."""
    monkeypatch.setattr(alerts, "OTHERS_AFTER", timedelta(seconds=1))
    monkeypatch.setattr("bot.service.outcomes.OTHERS_AFTER", timedelta(seconds=1))
    url = await create_postgres_database()
    try:
        async with world(tmp_path, database_url=url) as w:
            run_id = await _watched_run_in_flight(w)
            await w.restart(_without_sales_dashboard)
            w.advance(70)
            await _failed(w, run_id)
            await asyncio.sleep(1.2)
            await w.runtime.parts.recovery.recover_unnotified(timedelta(0))
            await w.until(lambda: any("sales-dashboard failed" in t for t in _told(w)), 10,
                          what="the failure told where its watch alerted")
    finally:
        await drop_postgres_database(url)
