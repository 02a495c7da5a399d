"""What the fake Slack records and serves: messages, ephemerals, views, response posts, acks, and the
workspace's channels, users and user groups. Plain data: ``state.py`` holds them, the other modules change
them as Slack would."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.emulators._core import Json, JsonValue
from bot.emulators.slack import payloads

__all__ = [
    "ApiCall",
    "AppResponse",
    "Channel",
    "Delivery",
    "Ephemeral",
    "FakeView",
    "Json",
    "Message",
    "MessageVersion",
    "ResponsePost",
    "Target",
    "Trigger",
    "User",
    "Usergroup",
    "flag",
]



def flag(value: JsonValue) -> bool:
    """A Slack boolean parameter: ``true``, ``1``, ``"true"``, ``"1"``."""
    return value is True or value == 1 or (isinstance(value, str) and value.lower() in ("1", "true"))

@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Web API request as the fake saw it: ``params`` parsed (JSON fields decoded, token removed)."""

    method: str
    params: Json
    ok: bool
    error: str | None
    at: float
    status: int = 200
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    response: Json = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MessageVersion:
    """A message as it was before an edit."""

    text: str
    blocks: list[Json]
    metadata: Json | None
    at: float


@dataclass(slots=True)
class Message:
    """A message in a channel. ``edits`` holds the previous versions, oldest first."""

    channel: str
    ts: str
    text: str
    blocks: list[Json]
    user: str
    thread_ts: str | None = None
    metadata: Json | None = None
    edits: list[MessageVersion] = field(default_factory=list)
    edited_ts: str | None = None
    deleted: bool = False
    reply_broadcast: bool = False
    bot_id: str | None = None
    app_id: str | None = None
    team: str = ""

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def action_ids(self) -> list[str]:
        return [e["action_id"] for _, e in payloads.interactive_elements(self.blocks)]

    def edit(self, *, text: str, blocks: list[Json], metadata: Json | None, at: float, ts: str) -> None:
        self.edits.append(MessageVersion(self.text, self.blocks, self.metadata, at))
        self.text, self.blocks, self.metadata, self.edited_ts = text, blocks, metadata, ts

    def to_api(self, *, include_metadata: bool = True) -> Json:
        """The message object of the Web API and of interaction payloads."""
        out: Json = {"type": "message", "user": self.user, "text": self.text, "ts": self.ts, "team": self.team}
        if self.bot_id:
            out.update(bot_id=self.bot_id, app_id=self.app_id)
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.reply_broadcast:
            out["subtype"] = "thread_broadcast"
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if include_metadata and self.metadata:
            out["metadata"] = copy.deepcopy(self.metadata)
        return out


@dataclass(slots=True)
class Ephemeral:
    """An ephemeral message one user sees: from chat.postEphemeral, a response_url post or a command's ack."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[Json]
    source: str
    thread_ts: str | None = None
    deleted: bool = False
    edits: list[MessageVersion] = field(default_factory=list)
    token: str | None = None  # the response_url it came through, if any

    @property
    def action_ids(self) -> list[str]:
        return [e["action_id"] for _, e in payloads.interactive_elements(self.blocks)]


@dataclass(frozen=True, slots=True)
class ResponsePost:
    """A post to a response_url (``source="response_url"``) or a command ack with a body (``"ack"``)."""

    token: str
    user: str
    channel: str
    body: Json
    at: float
    status: int
    error: str | None
    source: str
    errors: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")

    @property
    def blocks(self) -> list[Json]:
        blocks = self.body.get("blocks")
        return blocks if isinstance(blocks, list) else []

    @property
    def response_type(self) -> str:
        return str(self.body.get("response_type") or "ephemeral")

    @property
    def replace_original(self) -> bool:
        return flag(self.body.get("replace_original"))

    @property
    def delete_original(self) -> bool:
        return flag(self.body.get("delete_original"))


@dataclass(slots=True)
class FakeView:
    """A modal or Home tab. ``view`` is what the app sent (block_ids filled in); ``values`` the inputs so far."""

    id: str
    user: str
    view: Json
    hash: str
    root_view_id: str
    previous_view_id: str | None = None
    closed: bool = False
    values: dict[str, Json] = field(default_factory=dict)
    versions: list[Json] = field(default_factory=list)

    @property
    def type(self) -> str:
        return str(self.view.get("type"))

    @property
    def blocks(self) -> list[Json]:
        return list(self.view.get("blocks") or [])

    @property
    def callback_id(self) -> str:
        return str(self.view.get("callback_id") or "")

    @property
    def private_metadata(self) -> str:
        return str(self.view.get("private_metadata") or "")

    @property
    def external_id(self) -> str:
        return str(self.view.get("external_id") or "")

    @property
    def action_ids(self) -> list[str]:
        return [e["action_id"] for _, e in payloads.interactive_elements(self.blocks)]

    def state(self, *, every_input: bool = False) -> dict[str, dict[str, Json]]:
        """``state.values`` with the inputs given so far (values for blocks no longer there are dropped);
        ``every_input`` lists untouched inputs too, empty, as a submission does."""
        present = {(b, e["action_id"]) for b, e in payloads.interactive_elements(self.blocks)}
        kept = {b: {a: v for a, v in acts.items() if (b, a) in present} for b, acts in self.values.items()}
        return payloads.state_values(self.blocks, kept, every_input=every_input)


@dataclass(frozen=True, slots=True)
class AppResponse:
    """What the app answered to a request the fake sent: the ack."""

    status: int
    body: JsonValue
    text: str
    headers: Mapping[str, str]
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def within_deadline(self) -> bool:
        """Slack gives up after 3 s (the user sees an error; events are retried)."""
        return self.elapsed < 3.0


@dataclass(frozen=True, slots=True)
class Delivery:
    """A request the fake sent to the app (``payload`` parsed when it parses) and the answer."""

    kind: str
    payload: JsonValue
    response: AppResponse


@dataclass(slots=True)
class Channel:
    id: str
    name: str
    private: bool = False
    member: bool = True
    members: set[str] = field(default_factory=set)
    im_user: str | None = None
    created: int = 1_600_000_000
    archived: bool = False
    #: who may post (Slack's posting permissions, an admin's setting): "anyone"; "admins" (the bot is not one:
    #: ``restricted_action``); "read_only" (nobody: ``restricted_action_read_only_channel``); "threads_only" (replies
    #: only: ``restricted_action_thread_only_channel``); "no_threads" (no replies:
    #: ``restricted_action_non_threadable_channel``)
    posting: str = "anyone"

    def refuses(self, *, reply: bool) -> str | None:
        """The error chat.postMessage answers for a post here (a thread reply when ``reply``), None when it goes."""
        if self.archived:
            return "is_archived"
        if self.posting == "admins":
            return "restricted_action"
        if self.posting == "read_only":
            return "restricted_action_read_only_channel"
        if self.posting == "threads_only" and not reply:
            return "restricted_action_thread_only_channel"
        if self.posting == "no_threads" and reply:
            return "restricted_action_non_threadable_channel"
        return None


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    real_name: str
    display_name: str
    tz: str = "UTC"
    is_bot: bool = False
    is_admin: bool = False
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Usergroup:
    id: str
    handle: str
    name: str
    members: tuple[str, ...]


@dataclass(slots=True)
class Trigger:
    """A ``trigger_id`` the fake sent: one use, within ``TRIGGER_TTL`` (``views.py``)."""

    user: str
    issued_at: float
    used: bool = False


@dataclass(slots=True)
class Target:
    """Where a response_url posts land: the channel, the user, and the message that was clicked."""

    token: str
    user: str
    channel: str
    issued_at: float
    message_ts: str | None = None
    ephemeral: bool = False
    uses: int = 0

