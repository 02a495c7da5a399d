"""The ``chat.*`` Web API family of the fake Slack: post, update, delete, ephemeral posts and permalinks,
with Slack's checks (blocks, membership, ``no_text``) and its per-channel posting rate limit."""

from __future__ import annotations

from bot.emulators._core import Json
from bot.emulators.slack.api import ApiError, Method, api_channel, checked_blocks, message_warnings_of, opt_str
from bot.emulators.slack.faults import Faults
from bot.emulators.slack.records import Ephemeral, flag
from bot.emulators.slack.state import SlackState

__all__ = ["ChatApi"]


class ChatApi:
    def __init__(self, state: SlackState, faults: Faults) -> None:
        self.state, self.faults = state, faults

    def methods(self) -> dict[str, Method]:
        return {
            "chat.postMessage": self.post_message,
            "chat.update": self.update,
            "chat.delete": self.delete,
            "chat.postEphemeral": self.post_ephemeral,
            "chat.getPermalink": self.get_permalink,
        }

    def _rate_limit(self, channel_id: str) -> None:
        wait = self.faults.rate_limited(channel_id, self.state.clock())
        if wait is not None:
            raise ApiError("ratelimited", status=429, headers={"Retry-After": str(wait)})

    def post_message(self, params: Json) -> Json:
        channel = api_channel(self.state, params.get("channel"))
        refused = channel.refuses(reply=bool(opt_str(params.get("thread_ts"))))
        if refused is not None:  # archived, or its posting permissions keep the bot out
            raise ApiError(refused)
        self._rate_limit(channel.id)
        text = str(params.get("text") or "")
        blocks = checked_blocks(params)
        if not text and not blocks and not params.get("attachments"):
            raise ApiError("no_text")
        message_warnings_of(self.state, params, text, blocks)
        metadata = params.get("metadata") if isinstance(params.get("metadata"), dict) else None
        message = self.state.post_message(channel, text, blocks, thread_ts=opt_str(params.get("thread_ts")),
                                          metadata=metadata, broadcast=flag(params.get("reply_broadcast")))
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api()}

    def update(self, params: Json) -> Json:
        channel = api_channel(self.state, params.get("channel"))
        message = self.state.find_message(channel.id, params.get("ts"))
        if message is None:
            raise ApiError("message_not_found")
        text = str(params["text"]) if params.get("text") is not None else message.text
        blocks = checked_blocks(params) if params.get("blocks") is not None else message.blocks
        if not text and not blocks:
            raise ApiError("no_text")
        message_warnings_of(self.state, params, text, blocks)
        metadata = params["metadata"] if isinstance(params.get("metadata"), dict) else message.metadata
        message.edit(text=text, blocks=blocks, metadata=metadata, at=self.state.clock(), ts=self.state.next_ts())
        return {"channel": channel.id, "ts": message.ts, "text": text, "message": message.to_api()}

    def delete(self, params: Json) -> Json:
        channel = api_channel(self.state, params.get("channel"))
        message = self.state.find_message(channel.id, params.get("ts"))
        if message is None:
            raise ApiError("message_not_found")
        message.deleted = True
        return {"channel": channel.id, "ts": message.ts}

    def post_ephemeral(self, params: Json) -> Json:
        channel = api_channel(self.state, params.get("channel"))
        user = opt_str(params.get("user"))
        if user is None or user not in self.state.users:
            raise ApiError("user_not_found")
        if user not in channel.members:
            raise ApiError("user_not_in_channel")
        text = str(params.get("text") or "")
        blocks = checked_blocks(params)
        if not text and not blocks and not params.get("attachments"):
            raise ApiError("no_text")
        message_warnings_of(self.state, params, text, blocks)
        ephemeral = Ephemeral(channel.id, user, self.state.next_ts(), text, blocks, "chat.postEphemeral",
                              thread_ts=opt_str(params.get("thread_ts")))
        self.state.ephemeral_posts.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    def get_permalink(self, params: Json) -> Json:
        channel = api_channel(self.state, params.get("channel"))
        message = self.state.find_message(channel.id, params.get("message_ts"))
        if message is None:
            raise ApiError("message_not_found")
        link = f"{self.state.url}/archives/{channel.id}/p{message.ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}
