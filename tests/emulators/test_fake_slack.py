"""FakeSlack's Web API, spoken to by a real slack_sdk AsyncWebClient: happy paths, Slack's errors, faults."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulators.slack import FakeSlack
from tests.emulators.conftest import Clock, RecordingApp

CARD = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*nightly_sales* running"},
     "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Refresh"}, "action_id": "refresh",
                   "value": "run-1"}},
]
MODAL = {
    "type": "modal",
    "callback_id": "run_modal",
    "external_id": "run-modal-1",
    "title": {"type": "plain_text", "text": "Run"},
    "submit": {"type": "plain_text", "text": "Run"},
    "blocks": [{"type": "input", "block_id": "name", "label": {"type": "plain_text", "text": "Name"},
                "element": {"type": "plain_text_input", "action_id": "value"}}],
}
HOME = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Nothing running"}}]}


async def error_of(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call
    return str(raised.value.response["error"])


async def trigger(fake: FakeSlack, app: RecordingApp) -> str:
    """A trigger_id as the bot gets one: from a slash command the fake sends."""
    await fake.command("run", user="U0ALICE")
    return app.last.form["trigger_id"]


# -- auth ------------------------------------------------------------------------------------------


async def test_auth_test(fake: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.auth_test()
    assert answer["user_id"] == "U0BOT" and answer["team_id"] == "T0001" and answer["bot_id"] == "B0BOT"
    assert answer["url"] == f"{fake.url}/"
    assert fake.calls_to("auth.test")[0].ok


async def test_wrong_or_missing_token(fake: FakeSlack) -> None:
    assert await error_of(AsyncWebClient(token="xoxb-wrong", base_url=fake.api_url).auth_test()) == "invalid_auth"
    async with aiohttp.ClientSession() as session, session.post(f"{fake.api_url}auth.test") as resp:
        assert resp.status == 200
        assert await resp.json() == {"ok": False, "error": "not_authed"}
    assert [c.error for c in fake.calls] == ["invalid_auth", "not_authed"]


async def test_token_param_and_unknown_method(fake: FakeSlack, client: AsyncWebClient) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.api_url}auth.test", data={"token": fake.bot_token}) as resp,
    ):
        assert (await resp.json())["ok"] is True
    assert await error_of(client.api_call("pins.add", json={"channel": "C0GENERAL"})) == "unknown_method"


# -- chat ------------------------------------------------------------------------------------------


async def test_post_message_records_and_resolves_names(fake: FakeSlack, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel="#data-alerts", text="Run started", blocks=CARD)
    second = await client.chat_postMessage(channel="C0ALERTS", text="second")
    assert first["channel"] == "C0ALERTS"
    assert float(first["ts"]) < float(second["ts"])
    assert first["message"]["blocks"][0]["block_id"]  # Slack fills in block ids
    stored = fake.message("C0ALERTS", first["ts"])
    assert stored.text == "Run started" and stored.user == "U0BOT" and stored.action_ids == ["refresh"]
    assert [m.text for m in fake.messages("#data-alerts")] == ["Run started", "second"]
    call = fake.calls_to("chat.postMessage")[0]
    assert call.ok and call.params["channel"] == "#data-alerts" and call.params["blocks"][0]["type"] == "section"


async def test_post_message_form_encoded_with_json_blocks(fake: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.api_call(
        "chat.postMessage", data={"channel": "C0GENERAL", "text": "form", "blocks": json.dumps(CARD)}
    )
    assert fake.message("C0GENERAL", answer["ts"]).blocks[0]["accessory"]["action_id"] == "refresh"


async def test_threads_metadata_and_broadcast(fake: FakeSlack, client: AsyncWebClient) -> None:
    parent = await client.chat_postMessage(
        channel="C0ALERTS", text="card", metadata={"event_type": "run", "event_payload": {"run_id": "r-1"}}
    )
    reply = await client.chat_postMessage(channel="C0ALERTS", text="failed", thread_ts=parent["ts"])
    await client.chat_postMessage(channel="C0ALERTS", text="loud", thread_ts=parent["ts"], reply_broadcast=True)
    assert [m.text for m in fake.messages("C0ALERTS", thread_ts=parent["ts"])] == ["failed", "loud"]
    assert [m.text for m in fake.messages("C0ALERTS")] == ["card", "loud"]
    assert len(fake.messages("C0ALERTS", top_level=False)) == 3
    assert fake.message("C0ALERTS", reply["ts"]).thread_ts == parent["ts"]

    plain = await client.conversations_history(channel="C0ALERTS")
    assert "metadata" not in plain["messages"][-1]
    assert plain["messages"][-1]["reply_count"] == 2
    rich = await client.conversations_history(channel="C0ALERTS", include_all_metadata=True)
    assert rich["messages"][-1]["metadata"]["event_payload"] == {"run_id": "r-1"}
    replies = await client.conversations_replies(channel="C0ALERTS", ts=parent["ts"])
    assert [m["text"] for m in replies["messages"]] == ["card", "failed", "loud"]


async def test_post_message_channel_rules(fake: FakeSlack, client: AsyncWebClient) -> None:
    assert await error_of(client.chat_postMessage(channel="C0NOPE", text="x")) == "channel_not_found"
    assert await error_of(client.chat_postMessage(channel="#nope", text="x")) == "channel_not_found"
    assert await error_of(client.chat_postMessage(channel="C0PRIVATE", text="x")) == "not_in_channel"
    assert (await client.chat_postMessage(channel="#random", text="public, bot not in it"))["ok"]
    assert (await client.chat_postMessage(channel="C0OPS", text="private, bot in it"))["ok"]
    dm = await client.chat_postMessage(channel="U0BOB", text="psst")
    assert dm["channel"] == "D0BOB" and fake.messages("D0BOB")[0].text == "psst"
    fake.add_channel("C0NEW", "new-team", member=False, private=True)
    assert await error_of(client.chat_postMessage(channel="#new-team", text="x")) == "not_in_channel"
    assert await error_of(client.api_call("chat.postMessage", json={"channel": "C0GENERAL"})) == "no_text"


async def test_invalid_blocks_are_rejected_and_recorded(fake: FakeSlack, client: AsyncWebClient) -> None:
    blocks = [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C0GENERAL", text="x", blocks=blocks)
    assert raised.value.response["error"] == "invalid_blocks"
    assert "/blocks/0/text/text" in raised.value.response["errors"][0]
    call = fake.calls_to("chat.postMessage")[0]
    assert not call.ok and call.error == "invalid_blocks" and call.errors
    assert fake.messages("C0GENERAL") == []


async def test_blocks_without_text_are_accepted_with_a_warning(fake: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.api_call("chat.postMessage", json={"channel": "C0GENERAL", "blocks": CARD})
    assert answer["ok"]
    assert answer["response_metadata"]["warnings"]
    assert fake.calls_to("chat.postMessage")[0].warnings
    assert any("missing top-level text" in w for w in fake.warnings)


async def test_link_names_is_flagged(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C0GENERAL", text="hi", link_names=True)
    assert any("link_names" in w for w in fake.warnings)


async def test_update_keeps_history(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0ALERTS", text="queued", blocks=CARD)
    await client.chat_update(channel="C0ALERTS", ts=posted["ts"], text="running")
    updated = await client.chat_update(channel="C0ALERTS", ts=posted["ts"], text="done", blocks=[])
    assert updated["ts"] == posted["ts"] and updated["message"]["text"] == "done"
    message = fake.message("C0ALERTS", posted["ts"])
    assert [v.text for v in message.edits] == ["queued", "running"]
    assert message.edits[1].blocks == message.edits[0].blocks != []  # blocks kept when omitted
    assert message.blocks == []
    assert await error_of(client.chat_update(channel="C0ALERTS", ts="1.000001", text="x")) == "message_not_found"
    bad = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    assert await error_of(client.chat_update(channel="C0ALERTS", ts=posted["ts"], text="x", blocks=bad)) == (
        "invalid_blocks"
    )
    assert fake.message("C0ALERTS", posted["ts"]).text == "done"


async def test_delete_and_permalink(fake: FakeSlack, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C0GENERAL", text="x")
    link = await client.chat_getPermalink(channel="C0GENERAL", message_ts=posted["ts"])
    assert link["permalink"].startswith(f"{fake.url}/archives/C0GENERAL/p")
    await client.chat_delete(channel="C0GENERAL", ts=posted["ts"])
    assert fake.messages("C0GENERAL") == []
    assert await error_of(client.chat_getPermalink(channel="C0GENERAL", message_ts=posted["ts"])) == (
        "message_not_found"
    )


async def test_post_ephemeral(fake: FakeSlack, client: AsyncWebClient) -> None:
    answer = await client.chat_postEphemeral(channel="C0GENERAL", user="U0BOB", text="only you", blocks=CARD)
    [ephemeral] = fake.ephemerals("C0GENERAL", "U0BOB")
    assert ephemeral.ts == answer["message_ts"] and ephemeral.text == "only you"
    assert fake.ephemerals(user="U0ALICE") == []
    assert await error_of(client.chat_postEphemeral(channel="C0GENERAL", user="U0NOBODY", text="x")) == (
        "user_not_found"
    )
    assert await error_of(client.chat_postEphemeral(channel="C0OPS", user="U0CAROL", text="x")) == (
        "user_not_in_channel"
    )


# -- users, groups, conversations ------------------------------------------------------------------


async def test_users_info(fake: FakeSlack, client: AsyncWebClient) -> None:
    user = (await client.users_info(user="U0BOB"))["user"]
    assert user["tz"] == "America/New_York" and user["real_name"] == "Bob Berg"
    assert user["profile"]["display_name"] == "bob" and isinstance(user["tz_offset"], int)
    fake.add_user("U0DAN", "dan", real_name="Dan D", display_name="dd", tz="UTC")
    assert (await client.users_info(user="U0DAN"))["user"]["profile"]["display_name"] == "dd"
    assert await error_of(client.users_info(user="U0NOBODY")) == "user_not_found"


async def test_usergroups(fake: FakeSlack, client: AsyncWebClient) -> None:
    assert (await client.usergroups_users_list(usergroup="S0DATAENG"))["users"] == ["U0ALICE", "U0BOB"]
    fake.add_usergroup("S0NEW", "new", ["U0CAROL"])
    assert (await client.usergroups_users_list(usergroup="S0NEW"))["users"] == ["U0CAROL"]
    groups = (await client.usergroups_list(include_users=True))["usergroups"]
    assert {g["handle"] for g in groups} >= {"data-eng", "new"}
    assert await error_of(client.usergroups_users_list(usergroup="S0NOPE")) == "no_such_subteam"


async def test_conversations(fake: FakeSlack, client: AsyncWebClient) -> None:
    info = (await client.conversations_info(channel="C0ALERTS"))["channel"]
    assert info["name"] == "data-alerts" and info["is_member"] is True and info["is_private"] is False
    assert await error_of(client.conversations_info(channel="C0NOPE")) == "channel_not_found"
    assert await error_of(client.conversations_info(channel="C0PRIVATE")) == "channel_not_found"
    members = (await client.conversations_members(channel="C0OPS"))["members"]
    assert set(members) == {"U0ALICE", "U0BOB", "U0BOT"}
    assert await error_of(client.conversations_history(channel="C0RANDOM")) == "not_in_channel"
    assert (await client.conversations_open(users="U0CAROL"))["channel"]["id"] == "D0CAROL"


async def test_history_paging(fake: FakeSlack, client: AsyncWebClient) -> None:
    stamps = [(await client.chat_postMessage(channel="C0GENERAL", text=str(i)))["ts"] for i in range(5)]
    first = await client.conversations_history(channel="C0GENERAL", limit=2)
    assert [m["text"] for m in first["messages"]] == ["4", "3"] and first["has_more"]
    second = await client.conversations_history(
        channel="C0GENERAL", limit=2, cursor=first["response_metadata"]["next_cursor"]
    )
    assert [m["text"] for m in second["messages"]] == ["2", "1"]
    newer = await client.conversations_history(channel="C0GENERAL", oldest=stamps[2])
    assert [m["text"] for m in newer["messages"]] == ["4", "3"]


# -- views -----------------------------------------------------------------------------------------


async def test_views_open_needs_a_fresh_trigger(
    fake: FakeSlack, client: AsyncWebClient, app: RecordingApp, clock: Clock
) -> None:
    trigger_id = await trigger(fake, app)
    opened = (await client.views_open(trigger_id=trigger_id, view=MODAL))["view"]
    assert opened["id"] in fake.views and opened["callback_id"] == "run_modal"
    assert opened["state"] == {"values": {}}
    assert [v.id for v in fake.open_modals("U0ALICE")] == [opened["id"]]
    assert await error_of(client.views_open(trigger_id=trigger_id, view=MODAL)) == "exchanged_trigger_id"
    assert await error_of(client.views_open(trigger_id="1.2.3", view=MODAL)) == "invalid_trigger_id"
    late = await trigger(fake, app)
    clock.advance(3.5)
    assert await error_of(client.views_open(trigger_id=late, view=MODAL)) == "expired_trigger_id"


async def test_views_open_validates_the_view(fake: FakeSlack, client: AsyncWebClient, app: RecordingApp) -> None:
    bad = {**MODAL, "title": {"type": "plain_text", "text": "A title that is far too long"}}
    with pytest.raises(SlackApiError) as raised:
        await client.views_open(trigger_id=await trigger(fake, app), view=bad)
    assert raised.value.response["error"] == "invalid_arguments"
    assert "/view/title/text" in raised.value.response["errors"][0]


async def test_views_update_and_push(fake: FakeSlack, client: AsyncWebClient, app: RecordingApp) -> None:
    opened = (await client.views_open(trigger_id=await trigger(fake, app), view=MODAL))["view"]
    changed = {**MODAL, "private_metadata": "step-2"}
    by_id = (await client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"]))["view"]
    assert by_id["private_metadata"] == "step-2" and by_id["hash"] != opened["hash"]
    assert await error_of(client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])) == (
        "hash_conflict"
    )
    by_external = await client.views_update(external_id="run-modal-1", view={**MODAL, "private_metadata": "3"})
    assert fake.view(opened["id"]).private_metadata == "3" and len(fake.view(opened["id"]).versions) == 2
    assert by_external["view"]["id"] == opened["id"]
    assert await error_of(client.views_update(view_id="V404", view=MODAL)) == "not_found"

    pushed = (await client.views_push(trigger_id=await trigger(fake, app), view=MODAL))["view"]
    assert pushed["previous_view_id"] == opened["id"] and pushed["root_view_id"] == opened["id"]
    assert [v.id for v in fake.open_modals("U0ALICE")] == [opened["id"], pushed["id"]]
    assert await error_of(client.views_push(trigger_id="bogus", view=MODAL)) == "invalid_trigger_id"


async def test_views_publish(fake: FakeSlack, client: AsyncWebClient) -> None:
    first = (await client.views_publish(user_id="U0ALICE", view=HOME))["view"]
    second = (await client.views_publish(user_id="U0ALICE", view=HOME, hash=first["hash"]))["view"]
    home = fake.home("U0ALICE")
    assert home is not None and home.id == first["id"] == second["id"] and len(home.versions) == 1
    assert fake.home("U0BOB") is None
    assert await error_of(client.views_publish(user_id="U0ALICE", view=MODAL)) == "invalid_arguments"
    assert await error_of(client.views_publish(user_id="U0NOBODY", view=HOME)) == "user_not_found"
    assert await error_of(client.views_publish(user_id="U0ALICE", view=HOME, hash="stale")) == "hash_conflict"


# -- faults ----------------------------------------------------------------------------------------


async def test_rate_limited_answer(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C0GENERAL", text="x")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] in ("7", ["7"])
    assert raised.value.response["error"] == "ratelimited"
    assert (await client.chat_postMessage(channel="C0GENERAL", text="x"))["ok"]
    assert [(c.ok, c.status) for c in fake.calls_to("chat.postMessage")] == [(False, 429), (True, 200)]


async def test_slack_sdk_retry_handlers_recover(fake: FakeSlack) -> None:
    client = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1), AsyncServerErrorRetryHandler()],
    )
    fake.fail_next("chat.postMessage", retry_after=0)
    assert (await client.chat_postMessage(channel="C0GENERAL", text="after 429"))["ok"]
    fake.fail_next("chat.update", status=503)
    posted = fake.messages("C0GENERAL")[0]
    assert (await client.chat_update(channel="C0GENERAL", ts=posted.ts, text="after 503"))["ok"]
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert [c.status for c in fake.calls_to("chat.update")] == [503, 200]
    assert len(fake.messages("C0GENERAL")) == 1


async def test_error_answers_and_times(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.fail_next("users.info", error="user_not_found", times=2)
    fake.fail_next("auth.test", status=500)
    assert await error_of(client.users_info(user="U0ALICE")) == "user_not_found"
    assert await error_of(client.users_info(user="U0ALICE")) == "user_not_found"
    assert (await client.users_info(user="U0ALICE"))["ok"]
    with pytest.raises(SlackApiError) as raised:
        await client.auth_test()
    assert raised.value.response.status_code == 500
    fake.fail_next("auth.test")
    fake.clear_faults()
    assert (await client.auth_test())["ok"]


async def test_per_channel_rate_limit_mode(fake: FakeSlack, client: AsyncWebClient, clock: Clock) -> None:
    fake.rate_limit_posts_per_second = 1.0
    for i in range(3):  # the burst
        await client.chat_postMessage(channel="C0ALERTS", text=str(i))
    with pytest.raises(SlackApiError) as raised:
        await client.chat_postMessage(channel="C0ALERTS", text="too fast")
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] in ("1", ["1"])
    assert (await client.chat_postMessage(channel="C0GENERAL", text="other channel"))["ok"]
    clock.advance(1.0)
    assert (await client.chat_postMessage(channel="C0ALERTS", text="later"))["ok"]
    assert [m.text for m in fake.messages("C0ALERTS")] == ["0", "1", "2", "later"]


async def test_delay_next(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.delay_next("auth.test", 0.2)
    slow = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url, timeout=0.05)  # type: ignore[arg-type]  # slack_sdk says int; aiohttp takes seconds as a float
    with pytest.raises(TimeoutError):
        await slow.auth_test()
    assert (await client.auth_test())["ok"]


# -- waiting ---------------------------------------------------------------------------------------


async def test_wait_for_returns_the_value_or_explains(fake: FakeSlack, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C0GENERAL", text="hello")
    found = await fake.wait_for(lambda f: f.messages("C0GENERAL"))
    assert found[0].text == "hello"
    assert await fake.wait_for(lambda: fake.calls_to("chat.postMessage"))
    with pytest.raises(AssertionError) as raised:
        await fake.wait_for(lambda f: f.messages("C0ALERTS"), timeout=0.05, what="an alert")
    text = str(raised.value)
    assert "an alert" in text and "chat.postMessage ok" in text and "'hello'" in text
    with pytest.raises(KeyError, match="no message"):
        fake.message("C0GENERAL", "1.000000")


async def test_malformed_parameters(fake: FakeSlack, client: AsyncWebClient) -> None:
    assert await error_of(client.conversations_history(channel="C0GENERAL", oldest="yesterday")) == (
        "invalid_arguments"
    )
    answer = client.api_call("chat.postMessage", data={"channel": "C0GENERAL", "text": "x", "blocks": "[{oops"})
    assert await error_of(answer) == "invalid_blocks"
    assert [c.error for c in fake.calls] == ["invalid_arguments", "invalid_blocks"]


async def test_conversations_list_pages_by_type_and_hides_private_channels_without_the_bot(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.add_channel("C0OLD", "old-news", archived=True)
    seen: list[str] = []
    cursor = None
    while True:
        page = await client.conversations_list(types="public_channel,private_channel", limit=2, cursor=cursor)
        assert len(page["channels"]) <= 2
        seen += [c["name"] for c in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert "data-ops" in seen and "old-news" in seen  # private with the bot in it; archived unless excluded
    assert "private-ops" not in seen  # private, the bot not in it: a bot token does not see it
    public = await client.conversations_list(exclude_archived=True)
    assert {c["name"] for c in public["channels"]} == {"general", "data-alerts", "random"}
    info = await client.conversations_info(channel="C0OLD")
    assert info["channel"]["is_archived"] is True
    with pytest.raises(SlackApiError) as err:
        await client.conversations_list(types="public_channel,nope")
    assert err.value.response["error"] == "invalid_types"


async def test_users_lookup_by_email(fake: FakeSlack, client: AsyncWebClient) -> None:
    found = await client.users_lookupByEmail(email="Bob@Example.com")
    assert found["user"]["id"] == "U0BOB"
    with pytest.raises(SlackApiError) as err:
        await client.users_lookupByEmail(email="nobody@example.com")
    assert err.value.response["error"] == "users_not_found"
