"""How a tick's runs are grouped into batched status calls (``plan_batches``), with the clients of a real catalog."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from bot.catalog.load import parse_catalog
from bot.service.clients import ClientPool
from bot.store.records import RunOrigin, RunRecord, StoredState
from bot.tracking.batches import batchable, plan_batches

CATALOG = """
defaults: {channel: C0ALERTS}
connections:
  dk: {provider: datakitchen, base_url: "http://127.0.0.1:1", username: u, password: "${DK_PASSWORD}"}
  tl: {provider: tailer, base_url: "http://127.0.0.1:1", token: "${TAILER_JWT}"}
  rv: {provider: rivery, base_url: "http://127.0.0.1:1/api", api_token: "${RIVERY_TOKEN}"}
pipelines:
  sales: {connection: dk, kitchen: production, recipe: sales, variation: daily}
  stock: {connection: dk, kitchen: production, recipe: stock, variation: daily}
  iowa: {connection: tl, account: "000099", environment: DEV, configuration_type: table-to-table,
         configuration_id: "000099_iowa"}
  leads: {connection: rv, river_id: "5e8e1eb46b028e37b73f44f0"}
"""
ENV = {"DK_PASSWORD": "p4ssword-value", "TAILER_JWT": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ0ZXN0In0.sig", "RIVERY_TOKEN": "t0ken-value"}
NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DK = {"kitchen": "production", "recipe": "sales", "variation": "daily"}
DK_OTHER_RECIPE = {"kitchen": "production", "recipe": "stock", "variation": "daily"}
DK_OTHER_KITCHEN = {"kitchen": "staging", "recipe": "sales", "variation": "daily"}
TL = {"account": "000099", "environment": "DEV", "configuration_type": "table-to-table", "configuration_id": "000099_iowa"}
RV = {"river_id": "5e8e1eb46b028e37b73f44f0"}


@pytest.fixture
async def pool() -> AsyncIterator[ClientPool]:
    the_pool = ClientPool.for_catalog(parse_catalog(yaml.safe_load(CATALOG), ENV))
    yield the_pool
    await the_pool.aclose()


def run(run_id: int, connection: str, provider: str, job: Mapping[str, Any], provider_run_id: str | None = "r"
        ) -> RunRecord:
    return RunRecord(
        id=run_id, pipeline=None, provider=provider, connection=connection, job=job, parameters={},
        provider_run_id=None if provider_run_id is None else f"{provider_run_id}{run_id}",
        state=StoredState.RUNNING, raw_status="", message="", warning="", tasks=(), extra={}, final=False,
        origin=RunOrigin.WATCH, started_by=None, channel=None, retry_of=None, attempt=1, created_at=NOW,
        updated_at=NOW, started_at=NOW, ended_at=None, next_poll_at=NOW, polls=0, unknown_since=None, last_error="",
        acknowledged_by=None, acknowledged_at=None,
    )


def ids(runs: list[RunRecord]) -> set[int]:
    return {r.id for r in runs}


async def test_a_kitchens_runs_across_recipes_make_one_batch_and_a_tailer_configuration_another(
    pool: ClientPool,
) -> None:
    due = [run(1, "dk", "datakitchen", DK), run(2, "dk", "datakitchen", DK_OTHER_RECIPE),
           run(3, "tl", "tailer", TL), run(4, "rv", "rivery", RV), run(5, "dk", "datakitchen", DK_OTHER_KITCHEN)]
    early = [run(6, "tl", "tailer", TL), run(7, "dk", "datakitchen", DK_OTHER_KITCHEN)]
    plan = plan_batches(pool, due, early)
    assert sorted(ids(b.runs) for b in plan.batches) == [{1, 2}, {3, 6}, {5, 7}]
    assert ids(plan.single) == {4}  # Rivery's legacy API has no list: one call per run
    assert plan.unused == []
    batch = next(b for b in plan.batches if ids(b.runs) == {1, 2})
    assert batch.connection == "dk" and [i for _, i in batch.items] == ["r1", "r2"]


async def test_early_runs_without_a_due_run_in_their_scope_are_handed_back(pool: ClientPool) -> None:
    plan = plan_batches(pool, [run(1, "dk", "datakitchen", DK)], [run(2, "tl", "tailer", TL), run(3, "tl", "tailer", TL)])
    assert ids(plan.single) == {1}  # alone in its scope: its own status call is as cheap, and exact
    assert plan.batches == []
    assert ids(plan.unused) == {2, 3}


async def test_runs_a_batch_cannot_ask_about_are_polled_on_their_own(pool: ClientPool) -> None:
    due = [
        run(1, "gone", "datakitchen", DK),  # a connection no longer in the catalog: its poll says so, as before
        run(2, "dk", "datakitchen", {"kitchen": "production"}),  # a job the catalog no longer validates
        run(3, "dk", "datakitchen", DK, provider_run_id=None),  # its trigger never answered: recovery's business
        run(4, "dk", "datakitchen", DK),  # its last poll is still under way
        run(5, "dk", "datakitchen", DK),
    ]
    assert not batchable(pool, "gone")
    plan = plan_batches(pool, due, [run(6, "dk", "datakitchen", DK, provider_run_id=None)], busy={4})
    assert ids(plan.single) == {1, 2, 3, 4, 5}
    assert ids(plan.unused) == {6}
