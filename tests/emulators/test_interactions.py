"""What FakeSlack sends into the app: signed requests with Slack's fields, and response_url handling."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulators.slack import FakeSlack
from bot.emulators.slack.signing import signature, signed_headers, verify
from tests.emulators.conftest import Clock, RecordingApp

SECTION_WITH_BUTTON = {
    "type": "section",
    "block_id": "card",
    "text": {"type": "mrkdwn", "text": "run r-1"},
    "accessory": {"type": "button", "action_id": "refresh", "value": "r-1", "style": "primary",
                  "text": {"type": "plain_text", "text": "Refresh"}},
}
PICKER = {
    "type": "actions",
    "block_id": "pick",
    "elements": [{"type": "static_select", "action_id": "mute_for",
                  "options": [{"text": {"type": "plain_text", "text": "1 hour"}, "value": "1h"},
                              {"text": {"type": "plain_text", "text": "1 day"}, "value": "1d"}]}],
}
MODAL = {
    "type": "modal",
    "callback_id": "run_modal",
    "title": {"type": "plain_text", "text": "Run"},
    "submit": {"type": "plain_text", "text": "Run"},
    "blocks": [
        {"type": "input", "block_id": "pipeline", "label": {"type": "plain_text", "text": "Pipeline"},
         "element": {"type": "static_select", "action_id": "choice",
                     "options": [{"text": {"type": "plain_text", "text": "nightly_sales"}, "value": "nightly_sales"}]}},
        {"type": "input", "block_id": "date", "label": {"type": "plain_text", "text": "Date"},
         "element": {"type": "datepicker", "action_id": "day"}},
        {"type": "input", "block_id": "note", "label": {"type": "plain_text", "text": "Note"}, "optional": True,
         "element": {"type": "plain_text_input", "action_id": "text"}},
        {"type": "actions", "block_id": "extra",
         "elements": [{"type": "button", "action_id": "preview", "text": {"type": "plain_text", "text": "Preview"}}]},
    ],
}


def test_signing_matches_slacks_recipe() -> None:
    # the example of Slack's "Verifying requests" documentation
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&"
        "channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&"
        "response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
        "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    expected = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    assert signature("8f742231b10e8888abcd99yyyzzz85a5", 1531420618, body) == expected
    headers = signed_headers("s", body, timestamp=1531420618)
    assert headers["X-Slack-Request-Timestamp"] == "1531420618"
    assert verify("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body, expected, now=1531420618 + 10)
    assert not verify("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body, expected, now=1531420618 + 301)
    assert not verify("other", "1531420618", body, expected, now=1531420618)


async def test_command_form_fields_and_signature(fake: FakeSlack, app: RecordingApp) -> None:
    response = await fake.command("run nightly_sales", user="U0BOB", channel="#data-alerts")
    assert response.status == 200 and response.body == "" and response.within_deadline
    received = app.last
    assert received.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert verify(fake.signing_secret, received.headers["X-Slack-Request-Timestamp"], received.raw,
                  received.headers["X-Slack-Signature"])
    form = received.form
    assert set(form) == {"token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
                         "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id"}
    assert form["command"] == "/pipeline" and form["text"] == "run nightly_sales"
    assert (form["user_id"], form["user_name"], form["channel_id"], form["channel_name"]) == (
        "U0BOB", "bob", "C0ALERTS", "data-alerts")
    assert form["response_url"].startswith(f"{fake.url}/_response/")
    assert fake.deliveries[-1].kind == "command" and fake.deliveries[-1].payload == form


async def test_command_ack_body_is_shown_to_the_user(fake: FakeSlack, app: RecordingApp) -> None:
    app.replies.append({"text": "Starting nightly_sales…"})
    response = await fake.command("run nightly_sales")
    assert response.body == {"text": "Starting nightly_sales…"}
    [shown] = fake.ephemerals("C0GENERAL", "U0ALICE")
    assert shown.text == "Starting nightly_sales…" and shown.source == "ack"
    assert fake.responses("U0ALICE")[0].source == "ack"


async def test_unknown_user_or_channel_is_a_test_error(fake: FakeSlack, app: RecordingApp) -> None:
    with pytest.raises(KeyError, match="add_user"):
        await fake.command("x", user="U0NOBODY")
    with pytest.raises(KeyError, match="unknown channel"):
        await fake.command("x", channel="#nope")


async def test_response_url_limits_and_effects(fake: FakeSlack, app: RecordingApp, clock: Clock) -> None:
    await fake.command("status")
    url = app.last.form["response_url"]
    async with aiohttp.ClientSession() as session:
        async def post(body: dict[str, Any]) -> tuple[int, str]:
            async with session.post(url, json=body) as resp:
                return resp.status, await resp.text()

        assert await post({"text": "only you"}) == (200, "ok")
        assert await post({"text": "everyone", "response_type": "in_channel"}) == (200, "ok")
        too_long = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
        assert await post({"text": "x", "blocks": too_long}) == (400, "invalid_blocks")
        assert await post({}) == (400, "no_text")
        assert await post({"text": "fifth"}) == (200, "ok")
        assert await post({"text": "sixth"}) == (404, "used_url")

        await fake.command("status")
        clock.advance(31 * 60)
        async with session.post(app.last.form["response_url"], json={"text": "late"}) as resp:
            assert (resp.status, await resp.text()) == (404, "expired_url")

    assert [e.text for e in fake.ephemerals("C0GENERAL", "U0ALICE")] == ["only you", "fifth"]
    assert [m.text for m in fake.messages("C0GENERAL")] == ["everyone"]
    posts = fake.responses("U0ALICE")
    assert [p.status for p in posts] == [200, 200, 400, 400, 200]
    assert posts[1].response_type == "in_channel" and posts[2].errors


async def test_click_payload(fake: FakeSlack, app: RecordingApp, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0ALERTS", text="card", blocks=[SECTION_WITH_BUTTON, PICKER])
    await fake.click("#data-alerts", posted["ts"], "refresh", user="U0BOB")
    payload = app.last.payload
    assert payload["type"] == "block_actions"
    assert payload["user"] == {"id": "U0BOB", "username": "bob", "name": "bob", "team_id": "T0001"}
    assert payload["container"] == {"type": "message", "message_ts": posted["ts"], "channel_id": "C0ALERTS",
                                    "is_ephemeral": False}
    assert payload["channel"] == {"id": "C0ALERTS", "name": "data-alerts"}
    assert payload["message"]["ts"] == posted["ts"] and payload["message"]["blocks"][0]["block_id"] == "card"
    assert payload["team"] == {"id": "T0001", "domain": "fake-team"}
    assert payload["state"] == {"values": {}} and payload["trigger_id"] and payload["api_app_id"] == "A0APP"
    [action] = payload["actions"]
    assert action["action_id"] == "refresh" and action["block_id"] == "card" and action["value"] == "r-1"
    assert action["type"] == "button" and action["style"] == "primary" and action["text"]["text"] == "Refresh"
    assert action["action_ts"]

    await fake.click("C0ALERTS", posted["ts"], "refresh", value="tampered")
    assert app.last.payload["actions"][0]["value"] == "tampered"
    await fake.click("C0ALERTS", posted["ts"], "mute_for", value="1d")
    picked = app.last.payload["actions"][0]
    assert picked["type"] == "static_select" and picked["selected_option"]["value"] == "1d"
    with pytest.raises(LookupError, match="action_ids here"):
        await fake.click("C0ALERTS", posted["ts"], "nope")


async def test_response_url_of_a_click_replaces_or_deletes(
    fake: FakeSlack, app: RecordingApp, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel="C0ALERTS", text="failed", blocks=[SECTION_WITH_BUTTON])
    await fake.click("C0ALERTS", posted["ts"], "refresh")
    async with aiohttp.ClientSession() as session:
        replaced = {"replace_original": True, "text": "acknowledged by Alice"}
        async with session.post(app.last.payload["response_url"], json=replaced) as resp:
            assert resp.status == 200
        message = fake.message("C0ALERTS", posted["ts"])
        assert message.text == "acknowledged by Alice" and message.edits[0].text == "failed"
        async with session.post(app.last.payload["response_url"], json={"delete_original": True}) as resp:
            assert resp.status == 200
    assert fake.messages("C0ALERTS") == []


async def test_click_ephemeral(fake: FakeSlack, app: RecordingApp, client: AsyncWebClient) -> None:
    await client.chat_postEphemeral(channel="C0GENERAL", user="U0BOB", text="confirm?", blocks=[SECTION_WITH_BUTTON])
    await fake.click_ephemeral("C0GENERAL", "refresh", user="U0BOB")
    payload = app.last.payload
    assert payload["container"]["is_ephemeral"] is True and "message" not in payload
    async with aiohttp.ClientSession() as session:
        body = {"replace_original": True, "text": "done"}
        async with session.post(payload["response_url"], json=body) as resp:
            assert resp.status == 200
    assert [e.text for e in fake.ephemerals("C0GENERAL", "U0BOB")] == ["done"]
    with pytest.raises(LookupError):
        await fake.click_ephemeral("C0GENERAL", "refresh", user="U0ALICE")


async def open_modal(fake: FakeSlack, app: RecordingApp, client: AsyncWebClient) -> str:
    await fake.command("run")
    return str((await client.views_open(trigger_id=app.last.form["trigger_id"], view=MODAL))["view"]["id"])


async def test_click_view_and_submit(fake: FakeSlack, app: RecordingApp, client: AsyncWebClient) -> None:
    view_id = await open_modal(fake, app, client)
    await fake.click_view(view_id, "preview", values={"note": {"text": "draft"}})
    payload = app.last.payload
    assert payload["container"] == {"type": "view", "view_id": view_id}
    assert payload["view"]["id"] == view_id and "channel" not in payload and "response_url" not in payload
    assert payload["state"]["values"] == {"note": {"text": {"type": "plain_text_input", "value": "draft"}}}
    assert fake.deliveries[-1].payload == payload and fake.deliveries[-1].kind == "block_actions"

    app.replies.append({"response_action": "errors", "errors": {"date": "Pick a date"}})
    response = await fake.submit(view_id, {"pipeline": {"choice": "nightly_sales"}})
    assert response.body == {"response_action": "errors", "errors": {"date": "Pick a date"}}
    submitted = app.last.payload
    assert submitted["type"] == "view_submission" and submitted["view"]["callback_id"] == "run_modal"
    values = submitted["view"]["state"]["values"]
    assert values["pipeline"]["choice"] == {
        "type": "static_select",
        "selected_option": {"text": {"type": "plain_text", "text": "nightly_sales"}, "value": "nightly_sales"},
    }
    assert values["date"]["day"] == {"type": "datepicker", "selected_date": None}
    assert values["note"]["text"]["value"] == "draft"  # kept from the earlier interaction
    assert not fake.view(view_id).closed

    await fake.submit(view_id, {"date": {"day": "2024-05-01"}})
    assert app.last.payload["view"]["state"]["values"]["date"]["day"]["selected_date"] == "2024-05-01"
    assert fake.view(view_id).closed and fake.open_modals("U0ALICE") == []
    with pytest.raises(LookupError):
        await fake.submit(view_id, {})


async def test_submit_update_push_and_unknown_ids(fake: FakeSlack, app: RecordingApp, client: AsyncWebClient) -> None:
    view_id = await open_modal(fake, app, client)
    with pytest.raises(LookupError, match="no element"):
        await fake.submit(view_id, {"pipeline": {"wrong": "x"}})
    step2 = {**MODAL, "private_metadata": "step-2"}
    app.replies.append({"response_action": "update", "view": step2})
    await fake.submit(view_id, {"pipeline": {"choice": "nightly_sales"}})
    assert fake.view(view_id).private_metadata == "step-2" and not fake.view(view_id).closed
    app.replies.append({"response_action": "push", "view": MODAL})
    await fake.submit(view_id, {"pipeline": {"choice": "nightly_sales"}})
    stack = fake.open_modals("U0ALICE")
    assert len(stack) == 2 and stack[1].previous_view_id == view_id
    app.replies.append({"response_action": "clear"})
    await fake.submit(stack[1].id)
    assert fake.open_modals("U0ALICE") == []


async def test_events(fake: FakeSlack, app: RecordingApp, client: AsyncWebClient) -> None:
    await client.views_publish(user_id="U0ALICE", view={"type": "home", "blocks": [{"type": "divider"}]})
    await fake.open_home("U0ALICE")
    envelope = app.last.payload
    assert app.last.headers["Content-Type"].startswith("application/json")
    assert envelope["type"] == "event_callback" and envelope["event_id"].startswith("Ev")
    assert envelope["event"]["type"] == "app_home_opened" and envelope["event"]["tab"] == "home"
    assert envelope["event"]["user"] == "U0ALICE" and envelope["event"]["view"]["type"] == "home"
    assert "X-Slack-Retry-Num" not in app.last.headers

    await fake.open_home("U0BOB")
    assert app.last.payload["event_id"] != envelope["event_id"] and "view" not in app.last.payload["event"]

    await fake.send_event({"type": "app_mention", "user": "U0BOB", "text": "hi"}, retry_num=1, event_id="Ev1")
    assert app.last.headers["X-Slack-Retry-Num"] == "1" and app.last.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert app.last.payload["event_id"] == "Ev1"
    await fake.url_verification("abc")
    assert app.last.payload == {"token": fake.verification_token, "challenge": "abc", "type": "url_verification"}


async def test_post_raw(fake: FakeSlack, app: RecordingApp) -> None:
    old = int(time.time()) - 360
    await fake.post_raw("a=1", timestamp=old)
    assert app.last.headers["X-Slack-Request-Timestamp"] == str(old)
    assert app.last.headers["X-Slack-Signature"] == fake.signature_for(old, "a=1")
    await fake.post_raw("a=1", signature="v0=bad")
    assert app.last.headers["X-Slack-Signature"] == "v0=bad"
    await fake.post_raw(json.dumps({"x": 1}), sign=False, content_type="application/json")
    assert "X-Slack-Signature" not in app.last.headers


async def test_sending_needs_an_app_url(clock: Clock) -> None:
    async with FakeSlack(clock=clock) as fake:
        with pytest.raises(RuntimeError, match="app_url"):
            await fake.command("x")
