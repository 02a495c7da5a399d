"""What answers at the Slack API when Slack does not (seventeenth independent pass, b).

A gateway in front of the Slack API whose JSON ``error`` is no Slack code but its own text, showing the request
(``{"ok": false, "error": "denied for POST … Authorization: Bearer xoxb-…"}``): the delivery loop kept that text as
the reason of a message or card in clear (the bot token in the database) and made it a label of
``pipeline_bot_slack_calls_total`` (the token in /metrics, a series per request). And an answer in plain text, HTML
or a JSON array: ``check --online`` said "unexpected AttributeError: 'str' object has no attribute 'get'" and the
start-up "cannot start: AttributeError…", an HTML 502 "Slack answered None: check SLACK_BOT_TOKEN". Run with a real
local server as the gateway, the real Slack SDK, the real ``Deliverer`` on a SQLite file, the real checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.catalog.load import parse_catalog
from bot.checks.names import catalog_with_ids
from bot.checks.online import online_checks
from bot.cli import main
from bot.delivery.sender import Deliverer
from bot.errors import StartupError
from bot.ops.metrics import Metrics
from bot.ops.redact import PROCESS, Redactor
from bot.store.records import NewRun, OutboxKind, RunOrigin
from bot.store.store import Store
from bot.store.tables import cards, outbox
from tests.local_servers import web_server

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TOKEN = "xoxb-1234567890-gateway-T0ken"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def gateway(handler: Handler) -> AsyncIterator[str]:
    async with web_server(handler) as url:
        yield f"{url}/api/"


async def echoing_error(request: web.Request) -> web.StreamResponse:
    """A gateway's 403 whose ``error`` is its own text, quoting the request's headers."""
    shown = "\r\n".join(f"{k}: {v}" for k, v in request.headers.items())
    return web.json_response({"ok": False, "error": f"denied for {request.method} {request.path}\r\n{shown}"},
                             status=403)


async def test_a_gateways_json_error_echoing_the_token_is_neither_stored_nor_a_metric_label(
    sqlite_store: Store,
) -> None:
    run = await sqlite_store.runs.create(
        NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="leads-ods", started_by="U0ALICE", channel="C0GENERAL", provider_run_id="p-1"),
        now=NOW, next_poll_at=None,
    )
    await sqlite_store.cards.write_run_card(run.id, "C0GENERAL", "leads-ods failed",
                                            [{"type": "section", "text": {"type": "mrkdwn", "text": "failed"}}], now=NOW)
    await sqlite_store.outbox.enqueue("notice-1", kind=OutboxKind.POST, text="hello", channel="C0OTHER", now=NOW)
    secrets = Redactor([TOKEN])  # as `pipeline-bot run` includes the settings' secrets
    PROCESS.include(secrets)
    metrics = Metrics()
    try:
        async with gateway(echoing_error) as url:
            deliverer = Deliverer(sqlite_store, AsyncWebClient(token=TOKEN, base_url=url), owner="test",
                                  now=lambda: NOW, metrics=metrics)
            await deliverer.tick()
    finally:
        PROCESS.exclude(secrets)
    async with sqlite_store.engine.connect() as conn:
        kept = [*(await conn.execute(select(cards.c.last_error))).scalars(),
                *(await conn.execute(select(outbox.c.last_error))).scalars()]
    assert len(kept) == 2 and all("denied for POST" in k for k in kept), kept  # the answer is quoted, redacted
    assert not any(TOKEN in k for k in kept), kept
    shown = await metrics.render()
    assert TOKEN not in shown and "denied for" not in shown, shown
    assert 'outcome="error"' in shown, shown


async def plain_503(request: web.Request) -> web.StreamResponse:
    return web.Response(status=503, text="no healthy upstream", content_type="text/plain")


async def html_502(request: web.Request) -> web.StreamResponse:
    return web.Response(status=502, text="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html")


async def json_array(request: web.Request) -> web.StreamResponse:
    return web.json_response([{"message": "upstream unavailable"}], status=503)


@pytest.mark.parametrize(
    ("handler", "said"),
    [(plain_503, "'no healthy upstream'"), (html_502, "HTTP 502 (text/html"), (json_array, "upstream unavailable")],
    ids=["plain text", "html", "json array"],
)
async def test_check_online_and_the_start_up_say_what_answered_instead_of_slack(handler: Handler, said: str) -> None:
    catalog = parse_catalog({
        "version": 1,
        "defaults": {"channel": "#data-alerts", "owners": ["U0ALICE"], "allow_run": ["*"]},
        "connections": {"rivery": {"provider": "rivery", "base_url": "http://127.0.0.1:9/", "api_token": "${RIVERY_TOKEN}"}},
        "pipelines": {"leads": {"connection": "rivery", "river_id": "r1"}},
    }, {"RIVERY_TOKEN": "t" * 40})
    async with gateway(handler) as url:
        client = AsyncWebClient(token=TOKEN, base_url=url)
        results = await online_checks(catalog, client, deadline=5)
        with pytest.raises(StartupError) as started:
            await catalog_with_ids(client, catalog)
    auth = next(r for r in results if r.item == "Slack auth.test")
    assert not auth.ok
    assert said in auth.said and "AttributeError" not in auth.said, auth
    assert "SLACK_API_URL" in auth.fix and "proxy" in auth.fix and "SLACK_BOT_TOKEN" not in auth.fix, auth
    assert said in str(started.value) and "AttributeError" not in str(started.value), started.value
    assert "None" not in str(started.value) and "SLACK_API_URL" in str(started.value), started.value


async def test_a_gateways_page_of_megabytes_is_kept_and_logged_as_its_start(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A gateway's 400 page of 3 MB: the reason was redacted whole for each failed delivery (0.2 to 0.9 s of a
    blocked event loop per message) and logged whole, a line of megabytes at ERROR."""

    async def huge(request: web.Request) -> web.StreamResponse:
        page = "x" * 3_000_000 + f" Authorization: {request.headers.get('Authorization')}"
        return web.Response(status=400, text=page, content_type="text/plain")

    await sqlite_store.outbox.enqueue("notice-1", kind=OutboxKind.POST, text="hello", channel="C0OTHER", now=NOW)
    secrets = Redactor([TOKEN])
    PROCESS.include(secrets)
    try:
        async with gateway(huge) as url:
            deliverer = Deliverer(sqlite_store, AsyncWebClient(token=TOKEN, base_url=url), owner="test",
                                  now=lambda: NOW)
            with caplog.at_level(logging.WARNING, logger="bot.delivery"):
                await deliverer.tick()
    finally:
        PROCESS.exclude(secrets)
    async with sqlite_store.engine.connect() as conn:
        kept = (await conn.execute(select(outbox.c.state, outbox.c.last_error))).one()
    assert kept.state == "dead" and "status: 400" in kept.last_error and len(kept.last_error) <= 2000, kept.state
    said = [r.getMessage() for r in caplog.records if "Slack refused message" in r.getMessage()]
    assert len(said) == 1 and len(said[0]) < 2100, [len(s) for s in said]


def test_the_start_of_a_huge_text_never_keeps_part_of_a_secret_cut_where_reading_stopped() -> None:
    """Wherever the part read ends (the secret before it, across it, after it), no piece of the secret is shown."""
    secret = "xoxb-9876543210-cut-At-The-End-of-what-is-read"
    redactor = Redactor([secret])
    echoed = f"{secret} " * 70  # an answer echoing it again and again: what is read shrinks once redacted
    for at in range(0, 1500):
        shown = redactor.head(echoed + "y" * at + secret + "z" * 100_000, 1500)
        assert len(shown) <= 1500
        pieces = [secret[i : i + 6] for i in range(len(secret) - 5)]
        assert not any(piece in shown for piece in pieces), (at, shown[-80:])


async def _cut_token_page(request: web.Request) -> web.StreamResponse:
    """A gateway's plain-text 503 quoting the request, padded so that the bot token falls where a quote is cut."""
    return web.Response(status=503, text=f"{request.query.get('pad', '')}{'x' * PAD} Authorization: "
                        f"{request.headers.get('Authorization')} and more", content_type="text/plain")


PAD = 110


def test_check_online_never_prints_part_of_a_secret_cut_short(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``check --online`` redacted each line it printed, after the quotes in it were cut: the process's redactor
    (which a quote is redacted with before it is cut) did not hold the settings' secrets, so a token where a quote
    ended was printed in part ("Authorization: Bearer xoxb-1234567890-…")."""
    token = "xoxb-1234567890-9876543210-AbCdEfGhIjKlMnOpQrStUvWx"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    (tmp_path / "pipelines.yml").write_text(
        "version: 1\ndefaults: {channel: C0ALERTS, owners: [U0ALICE], allow_run: ['*']}\n"
        "connections:\n  rivery: {provider: rivery, base_url: 'http://127.0.0.1:9/', api_token: '${RIVERY_TOKEN}'}\n"
        "pipelines:\n  leads: {connection: rivery, river_id: r1}\n"
    )

    async def run() -> int:
        async with gateway(_cut_token_page) as url:
            (tmp_path / ".env").write_text(
                f"SLACK_BOT_TOKEN={token}\nSLACK_SIGNING_SECRET=9f8e7d6c5b4a39281706f5e4d3c2b1a0\n"
                f"SLACK_API_URL={url}\nDATABASE_URL=sqlite+aiosqlite:///{tmp_path / 'bot.db'}\n"
                "RIVERY_TOKEN=rivery-token-5f2c9a77\n"
            )
            return await asyncio.to_thread(
                main, ["check", "--online", "--catalog", str(tmp_path / "pipelines.yml"),
                       "--env-file", str(tmp_path / ".env")]
            )

    assert asyncio.run(run()) == 1
    shown = capsys.readouterr()
    printed = shown.out + shown.err
    assert "not Slack's answer: HTTP 503" in printed, printed
    assert not [token[i : i + 8] for i in range(len(token) - 7) if token[i : i + 8] in printed], printed
