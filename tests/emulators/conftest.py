"""Fixtures for the fake Slack's tests: the fake, a real slack_sdk client on it, and a recording app."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulators.slack import FakeSlack


class Clock:
    """A clock the test moves: trigger, response_url and rate-limit expiry without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Received:
    headers: dict[str, str]
    raw: bytes

    @property
    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.raw.decode(), keep_blank_values=True))

    @property
    def payload(self) -> dict[str, Any]:
        """The JSON of ``payload=`` (interactions) or the body itself (events)."""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(self.raw)  # type: ignore[no-any-return]
        return json.loads(self.form["payload"])  # type: ignore[no-any-return]


@dataclass
class RecordingApp:
    """A stand-in for the bot's endpoint that keeps every request and answers ``reply``."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    reply: web.Response | None = None
    replies: list[Any] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        if self.replies:
            body = self.replies.pop(0)
            return web.json_response(body) if body is not None else web.Response(status=200)
        return web.Response(status=200)

    @property
    def last(self) -> Received:
        return self.received[-1]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(clock=clock) as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)


@pytest.fixture
async def app(fake: FakeSlack) -> AsyncIterator[RecordingApp]:
    recording = RecordingApp()
    web_app = web.Application()
    web_app.router.add_post("/slack/events", recording.handle)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recording.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    fake.app_url = recording.url
    yield recording
    await runner.cleanup()
