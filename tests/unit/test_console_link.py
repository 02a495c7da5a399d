"""A ``{run_id}`` in a connection's ``console_url`` becomes the run's id, so "Open in console" opens that run."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from bot.catalog.load import parse_catalog
from bot.service.clients import ClientPool
from bot.service.notify import Notifier
from bot.store.records import RunOrigin, RunRecord, StoredState

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)


def record(connection: str, job: dict[str, Any], provider_run_id: str | None) -> RunRecord:
    return RunRecord(
        id=7, pipeline=None, provider=job.pop("provider"), connection=connection, job=job, parameters={},
        provider_run_id=provider_run_id, state=StoredState.RUNNING, raw_status="", message="", warning="", tasks=(),
        extra={}, final=False, origin=RunOrigin.SLACK, started_by=None, channel=None, retry_of=None, attempt=1,
        created_at=T0, updated_at=T0, started_at=None, ended_at=None, next_poll_at=None, polls=0,
        unknown_since=None, last_error="", acknowledged_by=None, acknowledged_at=None,
    )


def notifier() -> Notifier:
    catalog = parse_catalog(
        {
            "connections": {
                "dk": {"provider": "datakitchen", "username": "${U}", "password": "${P}",
                       "console_url": "https://console.test/runs/{run_id}"},
                "dk-plain": {"provider": "datakitchen", "username": "${U}", "password": "${P}",
                             "console_url": "https://console.test/monitoring"},
            },
            "pipelines": {"p": {"connection": "dk", "kitchen": "k", "recipe": "r", "variation": "v"}},
        },
        {"U": "someone@example.com", "P": "a-long-demo-password"},
    )
    pool = ClientPool(catalog.connections)
    return Notifier(cast(Any, None), catalog, pool, cast(Any, None), lambda: T0)


def test_run_id_in_a_console_url_becomes_the_runs_id_quoted() -> None:
    job = {"provider": "datakitchen", "kitchen": "k", "recipe": "r", "variation": "v"}
    assert notifier().console_url(record("dk", dict(job), "ab12/3?x")) == "https://console.test/runs/ab12%2F3%3Fx"
    assert notifier().console_url(record("dk", dict(job), None)) == "https://console.test/runs/"  # not started yet


def test_a_console_url_without_the_placeholder_is_left_as_written() -> None:
    job = {"provider": "datakitchen", "kitchen": "k", "recipe": "r", "variation": "v"}
    assert notifier().console_url(record("dk-plain", dict(job), "ab12")) == "https://console.test/monitoring"
