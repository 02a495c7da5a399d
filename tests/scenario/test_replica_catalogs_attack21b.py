"""Two replicas on one PostgreSQL database whose catalogs differ (a rolling deploy): one lacks the connection of a
run the other follows. The one lacking it took its turns at the run's polls, each "status unknown", and redrew the
card in its own view (the provider's key, the job's raw fields, no Cancel); the other's next poll drew it back: an
edit of the card at every poll for as long as the run ran, its Cancel coming and going."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import yaml

from bot.catalog.load import parse_catalog
from bot.emulators._core import Outcome
from bot.runtime import Runtime
from tests.postgres import create_postgres_database, drop_postgres_database
from tests.scenario.harness import DK_JOB, ENV, catalog_text, world


def _without_rivery(raw: dict[str, Any]) -> None:
    del raw["connections"]["rivery"]
    del raw["pipelines"]["leads-ods"]
    del raw["pipelines"]["orders"]


async def test_a_replica_lacking_the_connection_leaves_the_card_to_the_one_that_has_it(tmp_path: Path) -> None:
    url = await create_postgres_database()
    try:
        # "status unknown" said after 30 s (not the world's 1 s): on a loaded machine the replica with rivery may not
        # poll within a second, and the card would then rightly say so
        async with world(tmp_path, database_url=url, unknown_after_seconds=30.0) as w:
            raw = yaml.safe_load(catalog_text(w.emulators))
            _without_rivery(raw)
            other = Runtime(w.settings, parse_catalog(raw, ENV))
            await other.start()
            try:
                await w.command("run leads-ods")
                await w.card_saying("leads-ods is queued")
                w.advance(6)
                await w.card_saying("leads-ods is running")
                [card] = w.cards()
                store = other.store
                missed = 0  # polls the replica lacking rivery took: "status unknown"
                for _ in range(200):  # about 20 polls, shared by the two replicas
                    run = await store.runs.get(1)
                    missed += bool(run and run.last_error and "no connection named rivery" in run.last_error)
                    await asyncio.sleep(0.02)
                assert missed, "the replica lacking rivery never took a poll"
                w.advance(40)
                await w.card_saying("leads-ods succeeded")
                drawn = [json.dumps(e.blocks) for e in card.edits]
                assert not [d for d in drawn if "river_id=" in d], "a card drawn by the replica lacking rivery"
                assert len(card.edits) <= 3, [e.text for e in card.edits]  # running, succeeded (and its alert link)
            finally:
                await other.stop()
    finally:
        await drop_postgres_database(url)


def _without_datakitchen(raw: dict[str, Any]) -> None:
    del raw["connections"]["datakitchen"]
    del raw["pipelines"]["sales-dashboard"]


async def test_a_replica_lacking_a_watched_pipeline_does_not_take_its_watch_turns(tmp_path: Path) -> None:
    """The watch's turn is one per interval across the fleet, taken by whichever replica's job comes first in it:
    always the same one (their jobs keep their phases). A replica whose catalog lacked a watched pipeline took every
    turn, and nobody listed that pipeline's runs: its failures outside Slack were never found."""
    url = await create_postgres_database()
    try:
        async with world(tmp_path, database_url=url, watch_interval_seconds=3.0) as w:
            w.advance(120)
            raw = yaml.safe_load(catalog_text(w.emulators))
            _without_datakitchen(raw)
            other = Runtime(w.settings, parse_catalog(raw, ENV))
            await other.start()
            try:
                # both scheduled turns driven by hand, the replica lacking sales-dashboard first in each interval
                for bot in (other, w.runtime):
                    bot.parts.scheduler.pause_job("watch")
                lacking, having = (b.parts.scheduler.get_job("watch").func for b in (other, w.runtime))
                await w.settle(1.0)  # a turn each had at its start is over
                w.emulators["datakitchen"].external_run(DK_JOB, {}, Outcome(
                    result="fail", queued_s=0, running_s=1, message="Node load failed", failed_tasks=("load",)))
                w.advance(5)
                for _ in range(8):  # about three intervals
                    await lacking()
                    await having()
                    await asyncio.sleep(0.5)
                await w.until(lambda: any("sales-dashboard" in m.text for m in w.slack.messages("C0ALERTS")), 5,
                              what="the external failure found and alerted")
            finally:
                await other.stop()
    finally:
        await drop_postgres_database(url)


async def test_a_replica_lacking_the_connection_leaves_a_waiting_retry_to_the_one_that_has_it(tmp_path: Path) -> None:
    """A retry waiting its backoff was claimed by whichever replica ticked first once it was due: the one lacking its
    connection ended it "the retry did not start: There is no connection named rivery …", the attempt lost and the
    failure alerted, though the other replica could start it."""

    def retried(raw: dict[str, Any]) -> None:
        raw["pipelines"]["orders"]["retry"] = {"attempts": 2, "backoff": "2s"}

    url = await create_postgres_database()
    try:
        async with world(tmp_path, database_url=url, catalog_edit=retried) as w:
            raw = yaml.safe_load(catalog_text(w.emulators))
            _without_rivery(raw)
            other = Runtime(w.settings, parse_catalog(raw, ENV))
            await other.start()
            try:
                w.runtime.parts.scheduler.pause_job("retries")  # the replica with rivery ticks late: the other first
                await w.command("run orders")
                await w.card_saying("orders is queued")
                w.advance(40)  # it fails: a retry waits 2 s
                store = w.runtime.store
                for _ in range(200):
                    if (retry := await store.runs.get(2)) is not None:
                        break
                    await asyncio.sleep(0.05)
                assert retry is not None and retry.retry_of == 1
                await asyncio.sleep(3.5)  # due, and the replica lacking rivery has ticked some 60 times
                retry = await store.runs.get(2)
                assert retry is not None
                assert not retry.final, retry.message
                w.runtime.parts.scheduler.resume_job("retries")
                for _ in range(200):
                    retry = await store.runs.get(2)
                    if retry is not None and retry.provider_run_id is not None:
                        break
                    await asyncio.sleep(0.05)
                assert retry is not None and retry.provider_run_id is not None, retry
                assert len(w.emulators["rivery"].state.requests_to("trigger")) == 2
            finally:
                await other.stop()
    finally:
        await drop_postgres_database(url)
