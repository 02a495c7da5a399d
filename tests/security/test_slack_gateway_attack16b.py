"""A gateway in front of the Slack API whose JSON error shows the request (sixteenth independent pass, b).

The delivery loop kept a ``SlackApiError``'s text as the card's ``last_error`` as it was when Slack's answer had no
``error``: the answer quoted in it carries ``Authorization: Bearer xoxb-…``, so the bot token went into the database
in clear (the log lines are redacted by the process's filter; the store was not). Run with a real local server as the gateway, the real Slack
SDK and the real ``Deliverer`` on a SQLite file."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select

from bot.delivery.sender import Deliverer
from bot.ops.redact import PROCESS, Redactor
from bot.store.records import NewRun, OutboxKind, RunOrigin
from bot.store.store import Store
from bot.store.tables import cards, outbox
from tests.local_servers import web_server

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
TOKEN = "xoxb-1234567890-gateway-T0ken"


@pytest.fixture
async def gateway() -> AsyncIterator[str]:
    """A gateway answering 502 in JSON that shows the request's headers (as API gateways' debugging answers do)."""

    async def failing(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "Bad gateway", "request": dict(request.headers)}, status=502)

    async with web_server(failing) as url:
        yield f"{url}/api/"


async def test_a_slack_error_page_showing_the_bot_token_is_kept_redacted(sqlite_store: Store, gateway: str) -> None:
    run = await sqlite_store.runs.create(
        NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="leads-ods", started_by="U0ALICE", channel="C0GENERAL", provider_run_id="p-1"),
        now=NOW, next_poll_at=None,
    )
    await sqlite_store.cards.write_run_card(run.id, "C0GENERAL", "leads-ods failed",
                                            [{"type": "section", "text": {"type": "mrkdwn", "text": "failed"}}], now=NOW)
    secrets = Redactor([TOKEN])  # as `pipeline-bot run` includes the settings' secrets
    PROCESS.include(secrets)
    try:
        deliverer = Deliverer(sqlite_store, AsyncWebClient(token=TOKEN, base_url=gateway), owner="test", now=lambda: NOW)
        assert await deliverer.tick() == 0
    finally:
        PROCESS.exclude(secrets)
    async with sqlite_store.engine.connect() as conn:
        kept = (await conn.execute(select(cards.c.last_error))).scalars().all()
    assert len(kept) == 1 and "Bad gateway" in kept[0], kept  # the page was quoted
    assert TOKEN not in kept[0], kept


async def test_a_slack_answer_in_plain_text_is_a_slack_failure_not_a_crash_of_its_handler(
    sqlite_store: Store,
) -> None:
    """A gateway's plain-text answer (Envoy's 503 "no healthy upstream", a proxy's 407): the SDK's ``SlackApiError``
    holds it as text, and reading its ``error`` raised ``AttributeError`` inside the handler: the card's reason was
    "'str' object has no attribute 'get'" instead of the gateway's 503, and the wait for a server error never
    applied."""

    async def plain(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="no healthy upstream", content_type="text/plain")

    async with web_server(plain) as url:
        run = await sqlite_store.runs.create(
            NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={},
                   origin=RunOrigin.SLACK, pipeline="leads-ods", started_by="U0ALICE", channel="C0GENERAL",
                   provider_run_id="p-1"),
            now=NOW, next_poll_at=None,
        )
        await sqlite_store.cards.write_run_card(
            run.id, "C0GENERAL", "leads-ods failed", [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}],
            now=NOW,
        )
        client = AsyncWebClient(token=TOKEN, base_url=f"{url}/api/")
        deliverer = Deliverer(sqlite_store, client, owner="test", now=lambda: NOW)
        assert await deliverer.tick() == 0
    async with sqlite_store.engine.connect() as conn:
        kept = (await conn.execute(select(cards.c.last_error, cards.c.not_before))).one()
    assert "503" in kept.last_error and "attribute" not in kept.last_error, kept
    assert (kept.not_before - NOW.replace(tzinfo=None) if kept.not_before.tzinfo is None else kept.not_before - NOW
            ).total_seconds() == 2.0, kept  # a server error's wait


async def test_a_steps_completion_answered_in_plain_text_is_tried_again_not_raised_out_of_the_tick(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The same plain-text answer to a Workflow Builder step's ``functions.completeSuccess``: the ``AttributeError``
    raised out of the delivery tick ("1 of 1 deliveries failed" at ERROR with a traceback, each tick)."""

    async def plain(request: web.Request) -> web.StreamResponse:
        return web.Response(status=503, text="no healthy upstream", content_type="text/plain")

    async with web_server(plain) as url:
        await sqlite_store.outbox.enqueue(
            "fn:Fx0123", kind=OutboxKind.FUNCTION, channel="Fx0123", text="step Fx0123: run #1 succeeded",
            blocks=[{"outputs": {"run_number": 1}}], run_id=None, now=NOW,
        )
        client = AsyncWebClient(token=TOKEN, base_url=f"{url}/api/")
        deliverer = Deliverer(sqlite_store, client, owner="test", now=lambda: NOW)
        with caplog.at_level(logging.WARNING):
            assert await deliverer.tick() == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    async with sqlite_store.engine.connect() as conn:
        kept = (await conn.execute(select(outbox.c.state, outbox.c.not_before))).one()
    assert kept.not_before is not None and kept.not_before.replace(tzinfo=UTC) == NOW + timedelta(seconds=2), kept
