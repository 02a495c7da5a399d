"""The fake Slack's state: the workspace (users, channels, user groups), the app's identity, and everything
recorded: Web API calls, channel histories, ephemerals, response posts, views, the trigger_ids and
response_urls issued, and the deliveries sent to the app.

The Web API families (``chat.py``, ``conversations.py``, ``views.py``), the response URLs (``responses.py``),
the driver (``driver.py``) and the page (``page.py``) all work on one ``SlackState``; it knows nothing of
HTTP. ``add_listener`` tells the page when what people would see has changed.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import secrets
import time
from collections.abc import Callable, Iterable

from bot.emulators._core import Json, JsonValue
from bot.emulators.slack import payloads
from bot.emulators.slack.records import (
    ApiCall,
    Channel,
    Delivery,
    Ephemeral,
    FakeView,
    Message,
    ResponsePost,
    Target,
    Trigger,
    User,
    Usergroup,
)

__all__ = ["DEFAULT_CHANNELS", "DEFAULT_GROUPS", "DEFAULT_USERS", "SlackState", "short"]

DEFAULT_USERS = (
    User("U0ALICE", "alice", "Alice Andersen", "Alice", tz="Europe/Oslo", is_admin=True, email="alice@example.com"),
    User("U0BOB", "bob", "Bob Berg", "bob", tz="America/New_York", email="bob@example.com"),
    User("U0CAROL", "carol", "Carol Chen", "Carol C.", tz="Asia/Tokyo", email="carol@example.com"),
)
# id, name, bot is a member, private, members (None: every default user)
DEFAULT_CHANNELS: tuple[tuple[str, str, bool, bool, tuple[str, ...] | None], ...] = (
    ("C0GENERAL", "general", True, False, None),
    ("C0ALERTS", "data-alerts", True, False, None),
    ("C0RANDOM", "random", False, False, None),
    ("C0OPS", "data-ops", True, True, ("U0ALICE", "U0BOB")),
    ("C0PRIVATE", "private-ops", False, True, ("U0ALICE",)),
)
DEFAULT_GROUPS = (
    Usergroup("S0DATAENG", "data-eng", "Data engineering", ("U0ALICE", "U0BOB")),
    Usergroup("S0ONCALL", "data-oncall", "Data on-call", ("U0CAROL",)),
)


def short(value: JsonValue, size: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= size else text[: size - 1] + "…"


class SlackState:
    """One fake workspace and what happened in it. See the module docstring."""

    def __init__(
        self,
        *,
        bot_token: str,
        signing_secret: str,
        team_id: str,
        bot_user_id: str,
        team_domain: str,
        api_app_id: str,
        bot_id: str,
        verification_token: str,
        clock: Callable[[], float],
    ) -> None:
        self.bot_token, self.signing_secret = bot_token, signing_secret
        self.team_id, self.team_domain, self.api_app_id = team_id, team_domain, api_app_id
        self.bot_user_id, self.bot_id, self.verification_token = bot_user_id, bot_id, verification_token
        self.clock = clock
        #: the fake's base URL once started; the app's request URL (``/slack/events``) once connected
        self.url = ""
        self.app_url: str | None = None

        self.calls: list[ApiCall] = []
        self.deliveries: list[Delivery] = []
        self.warnings: list[str] = []
        self.views: dict[str, FakeView] = {}
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, Usergroup] = {}

        #: every message by channel and every ephemeral and response post, deleted ones included
        self.channel_messages: dict[str, list[Message]] = {}
        self.ephemeral_posts: list[Ephemeral] = []
        self.response_posts: list[ResponsePost] = []
        self.homes: dict[str, str] = {}  # user → Home tab view id
        #: a workflow token (``bot_access_token`` of a ``function_executed`` event) → why it is refused now, or ""
        #: while it is good (``functions.FunctionsApi.token_refusal``)
        self.workflow_token_refusal: Callable[[str], str | None] = lambda token: None
        self.stacks: dict[str, list[str]] = {}  # user → modal view ids, bottom first
        self.triggers: dict[str, Trigger] = {}
        self.targets: dict[str, Target] = {}  # response_url token → where its posts land
        #: warnings of the Web API call or response post being handled
        self.call_warnings: list[str] = []
        self._last_ts_us = 0
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[], None]] = []
        #: how many times what people would see changed (messages, ephemerals, views): the page follows it
        self.changes = 0

        self.add_user(bot_user_id, "pipeline-bot", real_name="Pipeline Bot", is_bot=True, join=False)
        for user in DEFAULT_USERS:
            self.users[user.id] = user
        for channel_id, name, member, private, members in DEFAULT_CHANNELS:
            self.add_channel(channel_id, name, member=member, private=private, members=members)
        for group in DEFAULT_GROUPS:
            self.usergroups[group.id] = group

    # -- configuration ---------------------------------------------------------------------------

    def add_user(
        self,
        id: str,
        name: str,
        *,
        real_name: str | None = None,
        display_name: str | None = None,
        tz: str = "UTC",
        is_admin: bool = False,
        is_bot: bool = False,
        email: str | None = None,
        join: bool = True,
    ) -> User:
        """A workspace member; ``join`` adds them to every public channel (as a new hire's defaults)."""
        user = User(id, name, real_name or name, display_name if display_name is not None else name,
                    tz=tz, is_admin=is_admin, is_bot=is_bot, email=email)
        self.users[id] = user
        if join:
            for channel in self.channels.values():
                if not channel.private and channel.im_user is None:
                    channel.members.add(id)
        return user

    def add_channel(
        self,
        id: str,
        name: str,
        *,
        member: bool = True,
        private: bool = False,
        members: Iterable[str] | None = None,
        archived: bool = False,
        posting: str = "anyone",
    ) -> Channel:
        """A channel; ``member`` says whether the bot is in it; ``members`` default to every human user; ``posting``
        who may post in it (``Channel.posting``)."""
        people = set(members) if members is not None else {u.id for u in self.users.values() if not u.is_bot}
        if member:
            people.add(self.bot_user_id)
        channel = Channel(
            id, name.lstrip("#"), private=private, member=member, members=people, archived=archived, posting=posting
        )
        self.channels[id] = channel
        self.channel_messages.setdefault(id, [])
        return channel

    def add_usergroup(self, id: str, handle: str, members: Iterable[str], *, name: str | None = None) -> Usergroup:
        group = Usergroup(id, handle, name or handle, tuple(members))
        self.usergroups[id] = group
        return group

    # -- change notification ---------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (no arguments, must not block) after anything is recorded: a Web API call, a
        response_url post, an ack shown, a modal submitted or closed. Returns the function that removes it."""
        self._listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    def changed(self) -> None:
        self.changes += 1
        for callback in list(self._listeners):
            callback()

    # -- inspection ------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def message(self, channel: str, ts: str) -> Message:
        """The message (not deleted) at ``ts``; ``KeyError`` naming what the channel holds when absent."""
        found = self.find_message(self.known_channel(channel).id, ts)
        if found is None:
            held = [m.ts for m in self.channel_messages.get(self.known_channel(channel).id, []) if not m.deleted]
            raise KeyError(f"no message {ts} in {channel}; it holds {held}")
        return found

    def messages(self, channel: str, *, thread_ts: str | None = None, top_level: bool = True) -> list[Message]:
        """Messages oldest first: the replies of ``thread_ts`` (parent excluded), else the top-level ones
        (broadcast replies included), else with ``top_level=False`` every message of the channel."""
        stored = [m for m in self.channel_messages.get(self.known_channel(channel).id, []) if not m.deleted]
        if thread_ts is not None:
            return [m for m in stored if m.thread_ts == thread_ts and m.ts != thread_ts]
        if top_level:
            return [m for m in stored if not m.is_reply or m.reply_broadcast]
        return stored

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        channel_id = self.known_channel(channel).id if channel is not None else None
        return [
            e for e in self.ephemeral_posts
            if not e.deleted and (channel_id is None or e.channel == channel_id) and (user is None or e.user == user)
        ]

    def responses(self, user: str | None = None) -> list[ResponsePost]:
        return [r for r in self.response_posts if user is None or r.user == user]

    def view(self, view_id: str) -> FakeView:
        return self.views[view_id]

    def home(self, user: str) -> FakeView | None:
        view_id = self.homes.get(user)
        return self.views[view_id] if view_id else None

    def open_modals(self, user: str) -> list[FakeView]:
        """The user's modal stack, bottom first."""
        return [self.views[v] for v in self.stacks.get(user, []) if not self.views[v].closed]

    def describe(self) -> str:
        """A readable summary of everything recorded: for failure messages."""
        lines = [f"API calls ({len(self.calls)}):"]
        for call in self.calls:
            outcome = "ok" if call.ok else f"{call.error} (HTTP {call.status})"
            brief = {k: short(v) for k, v in call.params.items() if k in ("channel", "ts", "text", "user", "user_id")}
            lines.append(f"  {call.method} {outcome} {brief}")
        for channel_id, stored in self.channel_messages.items():
            if stored:
                lines.append(f"messages in {channel_id} ({self.channels[channel_id].name}):")
                lines.extend(
                    f"  {m.ts}{f' thread {m.thread_ts}' if m.is_reply else ''}{' (deleted)' if m.deleted else ''}"
                    f" edits={len(m.edits)} {short(m.text)!r}"
                    for m in stored
                )
        lines.extend(
            f"ephemeral to {e.user} in {e.channel} ({e.source}): {short(e.text)!r}" for e in self.ephemeral_posts
        )
        lines.extend(
            f"response_url post by {r.user} ({r.source}) {r.status} {r.error or ''}: {short(r.body)}"
            for r in self.response_posts
        )
        lines.extend(
            f"view {v.id} {v.type} for {v.user} callback={v.callback_id!r}{' closed' if v.closed else ''}"
            for v in self.views.values()
        )
        lines.extend(f"delivery {d.kind} → HTTP {d.response.status} {short(d.response.text)}" for d in self.deliveries)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    # -- lookups ---------------------------------------------------------------------------------

    def lookup_channel(self, ref: JsonValue) -> Channel | None:
        """A channel by id or name (``#`` optional); a user id gives the bot's DM with them."""
        if not isinstance(ref, str) or not ref.strip():
            return None
        ref = ref.strip()
        if ref in self.channels:
            return self.channels[ref]
        name = ref.removeprefix("#")
        for channel in self.channels.values():
            if channel.name == name and channel.im_user is None:
                return channel
        if ref in self.users:  # posting to a user id opens the DM, as chat.postMessage does
            return self.dm(ref)
        return None

    def dm(self, user: str) -> Channel:
        channel_id = "D" + user[1:]
        if channel_id not in self.channels:
            self.channels[channel_id] = Channel(channel_id, user, private=True, members={user, self.bot_user_id},
                                                im_user=user)
            self.channel_messages[channel_id] = []
        return self.channels[channel_id]

    def known_channel(self, ref: str) -> Channel:
        """The channel a test names; ``KeyError`` listing the known ones."""
        channel = self.lookup_channel(ref)
        if channel is None:
            raise KeyError(f"unknown channel {ref!r}; known: {sorted(c.name for c in self.channels.values())}")
        return channel

    def known_user(self, user: str) -> User:
        """The user a test names; ``KeyError`` listing the known ones."""
        if user not in self.users:
            raise KeyError(f"unknown user {user!r}: add it with FakeSlack.add_user; known: {sorted(self.users)}")
        return self.users[user]

    def find_message(self, channel_id: str, ts: JsonValue) -> Message | None:
        for message in self.channel_messages.get(channel_id, []):
            if message.ts == ts and not message.deleted:
                return message
        return None

    # -- ids -------------------------------------------------------------------------------------

    def next_ts(self) -> str:
        """Unique and increasing, near the real clock (apps compute ages from ts)."""
        self._last_ts_us = max(time.time_ns() // 1000, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def next_id(self) -> int:
        return next(self._ids)

    def issue_trigger(self, user: str) -> str:
        """A ``trigger_id`` for a payload sent as ``user``; ``views.py`` enforces its limits."""
        trigger_id = f"{self.next_id()}.{self.team_id[1:] or '1'}.{secrets.token_hex(16)}"
        self.triggers[trigger_id] = Trigger(user, self.clock())
        return trigger_id

    def issue_target(
        self, user: str, channel: str, *, message_ts: str | None = None, ephemeral: bool = False
    ) -> Target:
        """A ``response_url`` for a payload sent as ``user``; ``responses.py`` answers posts to it."""
        target = Target(secrets.token_hex(12), user, channel, self.clock(), message_ts, ephemeral)
        self.targets[target.token] = target
        return target

    def response_url(self, target: Target) -> str:
        return f"{self.url}/_response/{target.token}"

    # -- messages and views, as Slack stores and shows them ---------------------------------------

    def post_message(
        self, channel: Channel, text: str, blocks: list[Json], *, thread_ts: str | None = None,
        metadata: Json | None = None, broadcast: bool = False,
    ) -> Message:
        """Store a message the bot posts (blocks already checked)."""
        if thread_ts is not None:
            parent = self.find_message(channel.id, thread_ts)
            if parent is None:
                self.call_warnings.append(f"thread_ts {thread_ts} is not a message in {channel.id}")
            elif parent.is_reply:
                thread_ts = parent.thread_ts  # a reply to a reply joins the parent's thread
        message = Message(channel.id, self.next_ts(), text, blocks, self.bot_user_id, thread_ts=thread_ts,
                          metadata=metadata, reply_broadcast=broadcast and thread_ts is not None,
                          bot_id=self.bot_id, app_id=self.api_app_id, team=self.team_id)
        self.channel_messages[channel.id].append(message)
        return message

    def message_json(self, message: Message, *, include_metadata: bool = True) -> Json:
        """The message object of the Web API and of payloads, with its thread's summary."""
        out = message.to_api(include_metadata=include_metadata)
        if not message.is_reply:
            replies = self.messages(message.channel, thread_ts=message.ts)
            if replies:
                out.update(
                    thread_ts=message.ts,
                    reply_count=len(replies),
                    reply_users=sorted({r.user for r in replies}),
                    latest_reply=replies[-1].ts,
                )
        return out

    def new_view(self, sent: Json, user: str, *, previous: str | None = None, root: str | None = None) -> FakeView:
        view_id = f"V{self.next_id():010d}"
        view = FakeView(view_id, user, sent, self.new_hash(), root or view_id, previous)
        self.views[view_id] = view
        return view

    def new_hash(self) -> str:
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    def replace_view(self, view: FakeView, sent: Json) -> None:
        view.versions.append(view.view)
        view.view, view.hash = sent, self.new_hash()

    def view_json(self, view: FakeView, *, every_input: bool = False) -> Json:
        """The view object Slack returns and puts in payloads (defaults filled, state included)."""
        sent = view.view
        return {
            "id": view.id, "team_id": self.team_id, "type": view.type, "blocks": copy.deepcopy(view.blocks),
            "private_metadata": view.private_metadata, "callback_id": view.callback_id,
            "state": {"values": view.state(every_input=every_input)}, "hash": view.hash, "title": sent.get("title"),
            "clear_on_close": bool(sent.get("clear_on_close")), "notify_on_close": bool(sent.get("notify_on_close")),
            "close": sent.get("close"), "submit": sent.get("submit"), "previous_view_id": view.previous_view_id,
            "root_view_id": view.root_view_id, "app_id": self.api_app_id, "external_id": view.external_id,
            "app_installed_team_id": self.team_id, "bot_id": self.bot_id,
        }

    def team(self) -> Json:
        return {"id": self.team_id, "domain": self.team_domain}

    def user_ref(self, user: str) -> Json:
        return payloads.user_ref(user, self.known_user(user).name, self.team_id)
