"""Response URLs of the fake Slack: ``{url}/_response/<token>``, issued with each command and click
(``SlackState.issue_target``), usable 5 times within 30 minutes. A post there, or a command's ack body
(``driver.py``), is shown as Slack shows it: an ephemeral, an in-channel message, or a replaced or deleted
original; each is recorded as a ``ResponsePost``."""

from __future__ import annotations

import contextlib
import json

from aiohttp import web

from bot.emulators._core import Json
from bot.emulators.slack import payloads
from bot.emulators.slack.api import blocks_of, opt_str
from bot.emulators.slack.blockkit import message_warnings, validate_message
from bot.emulators.slack.records import Ephemeral, MessageVersion, ResponsePost, Target, flag
from bot.emulators.slack.state import SlackState

__all__ = ["RESPONSE_URL_TTL", "RESPONSE_URL_USES", "ResponseUrls"]

RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5


class ResponseUrls:
    def __init__(self, state: SlackState) -> None:
        self.state = state

    async def on_response_url(self, request: web.Request) -> web.Response:
        state = self.state
        target = state.targets.get(request.match_info["token"])
        if target is None or state.clock() - target.issued_at > RESPONSE_URL_TTL:
            return web.Response(status=404, text="expired_url")
        if target.uses >= RESPONSE_URL_USES:
            return web.Response(status=404, text="used_url")
        target.uses += 1
        try:
            body = json.loads(await request.text())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        status, error = self.apply(target, body, source="response_url")
        state.changed()
        return web.Response(status=status, text=error or "ok")

    def apply(self, target: Target, body: Json, *, source: str) -> tuple[int, str | None]:
        """What Slack does with a response_url post or a command's ack body, recorded as a ResponsePost."""
        state = self.state
        state.call_warnings = []  # post_message may add some; they belong to this post, not to an API call
        blocks = body.get("blocks")
        if isinstance(blocks, str) and blocks.strip()[:1] == "[":
            with contextlib.suppress(ValueError):
                blocks = json.loads(blocks)
        problems = validate_message(blocks) if blocks else []
        status, error = 200, None
        text = str(body.get("text") or "")
        if problems:
            status, error = 400, "invalid_blocks"
        elif flag(body.get("delete_original")):
            self._delete_original(target)
        elif not text and not blocks:
            status, error = 400, "no_text"
        else:
            filled = payloads.fill_block_ids(blocks_of(blocks))
            state.warnings.extend(f"{source}: {w}" for w in message_warnings(text, filled))
            if flag(body.get("replace_original")) and target.message_ts is not None:
                self._replace_original(target, text, filled)
            elif body.get("response_type") == "in_channel":
                state.post_message(state.channels[target.channel], text, filled,
                                   thread_ts=opt_str(body.get("thread_ts")))
            else:
                state.ephemeral_posts.append(Ephemeral(target.channel, target.user, state.next_ts(), text, filled,
                                                       source, thread_ts=opt_str(body.get("thread_ts")),
                                                       token=target.token))
        state.warnings.extend(f"{source}: {w}" for w in state.call_warnings)
        state.response_posts.append(ResponsePost(target.token, target.user, target.channel, body, state.clock(),
                                                 status, error, source, tuple(problems)))
        return status, error

    def _original_ephemeral(self, target: Target) -> Ephemeral | None:
        return next(
            (e for e in self.state.ephemeral_posts if e.ts == target.message_ts and e.user == target.user), None
        )

    def _delete_original(self, target: Target) -> None:
        if target.ephemeral:
            original = self._original_ephemeral(target)
            if original is not None:
                original.deleted = True
        elif target.message_ts is not None:
            message = self.state.find_message(target.channel, target.message_ts)
            if message is not None:
                message.deleted = True

    def _replace_original(self, target: Target, text: str, blocks: list[Json]) -> None:
        state = self.state
        if target.ephemeral:
            original = self._original_ephemeral(target)
            if original is not None:
                original.edits.append(MessageVersion(original.text, original.blocks, None, state.clock()))
                original.text, original.blocks = text, blocks
            return
        message = state.find_message(target.channel, target.message_ts)
        if message is not None:
            message.edit(text=text, blocks=blocks, metadata=message.metadata, at=state.clock(), ts=state.next_ts())
