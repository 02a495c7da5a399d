"""The page: a Slack-like web page served by ``FakeSlack`` at ``/``, for people and for browser tests.

It shows what the fake recorded for one person (channels with threads, ephemeral messages, modals, the App
Home tab) and lets them act as that person: type ``/pipeline …``, click, pick, fill and submit modals, open
the Home tab. It reads the fake's state (``state.py``) and acts through its driver (``driver.py``):
``command`` / ``click`` / ``click_ephemeral`` / ``click_view`` / ``submit`` / ``close_view`` / ``open_home``,
which sign the payload and send it to the app, so the page and the scenario tests drive the bot through one
implementation.

Routes (JSON in, JSON out; the page itself is plain HTML/CSS/JS from ``web/``, no build step, no network
beyond this server):

* ``GET /``: the page; ``GET /_page/static/{app.js,style.css}``.
* ``GET /_page/state?user=U…``: what ``user`` sees, as JSON (``snapshot``).
* ``GET /_page/events?user=U…``: the same as Server-Sent Events: one ``state`` event at once, then one
  whenever it changes (the state's ``add_listener``), coalesced; a comment line every 15 s keeps it open.
* ``POST /_page/command`` ``{user, channel, text: "/pipeline run x"}``, ``/_page/click`` ``{user, where:
  message|ephemeral|view, channel?, ts?, view_id?, action_id, block_id?, value?, values?}``,
  ``/_page/submit`` ``{user, view_id, values}``, ``/_page/close`` ``{user, view_id, clear?}``,
  ``/_page/home`` ``{user}``: each answers ``{ok, status, body}`` with the app's ack.

The page is for a local machine: anyone who can reach the port can act as any fake user. POSTs must be
JSON and same-origin, so another web site open in the same browser cannot drive it.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources

import aiohttp
from aiohttp import web

from bot.emulators._core import Json, JsonValue
from bot.emulators.slack import payloads
from bot.emulators.slack.driver import Driver
from bot.emulators.slack.records import AppResponse, FakeView, Message
from bot.emulators.slack.state import SlackState

__all__ = ["add_page_routes", "snapshot"]

Action = Callable[[Json, str], Awaitable["AppResponse | None"]]

STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
HEARTBEAT_S = 15.0
COALESCE_S = 0.05
MAX_PROBLEMS = 20
_COMMAND = re.compile(r"^\s*(/[^\s/]{1,31})(?:\s+(.*))?$", re.DOTALL)


@dataclass
class _Streams:
    """Open event streams: woken on changes, ended when the server shuts down."""

    closing: bool = False
    wakers: set[asyncio.Event] = field(default_factory=set)

    def wake_all(self) -> None:
        for event in self.wakers:
            event.set()


STREAMS = web.AppKey("fake_slack_page_streams", _Streams)


def add_page_routes(app: web.Application, state: SlackState, driver: Driver) -> None:
    """Mount the page on FakeSlack's aiohttp app: showing ``state``, acting through ``driver``."""
    page = _Page(state, driver)
    app[STREAMS] = page.streams
    app.router.add_get("/", page.index)
    app.router.add_get("/_page/static/{name}", page.static)
    app.router.add_get("/_page/state", page.state)
    app.router.add_get("/_page/events", page.events)
    app.router.add_post("/_page/command", page.command)
    app.router.add_post("/_page/click", page.click)
    app.router.add_post("/_page/submit", page.submit)
    app.router.add_post("/_page/close", page.close)
    app.router.add_post("/_page/home", page.home)
    app.on_shutdown.append(page.shutdown)


# -- what one person sees ----------------------------------------------------------------------------


def snapshot(state: SlackState, user: str) -> Json:
    """Everything the page shows ``user``: JSON-ready, rebuilt on each change."""
    me = _person(state, user)
    channels: list[Json] = []
    for channel in state.channels.values():
        if channel.im_user is not None and channel.im_user != me:
            continue
        if channel.im_user is None and me not in channel.members:
            continue
        channels.append({
            "id": channel.id, "name": channel.name, "private": channel.private, "bot_member": channel.member,
            "im": channel.im_user is not None,
        })
    messages = {str(c["id"]): [_message(state, m) for m in state.messages(str(c["id"]), top_level=False)]
                for c in channels}
    ephemerals = [
        {"channel": e.channel, "ts": e.ts, "text": e.text, "blocks": e.blocks, "thread_ts": e.thread_ts,
         "source": e.source, "edited": bool(e.edits)}
        for e in state.ephemerals(user=me)
    ]
    home = state.home(me)
    problems = [
        {"method": c.method, "error": c.error, "errors": list(c.errors)} for c in state.calls if not c.ok
    ][-MAX_PROBLEMS:]
    return {
        "me": me,
        "team": {"id": state.team_id, "domain": state.team_domain},
        "bot": {"id": state.bot_user_id, "name": state.users[state.bot_user_id].name},
        "app_connected": state.app_url is not None,
        "users": [
            {"id": u.id, "name": u.name, "real_name": u.real_name, "display_name": u.display_name,
             "is_bot": u.is_bot, "is_admin": u.is_admin}
            for u in state.users.values()
        ],
        "groups": [{"id": g.id, "handle": g.handle, "name": g.name} for g in state.usergroups.values()],
        "channels": channels,
        "messages": messages,
        "ephemerals": ephemerals,
        "modals": [_view(v) for v in state.open_modals(me)],
        "home": _view(home) if home is not None else None,
        "problems": problems,
        "warnings": state.warnings[-MAX_PROBLEMS:],
    }


def _person(state: SlackState, user: str | None) -> str:
    if user and user in state.users and not state.users[user].is_bot:
        return user
    return next(u.id for u in state.users.values() if not u.is_bot)


def _message(state: SlackState, message: Message) -> Json:
    out: Json = {
        "ts": message.ts, "text": message.text, "blocks": message.blocks, "user": message.user,
        "thread_ts": message.thread_ts, "edited": message.edited_ts is not None, "broadcast": message.reply_broadcast,
    }
    if not message.is_reply:
        replies = state.messages(message.channel, thread_ts=message.ts)
        if replies:
            out.update(reply_count=len(replies), latest_reply=replies[-1].ts)
    return out


def _view(view: FakeView) -> Json:
    sent = view.view
    return {
        "id": view.id, "type": view.type, "hash": view.hash, "callback_id": view.callback_id,
        "title": sent.get("title"), "submit": sent.get("submit"), "close": sent.get("close"),
        "blocks": view.blocks, "values": view.state(), "previous_view_id": view.previous_view_id,
    }


# -- routes -------------------------------------------------------------------------------------------


def _read_static(name: str) -> str:
    return resources.files("bot.emulators.slack").joinpath("web", name).read_text(encoding="utf-8")


class _Problem(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status, self.error = status, error


class _Page:
    def __init__(self, state: SlackState, driver: Driver) -> None:
        self.slack, self.driver = state, driver  # ``self.state`` is the /_page/state route
        self.streams = _Streams()

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=_read_static("index.html"), content_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(text=_read_static(name), content_type=STATIC[name], headers={"Cache-Control": "no-cache"})

    async def state(self, request: web.Request) -> web.Response:
        return web.json_response(snapshot(self.slack, request.query.get("user", "")))

    async def events(self, request: web.Request) -> web.StreamResponse:
        user = request.query.get("user", "")
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
        })
        await response.prepare(request)
        wake = asyncio.Event()
        self.streams.wakers.add(wake)
        remove = self.slack.add_listener(wake.set)
        last = ""
        try:
            while not self.streams.closing:
                wake.clear()
                data = json.dumps(snapshot(self.slack, user), separators=(",", ":"))
                if data != last:
                    await response.write(f"event: state\nid: {self.slack.changes}\ndata: {data}\n\n".encode())
                    last = data
                try:
                    await asyncio.wait_for(wake.wait(), HEARTBEAT_S)
                except TimeoutError:
                    await response.write(b": still here\n\n")
                    continue
                await asyncio.sleep(COALESCE_S)  # a burst of calls (a post, then its update) becomes one event
        except (ConnectionError, RuntimeError):  # the browser went away; RuntimeError: closing transport
            pass
        finally:
            remove()
            self.streams.wakers.discard(wake)
        return response

    async def shutdown(self, app: web.Application) -> None:
        self.streams.closing = True
        self.streams.wake_all()

    # -- actions ------------------------------------------------------------------------------------

    async def command(self, request: web.Request) -> web.Response:
        async def act(body: Json, user: str) -> AppResponse:
            match = _COMMAND.match(_text(body, "text"))
            if match is None:
                raise _Problem(400, "not a slash command: type one like /pipeline help")
            channel = _text(body, "channel") or "C0GENERAL"
            return await self.driver.command(match.group(2) or "", user=user, channel=channel, command=match.group(1))

        return await self._act(request, act)

    async def click(self, request: web.Request) -> web.Response:
        async def act(body: Json, user: str) -> AppResponse:
            where, action_id = _text(body, "where") or "message", _text(body, "action_id")
            block_id, value = _opt(body.get("block_id")), body.get("value")
            if where == "view":
                view = self._view(body)
                return await self.driver.click_view(view.id, action_id, user=user, value=value, block_id=block_id,
                                                  values=_known_values(view.blocks, body.get("values")))
            if where == "ephemeral":
                return await self.driver.click_ephemeral(_text(body, "channel"), action_id, user=user,
                                                       ts=_opt(body.get("ts")), value=value, block_id=block_id)
            if where == "message":
                channel, ts = _text(body, "channel"), _text(body, "ts")
                message = self.slack.message(channel, ts)
                return await self.driver.click(channel, ts, action_id, user=user, value=value, block_id=block_id,
                                             values=_known_values(message.blocks, body.get("values")))
            raise _Problem(400, f"where must be message, ephemeral or view, not {where[:20]!r}")

        return await self._act(request, act)

    async def submit(self, request: web.Request) -> web.Response:
        async def act(body: Json, user: str) -> AppResponse:
            view = self._view(body)
            return await self.driver.submit(view.id, _known_values(view.blocks, body.get("values")), user=user)

        return await self._act(request, act)

    async def close(self, request: web.Request) -> web.Response:
        async def act(body: Json, user: str) -> AppResponse | None:
            return await self.driver.close_view(self._view(body).id, user=user, clear=bool(body.get("clear")))

        return await self._act(request, act)

    async def home(self, request: web.Request) -> web.Response:
        async def act(body: Json, user: str) -> AppResponse:
            return await self.driver.open_home(user)

        return await self._act(request, act)

    def _view(self, body: Json) -> FakeView:
        view = self.slack.views.get(_text(body, "view_id"))
        if view is None:
            raise _Problem(404, "no such view")
        return view

    async def _act(self, request: web.Request, act: Action) -> web.Response:
        try:
            _same_origin(request)
            body = await _json_body(request)
            user = _person(self.slack, _text(body, "user"))
            if self.slack.app_url is None:
                raise _Problem(503, "no app is connected: set FakeSlack.app_url to the bot's /slack/events URL")
            answer: AppResponse | None = await act(body, user)
        except _Problem as exc:
            return web.json_response({"ok": False, "error": exc.error}, status=exc.status)
        except LookupError as exc:  # KeyError included: an unknown channel, message, action or option
            return web.json_response({"ok": False, "error": str(exc.args[0] if exc.args else exc)}, status=404)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # what Slack shows when the app does not answer: "/pipeline failed with the error dispatch_failed"
            detail = f"{type(exc).__name__}: {exc}"
            return web.json_response({"ok": False, "error": "dispatch_failed", "detail": detail}, status=502)
        if answer is None:
            return web.json_response({"ok": True, "status": None, "body": None})
        return web.json_response({"ok": answer.ok, "status": answer.status, "body": answer.body,
                                  "elapsed": round(answer.elapsed, 3)})


def _same_origin(request: web.Request) -> None:
    """JSON only (a form post from another site cannot send it without a CORS preflight we never answer), and
    when the browser says where the request comes from, it must be this server."""
    if request.content_type != "application/json":
        raise _Problem(415, "send JSON (Content-Type: application/json)")
    origin = request.headers.get("Origin")
    if origin is not None and urllib.parse.urlsplit(origin).netloc != request.host:
        raise _Problem(403, "cross-origin request refused")


async def _json_body(request: web.Request) -> Json:
    try:
        body = await request.json()
    except ValueError:
        raise _Problem(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise _Problem(400, "the body must be a JSON object")
    return body


def _text(body: Mapping[str, JsonValue], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def _opt(value: JsonValue) -> str | None:
    return value if isinstance(value, str) and value else None


def _known_values(blocks: list[Json], values: JsonValue) -> dict[str, Json]:
    """``{block_id: {action_id: value}}`` from the page, keeping only elements the blocks still have: the page
    may hold a value typed into an input that a redraw of the modal has since removed."""
    if not isinstance(values, Mapping):
        return {}
    present = {(b, e["action_id"]) for b, e in payloads.interactive_elements(blocks)}
    kept: dict[str, Json] = {}
    for block_id, by_action in values.items():
        if not isinstance(by_action, Mapping):
            continue
        for action_id, value in by_action.items():
            if (block_id, action_id) in present and (value is None or isinstance(value, str | list)):
                kept.setdefault(block_id, {})[action_id] = value
    return kept
