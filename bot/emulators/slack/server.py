"""FakeSlack: a local HTTP server that stands in for Slack in the bot's scenario tests.

Two directions, as with the real Slack:

* **Slack → app**: ``command``, ``click``, ``click_ephemeral``, ``click_view``, ``submit``, ``open_home``,
  ``send_event`` and ``post_raw`` build the payloads Slack sends (``payloads.py``), sign them
  (``signing.py``) and POST them to ``app_url``, the bot's real HTTP endpoint. ``trigger_id`` and
  ``response_url`` values they carry are issued and remembered here, so their 3-second and 5-use /
  30-minute limits are enforced when the bot uses them.
* **app → Slack**: the Web API at ``{url}/api/<method>`` (point ``AsyncWebClient(base_url=f"{url}/api/")``
  at it) and the response URLs at ``{url}/_response/<token>``. Every call is recorded, every block is
  validated (``blockkit.py``) and answered as Slack answers, including its error codes; the resulting
  channel history, ephemerals, modals and Home tabs can be inspected and awaited (``wait_for``).

The page (``page.py``, ``web/``): ``GET /`` serves a Slack-like page over this same state, for people
(``pipeline-bot demo``) and browser tests; what it does goes through the methods above, and it follows
changes through ``add_listener``.

Faults (``fail_next``, ``delay_next``, a per-channel posting rate limit) reproduce Slack's 429 +
``Retry-After``, 5xx and error answers, so the bot's retry and pacing paths run against HTTP, not mocks.

Time: ``clock`` (default ``time.time``) drives expiry and rate limits so tests can move it; message
``ts`` values and signing timestamps use the real clock, because apps compare them with theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import itertools
import json
import math
import secrets
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from bot.emulators.slack import payloads
from bot.emulators.slack.blockkit import message_warnings, validate_message, validate_view
from bot.emulators.slack.signing import signature, signed_headers

__all__ = [
    "ApiCall",
    "AppResponse",
    "Channel",
    "Delivery",
    "Ephemeral",
    "FakeSlack",
    "FakeView",
    "Message",
    "MessageVersion",
    "ResponsePost",
    "User",
    "Usergroup",
]

Json = dict[str, Any]
T = TypeVar("T")

JSON_FIELDS = ("blocks", "attachments", "metadata", "view", "response_action")
TRIGGER_TTL = 3.0
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5
MAX_PUSHED_VIEWS = 3
FORM = "application/x-www-form-urlencoded"


# -- records ---------------------------------------------------------------------------------------


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
        return _flag(self.body.get("replace_original"))

    @property
    def delete_original(self) -> bool:
        return _flag(self.body.get("delete_original"))


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
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
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
    body: Any
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
    payload: Any
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
class _Fault:
    status: int
    error: str | None
    retry_after: int | None
    delay: float = 0.0


@dataclass(slots=True)
class _Trigger:
    user: str
    issued_at: float
    used: bool = False


@dataclass(slots=True)
class _Target:
    """Where a response_url posts land: the channel, the user, and the message that was clicked."""

    token: str
    user: str
    channel: str
    issued_at: float
    message_ts: str | None = None
    ephemeral: bool = False
    uses: int = 0


class _ApiError(Exception):
    def __init__(
        self, error: str, *, status: int = 200, headers: Mapping[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(error)
        self.error, self.status, self.headers, self.extra = error, status, dict(headers or {}), extra


# -- helpers ------------------------------------------------------------------------------------------


def _flag(value: Any) -> bool:
    return value is True or value == 1 or (isinstance(value, str) and value.lower() in ("1", "true"))


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


async def _read_params(request: web.Request) -> Json:
    """Query string plus a form or JSON body, with JSON-in-form fields (``blocks``…) decoded."""
    params: Json = dict(request.query)
    raw = await request.read()
    if raw.strip():
        text = raw.decode("utf-8")
        if request.content_type == "application/json" or text.lstrip().startswith("{"):
            body = json.loads(text)
            if not isinstance(body, dict):
                raise ValueError("body is not a JSON object")
            params.update(body)
        else:
            params.update(urllib.parse.parse_qsl(text, keep_blank_values=True))
    for key in JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            # unparseable: left a string, which validation then reports as Slack would (invalid_blocks…)
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def _blocks_of(value: Any) -> list[Json]:
    return value if isinstance(value, list) else []


def _short(value: Any, size: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= size else text[: size - 1] + "…"


def _readable(raw: bytes, content_type: str) -> Any:
    """A sent body as data when it parses (JSON, form, form with ``payload=``), else as text."""
    text = raw.decode("utf-8", "replace")
    try:
        if content_type.startswith("application/json"):
            return json.loads(text)
        form = dict(urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=True))
        return json.loads(form["payload"]) if set(form) == {"payload"} else form
    except (ValueError, RecursionError):  # a garbage body sent on purpose (security tests) is recorded as it came
        return text


def _hoist(items: list[T], start: int, same: Callable[[T], bool]) -> None:
    """Move the last item before the first one from ``start`` on that ``same`` accepts."""
    last = items.pop()
    index = next((i for i in range(start, len(items)) if same(items[i])), len(items))
    items.insert(index, last)


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


class FakeSlack:
    """A local Slack: Web API, response URLs, and signed requests into the app. See the module docstring."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test",  # noqa: S107 - a fake credential the fake itself checks
        signing_secret: str = "fake-signing-secret",  # noqa: S107
        team_id: str = "T0001",
        bot_user_id: str = "U0BOT",
        app_url: str | None = None,
        team_domain: str = "fake-team",
        api_app_id: str = "A0APP",
        bot_id: str = "B0BOT",
        verification_token: str = "fake-verification-token",  # noqa: S107
        rate_limit_posts_per_second: float | None = None,
        rate_limit_burst: int = 3,
        app_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bot_token, self.signing_secret = bot_token, signing_secret
        self.team_id, self.team_domain, self.api_app_id = team_id, team_domain, api_app_id
        self.bot_user_id, self.bot_id, self.verification_token = bot_user_id, bot_id, verification_token
        self.app_url = app_url
        self.rate_limit_posts_per_second = rate_limit_posts_per_second
        self.rate_limit_burst = rate_limit_burst
        self.app_timeout = app_timeout
        self.clock = clock
        self.url = ""

        self.calls: list[ApiCall] = []
        self.deliveries: list[Delivery] = []
        self.warnings: list[str] = []
        self.views: dict[str, FakeView] = {}
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.usergroups: dict[str, Usergroup] = {}

        self._messages: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self._responses: list[ResponsePost] = []
        self._homes: dict[str, str] = {}
        self._stacks: dict[str, list[str]] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._targets: dict[str, _Target] = {}
        self._faults: dict[str, deque[_Fault]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}
        self._call_warnings: list[str] = []
        self._last_ts_us = 0
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._listeners: list[Callable[[], None]] = []
        #: how many times what people would see changed (messages, ephemerals, views): the page follows it
        self.changes = 0
        self._methods: dict[str, Callable[[Json], Json]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.members": self._conversations_members,
            "conversations.open": self._conversations_open,
        }

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
    ) -> Channel:
        """A channel; ``member`` says whether the bot is in it; ``members`` default to every human user."""
        people = set(members) if members is not None else {u.id for u in self.users.values() if not u.is_bot}
        if member:
            people.add(self.bot_user_id)
        channel = Channel(id, name.lstrip("#"), private=private, member=member, members=people)
        self.channels[id] = channel
        self._messages.setdefault(id, [])
        return channel

    def add_usergroup(self, id: str, handle: str, members: Iterable[str], *, name: str | None = None) -> Usergroup:
        group = Usergroup(id, handle, name or handle, tuple(members))
        self.usergroups[id] = group
        return group

    # -- faults ----------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` fail. ``error`` alone: HTTP 200 ``{"ok": false, "error"}``;
        default: HTTP 429 ``ratelimited`` with ``Retry-After``; ``status=500/503``: a server error."""
        if status is None:
            status = 200 if error is not None else 429
        if error is None:
            error = {200: "fatal_error", 429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}.get(
                status, f"http_{status}"
            )
        fault = _Fault(status=status, error=error, retry_after=retry_after if status == 429 else None)
        self._faults.setdefault(method, deque()).extend(copy.copy(fault) for _ in range(times))

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer normally after ``seconds`` (client timeouts)."""
        fault = _Fault(status=0, error=None, retry_after=None, delay=seconds)
        self._faults.setdefault(method, deque()).extend(copy.copy(fault) for _ in range(times))

    def clear_faults(self) -> None:
        self._faults.clear()

    # -- change notification ---------------------------------------------------------------------

    def add_listener(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (no arguments, must not block) after anything is recorded: a Web API call, a
        response_url post, an ack shown, a modal submitted or closed. Returns the function that removes it."""
        self._listeners.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(callback)

        return remove

    def _changed(self) -> None:
        self.changes += 1
        for callback in list(self._listeners):
            callback()

    # -- lifecycle -------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._on_api)
        app.router.add_post("/_response/{token}", self._on_response_url)
        from bot.emulators.slack.page import add_page_routes  # the page is built on this class: imported late

        add_page_routes(app, self)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Bind (an ephemeral port by default) and return the base URL."""
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.url = f"http://{host}:{self._runner.addresses[0][1]}"
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.app_timeout))
        return self.url

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_url(self) -> str:
        """What the bot sets as ``SLACK_API_URL`` / ``AsyncWebClient(base_url=...)``."""
        return f"{self.url}/api/"

    # -- inspection ------------------------------------------------------------------------------

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def message(self, channel: str, ts: str) -> Message:
        """The message (not deleted) at ``ts``; ``KeyError`` naming what the channel holds when absent."""
        found = self._find_message(self._test_channel(channel).id, ts)
        if found is None:
            held = [m.ts for m in self._messages.get(self._test_channel(channel).id, []) if not m.deleted]
            raise KeyError(f"no message {ts} in {channel}; it holds {held}")
        return found

    def messages(self, channel: str, *, thread_ts: str | None = None, top_level: bool = True) -> list[Message]:
        """Messages oldest first: the replies of ``thread_ts`` (parent excluded), else the top-level ones
        (broadcast replies included), else with ``top_level=False`` every message of the channel."""
        stored = [m for m in self._messages.get(self._test_channel(channel).id, []) if not m.deleted]
        if thread_ts is not None:
            return [m for m in stored if m.thread_ts == thread_ts and m.ts != thread_ts]
        if top_level:
            return [m for m in stored if not m.is_reply or m.reply_broadcast]
        return stored

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        channel_id = self._test_channel(channel).id if channel is not None else None
        return [
            e for e in self._ephemerals
            if not e.deleted and (channel_id is None or e.channel == channel_id) and (user is None or e.user == user)
        ]

    def responses(self, user: str | None = None) -> list[ResponsePost]:
        return [r for r in self._responses if user is None or r.user == user]

    def view(self, view_id: str) -> FakeView:
        return self.views[view_id]

    def home(self, user: str) -> FakeView | None:
        view_id = self._homes.get(user)
        return self.views[view_id] if view_id else None

    def open_modals(self, user: str) -> list[FakeView]:
        """The user's modal stack, bottom first."""
        return [self.views[v] for v in self._stacks.get(user, []) if not self.views[v].closed]

    async def wait_for(
        self,
        predicate: Callable[[FakeSlack], T] | Callable[[], T],
        timeout: float = 5.0,  # noqa: ASYNC109 - a polling deadline, not a cancellation scope
        *,
        interval: float = 0.01,
        what: str | None = None,
    ) -> T:
        """Poll ``predicate`` (given the fake, or nothing) until truthy and return its value. A
        ``LookupError`` inside it counts as "not yet". On timeout: ``AssertionError`` with what was recorded."""
        takes_fake = bool(inspect.signature(predicate).parameters)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                result = predicate(self) if takes_fake else predicate()  # type: ignore[call-arg]
            except LookupError:
                result = None
            if result:
                return result
            if asyncio.get_running_loop().time() >= deadline:
                name = what or getattr(predicate, "__name__", "predicate")
                raise AssertionError(f"timed out after {timeout:g}s waiting for {name}\n{self.describe()}")
            await asyncio.sleep(interval)

    def describe(self) -> str:
        """A readable summary of everything recorded: for failure messages."""
        lines = [f"API calls ({len(self.calls)}):"]
        for call in self.calls:
            outcome = "ok" if call.ok else f"{call.error} (HTTP {call.status})"
            brief = {k: _short(v) for k, v in call.params.items() if k in ("channel", "ts", "text", "user", "user_id")}
            lines.append(f"  {call.method} {outcome} {brief}")
        for channel_id, stored in self._messages.items():
            if stored:
                lines.append(f"messages in {channel_id} ({self.channels[channel_id].name}):")
                lines.extend(
                    f"  {m.ts}{f' thread {m.thread_ts}' if m.is_reply else ''}{' (deleted)' if m.deleted else ''}"
                    f" edits={len(m.edits)} {_short(m.text)!r}"
                    for m in stored
                )
        lines.extend(f"ephemeral to {e.user} in {e.channel} ({e.source}): {_short(e.text)!r}" for e in self._ephemerals)
        lines.extend(
            f"response_url post by {r.user} ({r.source}) {r.status} {r.error or ''}: {_short(r.body)}"
            for r in self._responses
        )
        lines.extend(
            f"view {v.id} {v.type} for {v.user} callback={v.callback_id!r}{' closed' if v.closed else ''}"
            for v in self.views.values()
        )
        lines.extend(f"delivery {d.kind} → HTTP {d.response.status} {_short(d.response.text)}" for d in self.deliveries)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)

    # -- Web API: transport ----------------------------------------------------------------------

    async def _on_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        at = self.clock()
        self._call_warnings = []
        params: Json = {}
        try:
            params = await _read_params(request)
            token = _bearer(request) or _opt_str(params.get("token"))
            params.pop("token", None)
            fault = self._take_fault(method)
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            self._call_warnings = []
            if fault is not None and fault.error is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
                raise _ApiError(fault.error, status=fault.status, headers=headers)
            handler = self._methods.get(method)
            if handler is None:
                raise _ApiError("unknown_method")
            if not token:
                raise _ApiError("not_authed")
            if token != self.bot_token:
                raise _ApiError("invalid_auth")
            try:
                body: Json = {"ok": True, **handler(params)}
            except (ValueError, TypeError, AttributeError) as exc:  # parameters of the wrong shape
                raise _ApiError("invalid_arguments", errors=[f"{type(exc).__name__}: {exc}"]) from exc
            status, headers_out, error, problems = 200, {}, None, ()
        except _ApiError as exc:
            problems = tuple(exc.extra.get("errors", ()))
            body = {"ok": False, "error": exc.error, **exc.extra}
            status, headers_out, error = exc.status, exc.headers, exc.error
        except ValueError as exc:  # unreadable body
            body = {"ok": False, "error": "invalid_json", "detail": str(exc)}
            status, headers_out, error, problems = 200, {}, "invalid_json", ()
        found = tuple(self._call_warnings)
        if found:
            self.warnings.extend(f"{method}: {w}" for w in found)
            body.setdefault("response_metadata", {})["warnings"] = list(found)
        self.calls.append(ApiCall(method, params, error is None, error, at, status, found, problems, body))
        self._changed()
        return web.json_response(body, status=status, headers=headers_out)

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    # -- Web API: channels and messages ------------------------------------------------------------

    def _lookup_channel(self, ref: Any) -> Channel | None:
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
            return self._dm(ref)
        return None

    def _dm(self, user: str) -> Channel:
        channel_id = "D" + user[1:]
        if channel_id not in self.channels:
            self.channels[channel_id] = Channel(channel_id, user, private=True, members={user, self.bot_user_id},
                                                im_user=user)
            self._messages[channel_id] = []
        return self.channels[channel_id]

    def _api_channel(self, ref: Any, *, need_member: bool = False) -> Channel:
        channel = self._lookup_channel(ref)
        if channel is None:
            raise _ApiError("channel_not_found")
        if (channel.private or need_member) and not channel.member and channel.im_user is None:
            raise _ApiError("not_in_channel")
        return channel

    def _test_channel(self, ref: str) -> Channel:
        channel = self._lookup_channel(ref)
        if channel is None:
            raise KeyError(f"unknown channel {ref!r}; known: {sorted(c.name for c in self.channels.values())}")
        return channel

    def _test_user(self, user: str) -> User:
        if user not in self.users:
            raise KeyError(f"unknown user {user!r}: add it with FakeSlack.add_user; known: {sorted(self.users)}")
        return self.users[user]

    def _find_message(self, channel_id: str, ts: Any) -> Message | None:
        for message in self._messages.get(channel_id, []):
            if message.ts == ts and not message.deleted:
                return message
        return None

    def _next_ts(self) -> str:
        """Unique and increasing, near the real clock (apps compute ages from ts)."""
        self._last_ts_us = max(time.time_ns() // 1000, self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _checked_blocks(self, params: Json) -> list[Json]:
        blocks = params.get("blocks")
        if blocks in (None, ""):
            return []
        problems = validate_message(blocks)
        if problems:
            raise _ApiError("invalid_blocks", errors=problems, response_metadata={"messages": problems})
        return payloads.fill_block_ids(blocks)

    def _message_warnings(self, params: Json, text: str, blocks: list[Json]) -> None:
        self._call_warnings.extend(message_warnings(text, blocks))
        for key in ("link_names", "parse"):
            if params.get(key) not in (None, "", False, "none", "0", 0, "false"):
                self._call_warnings.append(f"{key}={params[key]!r}: mentions must come from known ids only")

    def _rate_limit(self, channel_id: str) -> None:
        rate = self.rate_limit_posts_per_second
        if not rate:
            return
        now = self.clock()
        tokens, last = self._buckets.get(channel_id, (float(self.rate_limit_burst), now))
        tokens = min(float(self.rate_limit_burst), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[channel_id] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / rate))
            raise _ApiError("ratelimited", status=429, headers={"Retry-After": str(wait)})
        self._buckets[channel_id] = (tokens - 1.0, now)

    def _message_json(self, message: Message, *, include_metadata: bool = True) -> Json:
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

    def _store(
        self, channel: Channel, text: str, blocks: list[Json], *, thread_ts: str | None = None,
        metadata: Json | None = None, broadcast: bool = False,
    ) -> Message:
        if thread_ts is not None:
            parent = self._find_message(channel.id, thread_ts)
            if parent is None:
                self._call_warnings.append(f"thread_ts {thread_ts} is not a message in {channel.id}")
            elif parent.is_reply:
                thread_ts = parent.thread_ts  # a reply to a reply joins the parent's thread
        message = Message(channel.id, self._next_ts(), text, blocks, self.bot_user_id, thread_ts=thread_ts,
                          metadata=metadata, reply_broadcast=broadcast and thread_ts is not None,
                          bot_id=self.bot_id, app_id=self.api_app_id, team=self.team_id)
        self._messages[channel.id].append(message)
        return message

    def _auth_test(self, params: Json) -> Json:
        return {"url": f"{self.url}/", "team": "Fake Team", "user": self.users[self.bot_user_id].name,
                "team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": self.bot_id,
                "is_enterprise_install": False}

    def _chat_post_message(self, params: Json) -> Json:
        channel = self._api_channel(params.get("channel"))
        self._rate_limit(channel.id)
        text = str(params.get("text") or "")
        blocks = self._checked_blocks(params)
        if not text and not blocks and not params.get("attachments"):
            raise _ApiError("no_text")
        self._message_warnings(params, text, blocks)
        metadata = params.get("metadata") if isinstance(params.get("metadata"), dict) else None
        message = self._store(channel, text, blocks, thread_ts=_opt_str(params.get("thread_ts")), metadata=metadata,
                              broadcast=_flag(params.get("reply_broadcast")))
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api()}

    def _chat_update(self, params: Json) -> Json:
        channel = self._api_channel(params.get("channel"))
        message = self._find_message(channel.id, params.get("ts"))
        if message is None:
            raise _ApiError("message_not_found")
        text = str(params["text"]) if params.get("text") is not None else message.text
        blocks = self._checked_blocks(params) if params.get("blocks") is not None else message.blocks
        if not text and not blocks:
            raise _ApiError("no_text")
        self._message_warnings(params, text, blocks)
        metadata = params["metadata"] if isinstance(params.get("metadata"), dict) else message.metadata
        message.edit(text=text, blocks=blocks, metadata=metadata, at=self.clock(), ts=self._next_ts())
        return {"channel": channel.id, "ts": message.ts, "text": text, "message": message.to_api()}

    def _chat_delete(self, params: Json) -> Json:
        channel = self._api_channel(params.get("channel"))
        message = self._find_message(channel.id, params.get("ts"))
        if message is None:
            raise _ApiError("message_not_found")
        message.deleted = True
        return {"channel": channel.id, "ts": message.ts}

    def _chat_post_ephemeral(self, params: Json) -> Json:
        channel = self._api_channel(params.get("channel"))
        user = _opt_str(params.get("user"))
        if user is None or user not in self.users:
            raise _ApiError("user_not_found")
        if user not in channel.members:
            raise _ApiError("user_not_in_channel")
        text = str(params.get("text") or "")
        blocks = self._checked_blocks(params)
        if not text and not blocks and not params.get("attachments"):
            raise _ApiError("no_text")
        self._message_warnings(params, text, blocks)
        ephemeral = Ephemeral(channel.id, user, self._next_ts(), text, blocks, "chat.postEphemeral",
                              thread_ts=_opt_str(params.get("thread_ts")))
        self._ephemerals.append(ephemeral)
        return {"message_ts": ephemeral.ts}

    def _chat_get_permalink(self, params: Json) -> Json:
        channel = self._api_channel(params.get("channel"))
        message = self._find_message(channel.id, params.get("message_ts"))
        if message is None:
            raise _ApiError("message_not_found")
        link = f"{self.url}/archives/{channel.id}/p{message.ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    # -- Web API: conversations, users, groups ----------------------------------------------------

    def _channel_json(self, channel: Channel) -> Json:
        if channel.im_user is not None:
            return {"id": channel.id, "created": channel.created, "is_im": True, "is_org_shared": False,
                    "user": channel.im_user, "is_user_deleted": False, "priority": 0}
        return {
            "id": channel.id, "name": channel.name, "name_normalized": channel.name,
            "is_channel": not channel.private, "is_group": channel.private, "is_im": False, "is_mpim": False,
            "is_private": channel.private, "is_member": channel.member, "is_archived": False, "is_general":
            channel.name == "general", "created": channel.created, "creator": "U0ALICE",
            "num_members": len(channel.members), "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    def _conversations_info(self, params: Json) -> Json:
        channel = self._lookup_channel(params.get("channel"))
        if channel is None or (channel.private and not channel.member):
            raise _ApiError("channel_not_found")  # the bot cannot see private channels it is not in
        return {"channel": self._channel_json(channel)}

    def _conversations_history(self, params: Json) -> Json:
        channel = self._api_channel(params.get("channel"), need_member=True)
        oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or math.inf)
        inclusive = _flag(params.get("inclusive"))
        limit = max(1, min(_int(params.get("limit"), 100), 999))
        offset = _int(params.get("cursor"), 0)

        def in_range(ts: str) -> bool:
            t = float(ts)
            return (oldest <= t <= latest) if inclusive else (oldest < t < latest)

        chosen = [m for m in reversed(self.messages(channel.id)) if in_range(m.ts)]
        page = chosen[offset : offset + limit]
        has_more = offset + limit < len(chosen)
        metadata = _flag(params.get("include_all_metadata"))
        return {
            "messages": [self._message_json(m, include_metadata=metadata) for m in page],
            "has_more": has_more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": str(offset + limit) if has_more else ""},
        }

    def _conversations_replies(self, params: Json) -> Json:
        channel = self._api_channel(params.get("channel"), need_member=True)
        parent = self._find_message(channel.id, params.get("ts"))
        if parent is None:
            raise _ApiError("thread_not_found")
        root = parent if not parent.is_reply else self._find_message(channel.id, parent.thread_ts)
        thread = [root] if root is not None else []
        thread += self.messages(channel.id, thread_ts=root.ts if root else parent.thread_ts)
        metadata = _flag(params.get("include_all_metadata"))
        return {"messages": [self._message_json(m, include_metadata=metadata) for m in thread], "has_more": False}

    def _conversations_members(self, params: Json) -> Json:
        channel = self._lookup_channel(params.get("channel"))
        if channel is None or (channel.private and not channel.member):
            raise _ApiError("channel_not_found")
        members = sorted(channel.members)
        limit, offset = max(1, _int(params.get("limit"), 100)), _int(params.get("cursor"), 0)
        more = offset + limit < len(members)
        return {"members": members[offset : offset + limit],
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""}}

    def _conversations_open(self, params: Json) -> Json:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise _ApiError("not_enough_users" if not users else "too_many_users")
        if users[0] not in self.users:
            raise _ApiError("user_not_found")
        return {"channel": {"id": self._dm(users[0]).id}}

    def _user_json(self, user: User) -> Json:
        out: Json = {
            "id": user.id, "team_id": self.team_id, "name": user.name, "deleted": False,
            "real_name": user.real_name, **payloads.tz_fields(user.tz), "is_admin": user.is_admin,
            "is_owner": False, "is_bot": user.is_bot, "is_app_user": False, "updated": 1_600_000_000,
            "profile": {"real_name": user.real_name, "display_name": user.display_name,
                        "real_name_normalized": user.real_name, "display_name_normalized": user.display_name,
                        "team": self.team_id},
        }
        if user.email:
            out["profile"]["email"] = user.email
        if user.is_bot:
            out["profile"]["bot_id"] = self.bot_id
        return out

    def _users_info(self, params: Json) -> Json:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise _ApiError("user_not_found")
        return {"user": self._user_json(user)}

    def _users_list(self, params: Json) -> Json:
        return {"members": [self._user_json(u) for u in self.users.values()],
                "response_metadata": {"next_cursor": ""}}

    def _usergroups_list(self, params: Json) -> Json:
        with_users = _flag(params.get("include_users"))
        groups = []
        for group in self.usergroups.values():
            entry: Json = {"id": group.id, "team_id": self.team_id, "is_usergroup": True, "name": group.name,
                           "handle": group.handle, "user_count": len(group.members), "date_delete": 0}
            if with_users:
                entry["users"] = list(group.members)
            groups.append(entry)
        return {"usergroups": groups}

    def _usergroups_users_list(self, params: Json) -> Json:
        group = self.usergroups.get(str(params.get("usergroup") or ""))
        if group is None:
            raise _ApiError("no_such_subteam")
        return {"users": list(group.members)}

    # -- Web API: views ----------------------------------------------------------------------------

    def _view_param(self, params: Json) -> Json:
        view = params.get("view")
        if not isinstance(view, dict):
            raise _ApiError("invalid_arguments", errors=["view must be a JSON object"])
        problems = validate_view(view)
        if problems:
            raise _ApiError("invalid_arguments", errors=problems, response_metadata={"messages": problems})
        return {**view, "blocks": payloads.fill_block_ids(list(view.get("blocks") or []))}

    def _view_json(self, view: FakeView, *, every_input: bool = False) -> Json:
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

    def _new_view(self, sent: Json, user: str, *, previous: str | None = None, root: str | None = None) -> FakeView:
        view_id = f"V{next(self._ids):010d}"
        view = FakeView(view_id, user, sent, self._new_hash(), root or view_id, previous)
        self.views[view_id] = view
        return view

    def _new_hash(self) -> str:
        return f"{int(time.time())}.{secrets.token_hex(4)}"

    def _take_trigger(self, params: Json) -> _Trigger:
        pointer = str(params.get("trigger_id") or params.get("interactivity_pointer") or "")
        trigger = self._triggers.get(pointer)
        if trigger is None:
            raise _ApiError("invalid_trigger_id")
        if trigger.used:
            raise _ApiError("exchanged_trigger_id")
        if self.clock() - trigger.issued_at > TRIGGER_TTL:
            raise _ApiError("expired_trigger_id")
        return trigger

    def _views_open(self, params: Json) -> Json:
        trigger = self._take_trigger(params)
        sent = self._view_param(params)
        if sent.get("type") != "modal":
            raise _ApiError("invalid_arguments", errors=["views.open takes a modal view"])
        trigger.used = True
        for old in self.open_modals(trigger.user):
            old.closed = True
        view = self._new_view(sent, trigger.user)
        self._stacks[trigger.user] = [view.id]
        return {"view": self._view_json(view)}

    def _views_push(self, params: Json) -> Json:
        trigger = self._take_trigger(params)
        sent = self._view_param(params)
        stack = self.open_modals(trigger.user)
        if not stack:
            raise _ApiError("invalid_arguments", errors=["views.push needs an open modal"])
        if len(stack) >= MAX_PUSHED_VIEWS:
            raise _ApiError("push_limit_reached")
        trigger.used = True
        view = self._new_view(sent, trigger.user, previous=stack[-1].id, root=stack[0].id)
        self._stacks[trigger.user].append(view.id)
        return {"view": self._view_json(view)}

    def _views_update(self, params: Json) -> Json:
        view_id, external_id = _opt_str(params.get("view_id")), _opt_str(params.get("external_id"))
        if view_id is None and external_id is None:
            raise _ApiError("invalid_arguments", errors=["view_id or external_id is required"])
        view = self.views.get(view_id or "") if view_id else next(
            (v for v in self.views.values() if v.external_id == external_id), None)
        if view is None or view.closed:
            raise _ApiError("not_found")
        if params.get("hash") and params["hash"] != view.hash:
            raise _ApiError("hash_conflict")
        sent = self._view_param(params)
        self._replace_view(view, sent)
        return {"view": self._view_json(view)}

    def _replace_view(self, view: FakeView, sent: Json) -> None:
        view.versions.append(view.view)
        view.view, view.hash = sent, self._new_hash()

    def _views_publish(self, params: Json) -> Json:
        user = _opt_str(params.get("user_id"))
        if user is None or user not in self.users:
            raise _ApiError("user_not_found")
        sent = self._view_param(params)
        if sent.get("type") != "home":
            raise _ApiError("invalid_arguments", errors=["views.publish takes a home view"])
        current = self.home(user)
        if current is not None and params.get("hash") and params["hash"] != current.hash:
            raise _ApiError("hash_conflict")
        if current is None:
            current = self._new_view(sent, user)
            self._homes[user] = current.id
        else:
            self._replace_view(current, sent)
        return {"view": self._view_json(current)}

    # -- response URLs -----------------------------------------------------------------------------

    def _issue_trigger(self, user: str) -> str:
        trigger_id = f"{next(self._ids)}.{self.team_id[1:] or '1'}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = _Trigger(user, self.clock())
        return trigger_id

    def _issue_target(
        self, user: str, channel: str, *, message_ts: str | None = None, ephemeral: bool = False
    ) -> _Target:
        target = _Target(secrets.token_hex(12), user, channel, self.clock(), message_ts, ephemeral)
        self._targets[target.token] = target
        return target

    def _response_url(self, target: _Target) -> str:
        return f"{self.url}/_response/{target.token}"

    async def _on_response_url(self, request: web.Request) -> web.Response:
        target = self._targets.get(request.match_info["token"])
        if target is None or self.clock() - target.issued_at > RESPONSE_URL_TTL:
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
        status, error = self._apply_response(target, body, source="response_url")
        self._changed()
        return web.Response(status=status, text=error or "ok")

    def _apply_response(self, target: _Target, body: Json, *, source: str) -> tuple[int, str | None]:
        """What Slack does with a response_url post or a command's ack body, recorded as a ResponsePost."""
        self._call_warnings = []  # _store may add some; they belong to this post, not to an API call
        blocks = body.get("blocks")
        if isinstance(blocks, str) and blocks.strip()[:1] == "[":
            with contextlib.suppress(ValueError):
                blocks = json.loads(blocks)
        problems = validate_message(blocks) if blocks else []
        status, error = 200, None
        text = str(body.get("text") or "")
        if problems:
            status, error = 400, "invalid_blocks"
        elif _flag(body.get("delete_original")):
            self._delete_original(target)
        elif not text and not blocks:
            status, error = 400, "no_text"
        else:
            filled = payloads.fill_block_ids(_blocks_of(blocks))
            self.warnings.extend(f"{source}: {w}" for w in message_warnings(text, filled))
            if _flag(body.get("replace_original")) and target.message_ts is not None:
                self._replace_original(target, text, filled)
            elif body.get("response_type") == "in_channel":
                self._store(self.channels[target.channel], text, filled, thread_ts=_opt_str(body.get("thread_ts")))
            else:
                self._ephemerals.append(Ephemeral(target.channel, target.user, self._next_ts(), text, filled, source,
                                                  thread_ts=_opt_str(body.get("thread_ts")), token=target.token))
        self.warnings.extend(f"{source}: {w}" for w in self._call_warnings)
        self._responses.append(ResponsePost(target.token, target.user, target.channel, body, self.clock(), status,
                                            error, source, tuple(problems)))
        return status, error

    def _original_ephemeral(self, target: _Target) -> Ephemeral | None:
        return next((e for e in self._ephemerals if e.ts == target.message_ts and e.user == target.user), None)

    def _delete_original(self, target: _Target) -> None:
        if target.ephemeral:
            original = self._original_ephemeral(target)
            if original is not None:
                original.deleted = True
        elif target.message_ts is not None:
            message = self._find_message(target.channel, target.message_ts)
            if message is not None:
                message.deleted = True

    def _replace_original(self, target: _Target, text: str, blocks: list[Json]) -> None:
        if target.ephemeral:
            original = self._original_ephemeral(target)
            if original is not None:
                original.edits.append(MessageVersion(original.text, original.blocks, None, self.clock()))
                original.text, original.blocks = text, blocks
            return
        message = self._find_message(target.channel, target.message_ts)
        if message is not None:
            message.edit(text=text, blocks=blocks, metadata=message.metadata, at=self.clock(), ts=self._next_ts())

    # -- requests into the app ---------------------------------------------------------------------

    def _team(self) -> Json:
        return {"id": self.team_id, "domain": self.team_domain}

    def _user_ref(self, user: str) -> Json:
        return payloads.user_ref(user, self._test_user(user).name, self.team_id)

    async def post_raw(
        self,
        body: bytes | str,
        *,
        timestamp: int | str | None = None,
        signature: str | None = None,
        sign: bool = True,
        content_type: str = FORM,
        headers: Mapping[str, str] | None = None,
        kind: str = "raw",
    ) -> AppResponse:
        """POST ``body`` to the app. Signed correctly for ``timestamp`` (default now) unless ``signature``
        is given (used verbatim) or ``sign=False`` (no signature headers): for security tests."""
        if self.app_url is None or self._session is None:
            raise RuntimeError("FakeSlack must be started and app_url set before sending requests to the app")
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        out: dict[str, str] = {"Content-Type": content_type}
        if sign:
            out.update(signed_headers(self.signing_secret, raw, timestamp=timestamp))
            if signature is not None:
                out["X-Slack-Signature"] = signature
        out.update(headers or {})
        started = time.perf_counter()
        async with self._session.post(self.app_url, data=raw, headers=out) as resp:
            text = await resp.text()
            status, answer_headers = resp.status, dict(resp.headers)
        elapsed = time.perf_counter() - started
        parsed: Any = text
        if text.strip()[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        response = AppResponse(status, parsed, text, answer_headers, elapsed)
        self.deliveries.append(Delivery(kind, _readable(raw, content_type), response))
        return response

    async def _send_form(self, fields: Mapping[str, str], kind: str) -> AppResponse:
        return await self.post_raw(urllib.parse.urlencode(fields), kind=kind)

    async def _send_payload(self, payload: Json) -> AppResponse:
        return await self._send_form({"payload": json.dumps(payload)}, kind=str(payload["type"]))

    async def command(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL", command: str = "/pipeline"
    ) -> AppResponse:
        """A slash command. An ack body with text or blocks is shown as Slack shows it (ephemeral or in_channel)."""
        person, where = self._test_user(user), self._test_channel(channel)
        target = self._issue_target(user, where.id)
        fields = payloads.slash_command(
            token=self.verification_token, team_id=self.team_id, team_domain=self.team_domain, channel_id=where.id,
            channel_name=where.name, user_id=user, user_name=person.name, command=command, text=text,
            api_app_id=self.api_app_id, response_url=self._response_url(target), trigger_id=self._issue_trigger(user),
        )
        marks = (len(self._responses), len(self._ephemerals))
        response = await self._send_form(fields, kind="command")
        self._apply_ack(response, target, marks)
        self._changed()
        return response

    def _apply_ack(self, response: AppResponse, target: _Target, marks: tuple[int, int]) -> None:
        """Show the ack body as Slack does. The listener may already have posted to the response_url while
        the ack travelled back; the ack is still what the person saw first, so it goes before those."""
        body = response.body
        if response.status != 200:
            return
        if isinstance(body, str) and body.strip():
            body = {"text": body}
        if isinstance(body, dict) and (body.get("text") or body.get("blocks")):
            count = len(self._ephemerals)
            self._apply_response(target, body, source="ack")
            _hoist(self._responses, marks[0], lambda r: r.token == target.token)
            if len(self._ephemerals) > count:
                _hoist(self._ephemerals, marks[1], lambda e: e.token == target.token)

    async def click(
        self,
        channel: str,
        ts: str,
        action_id: str,
        *,
        user: str = "U0ALICE",
        value: Any = None,
        block_id: str | None = None,
        values: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> AppResponse:
        """A click (or a pick, for selects: ``value`` is the option value) on an element of a channel message.
        ``value`` for a button replaces the button's own value: for tampering tests."""
        where = self._test_channel(channel)
        message = self.message(where.id, ts)
        found_block, element = payloads.find_element(message.blocks, action_id, block_id)
        container: Json = {"type": "message", "message_ts": ts, "channel_id": where.id, "is_ephemeral": False}
        if message.is_reply:
            container["thread_ts"] = message.thread_ts
        payload = payloads.block_actions(
            token=self.verification_token, api_app_id=self.api_app_id, team=self._team(), user=self._user_ref(user),
            container=container, trigger_id=self._issue_trigger(user),
            actions=[payloads.action(element, found_block, value, self._action_ts())],
            state={"values": payloads.state_values(message.blocks, values or {}, every_input=False)},
            channel={"id": where.id, "name": where.name}, message=self._message_json(message, include_metadata=False),
            response_url=self._response_url(self._issue_target(user, where.id, message_ts=ts)),
        )
        return await self._send_payload(payload)

    async def click_ephemeral(
        self,
        channel: str,
        action_id: str,
        *,
        user: str = "U0ALICE",
        ts: str | None = None,
        value: Any = None,
        block_id: str | None = None,
    ) -> AppResponse:
        """A click in the newest ephemeral message ``user`` sees in ``channel`` with that action (or at ``ts``).
        Slack sends no ``message`` for ephemeral messages: the app must rely on ``response_url``."""
        candidates = [e for e in self.ephemerals(channel, user) if (ts is None or e.ts == ts) and
                      any(a == action_id for a in e.action_ids)]
        if not candidates:
            seen = [(e.ts, e.action_ids) for e in self.ephemerals(channel, user)]
            raise LookupError(f"no ephemeral for {user} in {channel} has action {action_id!r}; seen: {seen}")
        ephemeral = candidates[-1]
        found_block, element = payloads.find_element(ephemeral.blocks, action_id, block_id)
        where = self.channels[ephemeral.channel]
        payload = payloads.block_actions(
            token=self.verification_token, api_app_id=self.api_app_id, team=self._team(), user=self._user_ref(user),
            container={"type": "message", "message_ts": ephemeral.ts, "channel_id": where.id, "is_ephemeral": True},
            trigger_id=self._issue_trigger(user), actions=[payloads.action(element, found_block, value,
                                                                           self._action_ts())],
            channel={"id": where.id, "name": where.name},
            response_url=self._response_url(
                self._issue_target(user, where.id, message_ts=ephemeral.ts, ephemeral=True)),
        )
        return await self._send_payload(payload)

    async def click_view(
        self,
        view_id: str,
        action_id: str,
        *,
        user: str | None = None,
        value: Any = None,
        block_id: str | None = None,
        values: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> AppResponse:
        """A click or pick inside a modal or the Home tab (``container.type == "view"``). Picks and ``values``
        are kept in the view's state, as Slack keeps what the person typed."""
        view = self.views[view_id]
        who = user or view.user
        found_block, element = payloads.find_element(view.blocks, action_id, block_id)
        self._remember(view, values or {})
        if element.get("type") != "button" and value is not None:
            self._remember(view, {found_block: {action_id: value}})
        payload = payloads.block_actions(
            token=self.verification_token, api_app_id=self.api_app_id, team=self._team(), user=self._user_ref(who),
            container={"type": "view", "view_id": view.id}, trigger_id=self._issue_trigger(who),
            actions=[payloads.action(element, found_block, value, self._action_ts())],
            state={"values": view.state()}, view=self._view_json(view),
        )
        return await self._send_payload(payload)

    def _remember(self, view: FakeView, values: Mapping[str, Mapping[str, Any]]) -> None:
        payloads.state_values(view.blocks, values)  # raises on ids the view lacks
        for block_id, by_action in values.items():
            view.values.setdefault(block_id, {}).update(by_action)

    async def submit(
        self, view_id: str, values: Mapping[str, Mapping[str, Any]] | None = None, *, user: str | None = None
    ) -> AppResponse:
        """Submit a modal with ``{block_id: {action_id: value}}``; the ack's ``response_action`` (errors,
        update, push, clear) or its absence (close) is applied to the modal stack as Slack does."""
        view = self.views[view_id]
        if view.type != "modal" or view.closed:
            raise LookupError(f"view {view_id} is not an open modal")
        who = user or view.user
        self._remember(view, values or {})
        payload = payloads.view_submission(token=self.verification_token, api_app_id=self.api_app_id,
                                           team=self._team(), user=self._user_ref(who),
                                           view=self._view_json(view, every_input=True),
                                           trigger_id=self._issue_trigger(who))
        response = await self._send_payload(payload)
        self._apply_view_ack(view, response)
        self._changed()
        return response

    def _apply_view_ack(self, view: FakeView, response: AppResponse) -> None:
        if response.status != 200:
            return  # Slack shows "We had some trouble connecting" and keeps the modal
        body = response.body if isinstance(response.body, dict) else {}
        action = body.get("response_action")
        if action == "errors":
            return
        if action in ("update", "push"):
            sent = body.get("view")
            problems = validate_view(sent)
            if problems:
                self.warnings.extend(f"view_submission {action}: {p}" for p in problems)
                return
            if not isinstance(sent, dict):  # validate_view said so already; this narrows the type
                return
            sent = {**sent, "blocks": payloads.fill_block_ids(list(sent.get("blocks") or []))}
            if action == "update":  # inputs keeping their block_id and action_id keep their values
                self._replace_view(view, sent)
            else:
                pushed = self._new_view(sent, view.user, previous=view.id, root=view.root_view_id)
                self._stacks.setdefault(view.user, []).append(pushed.id)
            return
        stack = self.open_modals(view.user)
        closing = stack if action == "clear" else [view]
        for item in closing:
            item.closed = True

    async def close_view(self, view_id: str, *, user: str | None = None, clear: bool = False) -> AppResponse | None:
        """The person closes a modal (its Close button, or with ``clear`` the X that closes the whole stack).
        With ``notify_on_close`` the app gets a ``view_closed`` payload, as from Slack; else nothing is sent."""
        view = self.views[view_id]
        if view.type != "modal" or view.closed:
            raise LookupError(f"view {view_id} is not an open modal")
        who = user or view.user
        stack = self.open_modals(view.user)
        closing = stack if clear or view.view.get("clear_on_close") else [view]
        for item in closing:
            item.closed = True
        self._changed()
        if not view.view.get("notify_on_close"):
            return None
        payload: Json = {
            "type": "view_closed", "team": self._team(), "user": self._user_ref(who), "api_app_id": self.api_app_id,
            "token": self.verification_token, "view": self._view_json(view), "is_cleared": len(closing) > 1,
            "is_enterprise_install": False, "enterprise": None,
        }
        return await self._send_payload(payload)

    async def open_home(self, user: str) -> AppResponse:
        """The user opens the app's Home tab: an ``app_home_opened`` event."""
        self._test_user(user)
        event: Json = {"type": "app_home_opened", "user": user, "channel": self._dm(user).id, "tab": "home",
                       "event_ts": self._action_ts()}
        home = self.home(user)
        if home is not None:
            event["view"] = self._view_json(home)
        return await self.send_event(event)

    async def send_event(
        self, event: Json, *, retry_num: int | None = None, retry_reason: str = "http_timeout",
        event_id: str | None = None,
    ) -> AppResponse:
        """An Events API delivery. ``event`` is wrapped in an ``event_callback`` envelope unless it is one;
        ``retry_num`` adds Slack's retry headers (resend with the same ``event_id`` to test dedupe)."""
        if event.get("type") == "event_callback":
            envelope = event
        else:
            envelope = payloads.event_callback(
                event, token=self.verification_token, team_id=self.team_id, api_app_id=self.api_app_id,
                bot_user_id=self.bot_user_id, event_id=event_id or f"Ev{next(self._ids):010d}",
                event_time=int(time.time()),
            )
        headers = None
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return await self.post_raw(json.dumps(envelope), content_type="application/json", headers=headers,
                                   kind=f"event:{envelope['event'].get('type')}")

    async def url_verification(self, challenge: str = "fake-challenge") -> AppResponse:
        """The handshake Slack sends when the Events request URL is saved."""
        body = {"token": self.verification_token, "challenge": challenge, "type": "url_verification"}
        return await self.post_raw(json.dumps(body), content_type="application/json", kind="url_verification")

    def signature_for(self, timestamp: int | str, body: bytes | str) -> str:
        """The correct ``X-Slack-Signature`` for a body, for tests that tamper with one part."""
        return signature(self.signing_secret, timestamp, body)

    @staticmethod
    def _action_ts() -> str:
        return f"{time.time():.6f}"
