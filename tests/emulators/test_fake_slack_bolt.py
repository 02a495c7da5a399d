"""A real Bolt AsyncApp served over aiohttp, driven by FakeSlack end to end: the way the bot's scenario
tests will run. Bolt verifies every signature, calls auth.test, acks, and its listeners call the Web API
and response_url of the fake."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulators.slack import FakeSlack

MODAL = {
    "type": "modal",
    "callback_id": "run_modal",
    "title": {"type": "plain_text", "text": "Run a pipeline"},
    "submit": {"type": "plain_text", "text": "Run"},
    "blocks": [{"type": "input", "block_id": "pipeline", "label": {"type": "plain_text", "text": "Pipeline"},
                "element": {"type": "plain_text_input", "action_id": "name"}}],
}


def card(name: str, state: str) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{name}* is {state}"}},
        {"type": "actions", "block_id": "run", "elements": [
            {"type": "button", "action_id": "refresh", "value": name,
             "text": {"type": "plain_text", "text": "Refresh"}},
        ]},
    ]


def build_app(fake: FakeSlack) -> AsyncApp:
    app = AsyncApp(signing_secret=fake.signing_secret,
                   client=AsyncWebClient(token=fake.bot_token, base_url=fake.api_url))

    @app.command("/pipeline")
    async def pipeline(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        if command["text"] == "run":
            await ack()
            await client.views_open(trigger_id=command["trigger_id"], view=MODAL)
            return
        name = command["text"].removeprefix("run ").strip()
        await ack(f"Starting {name}…")
        await respond(f"{name} queued")
        await client.chat_postMessage(channel=command["channel_id"], text=f"{name} running",
                                      blocks=card(name, "running"))

    @app.action("refresh")
    async def refresh(ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        name = action["value"]
        await client.chat_update(channel=body["container"]["channel_id"], ts=body["container"]["message_ts"],
                                 text=f"{name} succeeded", blocks=card(name, f"succeeded (<@{body['user']['id']}>)"))

    @app.view("run_modal")
    async def submitted(ack: AsyncAck, view: dict[str, Any], body: dict[str, Any], client: AsyncWebClient) -> None:
        name = view["state"]["values"]["pipeline"]["name"]["value"] or ""
        if not name.strip():
            await ack(response_action="errors", errors={"pipeline": "Name a pipeline"})
            return
        await ack()
        await client.chat_postMessage(channel="C0GENERAL", text=f"{name} started by <@{body['user']['id']}>")

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.views_publish(user_id=event["user"], view={
            "type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "No runs in flight"}}],
        })

    return app


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
async def bolt(fake: FakeSlack) -> AsyncIterator[AsyncApp]:
    app = build_app(fake)

    async def endpoint(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", endpoint)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    fake.app_url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    yield app
    await runner.cleanup()


async def test_command_acks_responds_and_posts(fake: FakeSlack, bolt: AsyncApp) -> None:
    response = await fake.command("run nightly_sales", channel="#data-alerts")
    assert response.status == 200 and response.within_deadline
    assert response.body == "Starting nightly_sales…"  # Bolt acks bare text as text/plain
    [posted] = await fake.wait_for(lambda f: f.messages("C0ALERTS"))
    assert posted.text == "nightly_sales running" and posted.action_ids == ["refresh"]
    await fake.wait_for(lambda f: len(f.responses("U0ALICE")) == 2)
    assert [r.text for r in fake.responses("U0ALICE")] == ["Starting nightly_sales…", "nightly_sales queued"]
    assert [r.source for r in fake.responses("U0ALICE")] == ["ack", "response_url"]
    shown = [e.text for e in fake.ephemerals("C0ALERTS", "U0ALICE")]
    assert shown == ["Starting nightly_sales…", "nightly_sales queued"]
    assert fake.calls_to("auth.test")  # Bolt authorizes with the fake


async def test_click_updates_the_card(fake: FakeSlack, bolt: AsyncApp) -> None:
    await fake.command("run nightly_sales")
    [posted] = await fake.wait_for(lambda f: f.messages("C0GENERAL"))
    response = await fake.click("C0GENERAL", posted.ts, "refresh", user="U0BOB")
    assert response.status == 200
    await fake.wait_for(lambda f: f.message("C0GENERAL", posted.ts).edits)
    assert fake.message("C0GENERAL", posted.ts).text == "nightly_sales succeeded"
    assert "<@U0BOB>" in fake.message("C0GENERAL", posted.ts).blocks[0]["text"]["text"]


async def test_modal_opened_with_the_command_trigger_and_submitted(fake: FakeSlack, bolt: AsyncApp) -> None:
    await fake.command("run")
    [modal] = await fake.wait_for(lambda f: f.open_modals("U0ALICE"))
    assert modal.callback_id == "run_modal"
    rejected = await fake.submit(modal.id, {"pipeline": {"name": " "}})
    assert rejected.body == {"response_action": "errors", "errors": {"pipeline": "Name a pipeline"}}
    assert not fake.view(modal.id).closed
    accepted = await fake.submit(modal.id, {"pipeline": {"name": "nightly_sales"}})
    assert accepted.status == 200 and fake.view(modal.id).closed
    [posted] = await fake.wait_for(lambda f: f.messages("C0GENERAL"))
    assert posted.text == "nightly_sales started by <@U0ALICE>"


async def test_home_tab_published_on_open(fake: FakeSlack, bolt: AsyncApp) -> None:
    response = await fake.open_home("U0CAROL")
    assert response.status == 200
    home = await fake.wait_for(lambda f: f.home("U0CAROL"))
    assert home.blocks[0]["text"]["text"] == "No runs in flight"


async def test_bolt_rejects_a_tampered_signature(fake: FakeSlack, bolt: AsyncApp) -> None:
    body = urllib.parse.urlencode({"command": "/pipeline", "text": "run x", "user_id": "U0ALICE"})
    response = await fake.post_raw(body, signature=fake.signature_for(int(time.time()), body + "&x=1"))
    assert response.status == 401
    assert fake.messages("C0GENERAL") == [] and fake.responses() == []


async def test_bolt_rejects_a_stale_timestamp(fake: FakeSlack, bolt: AsyncApp) -> None:
    event = {"type": "event_callback", "event": {"type": "app_home_opened", "user": "U0ALICE"}}
    response = await fake.post_raw(json.dumps(event), timestamp=int(time.time()) - 6 * 60,
                                   content_type="application/json")
    assert response.status == 401
    assert fake.calls_to("views.publish") == []
