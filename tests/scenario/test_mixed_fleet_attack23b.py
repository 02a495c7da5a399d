"""The end of a run whose pipeline this replica's catalog lacks is left for 2 minutes to a replica that has it (on
PostgreSQL). A run started from Slack has a card, drawn from the run alone: left untold with the rest, it said
"running" for those 2 minutes (in a mixed fleet until the other replica's recovery, 10 to 40 s; a single replica
whose catalog lost the pipeline the whole 2 minutes), and a person's Cancel of a run waiting its turn seemed to do
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.postgres import create_postgres_database, drop_postgres_database
from tests.scenario.harness import world


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
