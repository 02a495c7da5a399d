"""Helpers for the Slack-surface scenario tests: ask a command and get its reply, click as someone else,
read the audit log, and gather everything the fake Slack recorded (for "this string never appeared" checks).

Kept apart from ``harness.py`` so the world itself stays as it is; everything here goes through the real
HTTP boundary (signed requests into the bot, the fake's records of what the bot sent back)."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Awaitable
from typing import Any

from bot.emulators.slack import payloads
from bot.emulators.slack.server import AppResponse, Ephemeral, Message
from bot.store.records import AuditEntry
from tests.scenario.harness import World

#: a workspace member with no rights at all: not an admin, not an owner, not in any user group
STRANGER = "U0DAVE"
#: what an unexpected exception turns into: a reply must never be this, nor a stack trace
OUR_FAULT = ("Something went wrong on our side", "Traceback", 'File "')
_RUN_NUMBER = re.compile(r"\(run #(\d+)\)")


def add_stranger(w: World) -> str:
    w.slack.add_user(STRANGER, "dave", real_name="Dave Doe")
    return STRANGER


async def reply_to(
    w: World, send: Awaitable[AppResponse], *, user: str = "U0ALICE", channel: str = "C0GENERAL", timeout: float = 5.0
) -> tuple[AppResponse, Ephemeral]:
    """Send (a command, a click…) and wait for the first ephemeral ``user`` gets after it: in the ack or later."""
    before = len(w.slack.ephemerals(channel, user))
    response = await send
    assert response.ok, f"HTTP {response.status}: {response.text}"
    assert response.within_deadline, f"answered in {response.elapsed:.2f}s"
    await w.until(lambda: len(w.slack.ephemerals(channel, user)) > before, timeout, what=f"a reply to {user}")
    reply = w.slack.ephemerals(channel, user)[before]
    assert not any(bad in reply.text for bad in OUR_FAULT), reply.text
    return response, reply


async def answered_in_place(w: World, send: Awaitable[AppResponse], prompt: Ephemeral, *, timeout: float = 5.0) -> Ephemeral:
    """Click a prompt (a confirmation) and wait for its answer to replace it: the prompt, as Slack now shows it."""
    edits = len(prompt.edits)
    response = await send
    assert response.ok, f"HTTP {response.status}: {response.text}"
    assert response.within_deadline, f"answered in {response.elapsed:.2f}s"
    await w.until(lambda: len(prompt.edits) > edits, timeout, what="the prompt replaced by its answer")
    assert not any(bad in prompt.text for bad in OUR_FAULT), prompt.text
    return prompt


async def ask(
    w: World, text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL", timeout: float = 5.0
) -> Ephemeral:
    """A slash command and its ephemeral reply."""
    _, reply = await reply_to(w, w.command(text, user=user, channel=channel), user=user, channel=channel,
                              timeout=timeout)
    return reply


def shown(reply: Ephemeral | Message) -> str:
    """Everything a person sees of a message: its text and every text in its blocks."""
    return reply.text + "\n" + json.dumps(reply.blocks, ensure_ascii=False)


def run_number(message: Ephemeral | Message) -> int:
    found = _RUN_NUMBER.search(message.text)
    assert found, f"no run number in {message.text!r}"
    return int(found.group(1))


async def click_as(
    w: World, ephemeral: Ephemeral, action_id: str, *, user: str, value: Any = None
) -> AppResponse:
    """A correctly signed click on a button of an ephemeral message that was shown to someone else.

    Slack would not show it to ``user``; a forged or replayed payload can still carry it, which is why the
    bot must re-check who clicks. ``value`` replaces the button's value (tampering)."""
    slack = w.slack
    block_id, element = payloads.find_element(ephemeral.blocks, action_id)
    channel = slack.channels[ephemeral.channel]
    target = slack.state.issue_target(user, channel.id, message_ts=ephemeral.ts, ephemeral=True)
    payload = payloads.block_actions(
        token=slack.verification_token, api_app_id=slack.api_app_id, team=slack.state.team(),
        user=slack.state.user_ref(user),
        container={"type": "message", "message_ts": ephemeral.ts, "channel_id": channel.id, "is_ephemeral": True},
        trigger_id=slack.state.issue_trigger(user),
        actions=[payloads.action(element, block_id, value, slack.driver.action_ts())],
        channel={"id": channel.id, "name": channel.name}, response_url=slack.state.response_url(target),
    )
    return await slack.post_raw(urllib.parse.urlencode({"payload": json.dumps(payload)}), kind="block_actions")


def command_body(w: World, text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL") -> str:
    """The form body of a slash command exactly as the fake sends it, for requests signed by hand."""
    slack = w.slack
    person, where = slack.users[user], slack.channels[channel]
    target = slack.state.issue_target(user, where.id)
    fields = payloads.slash_command(
        token=slack.verification_token, team_id=slack.team_id, team_domain=slack.team_domain, channel_id=where.id,
        channel_name=where.name, user_id=user, user_name=person.name, command="/pipeline", text=text,
        api_app_id=slack.api_app_id, response_url=slack.state.response_url(target),
        trigger_id=slack.state.issue_trigger(user),
    )
    return urllib.parse.urlencode(fields)


async def audit_of(w: World, user: str | None = None) -> list[AuditEntry]:
    """The audit log, oldest first, of one user or of everyone."""
    assert w.runtime.store is not None
    entries = list(reversed(await w.runtime.store.audit.entries(limit=1000)))
    return [e for e in entries if user is None or e.user_id == user]


def everything_sent(w: World) -> str:
    """Every text the bot made Slack show or was asked to show: channel messages with all their earlier
    versions, ephemerals (and their edits), response_url posts and acks, views, and the Web API calls' params."""
    slack = w.slack
    parts: list[Any] = []
    for channel in list(slack.channels):
        for message in slack.messages(channel, top_level=False):
            parts += [message.text, message.blocks, [(v.text, v.blocks) for v in message.edits]]
    for ephemeral in slack.state.ephemeral_posts:  # deleted ones too: they were shown once
        parts += [ephemeral.text, ephemeral.blocks, [(v.text, v.blocks) for v in ephemeral.edits]]
    parts += [r.body for r in slack.responses()]
    parts += [v.view for v in slack.views.values()]
    parts += [c.params for c in slack.calls]
    return json.dumps(parts, ensure_ascii=False, default=str)
