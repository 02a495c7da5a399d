"""/healthz, /readyz and /metrics on PORT: the series a platform team scrapes, and readiness that
follows the database."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import text

from bot.store.engine import make_engine
from tests.postgres import POSTGRES_ADMIN_URL, create_postgres_database, drop_postgres_database
from tests.scenario.harness import world

SERIES = (
    "pipeline_bot_runs",
    "pipeline_bot_polls_total",
    "pipeline_bot_poll_lag_seconds",
    "pipeline_bot_provider_errors_total",
    "pipeline_bot_slack_calls_total",
    "pipeline_bot_slack_rate_limited_total",
    "pipeline_bot_outbox_pending",
    "pipeline_bot_alerts_total",
    "pipeline_bot_alert_messages_total",
)


async def test_metrics_expose_the_listed_series(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run orders")
        await w.card_saying("queued")
        w.advance(40)
        await w.card_saying("failed")
        await w.until(lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), what="the alert")
        assert w.runtime.http is not None
        async with httpx.AsyncClient(base_url=w.runtime.http.url) as client:
            body = (await client.get("/metrics")).text
            assert (await client.get("/healthz")).json() == {"status": "alive"}
    for series in SERIES:
        assert f"# TYPE {series} " in body, series
    samples = [line for line in body.splitlines() if not line.startswith("#")]
    assert any(line.startswith('pipeline_bot_runs{final="true",state="failed"} 1') for line in samples)
    assert any(line.startswith('pipeline_bot_polls_total{connection="rivery"}') for line in samples)
    assert any('method="chat.postMessage",outcome="ok"' in line for line in samples)
    assert any(line.startswith('pipeline_bot_alerts_total{outcome="new"} 1') for line in samples)


async def test_metrics_time_each_ack_and_each_poll(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert (await w.command("run leads-ods")).ok
        await w.card_saying("queued")
        await w.until(lambda: w.runtime.metrics.value("pipeline_bot_poll_delay_seconds_count") >= 1, what="a poll")
        assert w.runtime.http is not None
        async with httpx.AsyncClient(base_url=w.runtime.http.url) as client:
            body = (await client.get("/metrics")).text
    samples = dict(line.rsplit(" ", 1) for line in body.splitlines() if not line.startswith("#"))
    assert float(samples["pipeline_bot_slack_ack_seconds_count"]) == 1  # the command, acked over HTTP
    assert float(samples['pipeline_bot_slack_ack_seconds_bucket{le="+Inf"}']) == 1
    assert float(samples["pipeline_bot_poll_delay_seconds_count"]) >= 1


async def test_readyz_fails_while_the_database_is_away_and_recovers(tmp_path: Path) -> None:
    url = await create_postgres_database()
    name = url.rsplit("/", 1)[1]
    admin = make_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        async with world(tmp_path, database_url=url) as w:
            assert w.runtime.http is not None
            async with httpx.AsyncClient(base_url=w.runtime.http.url) as client:
                assert (await client.get("/readyz")).status_code == 200
                async with admin.connect() as conn:
                    await conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
                    await conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
                answer = await client.get("/readyz")
                assert answer.status_code == 503
                assert any(p.startswith("database") for p in answer.json()["problems"])
                async with admin.connect() as conn:
                    await conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
                await w.until(lambda: True)
                for _ in range(50):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                    await w.settle(0.1)
                assert (await client.get("/readyz")).status_code == 200
                assert (await client.get("/healthz")).status_code == 200
    finally:
        await admin.dispose()
        await drop_postgres_database(url)
