"""The fake Slack's driver: what a person does in Slack, sent to the app as Slack sends it.

``command``, ``click``, ``click_ephemeral``, ``click_view``, ``submit``, ``close_view``, ``open_home``,
``send_event`` and ``post_raw`` build the payloads Slack sends (``payloads.py``), sign them (``signing.py``)
and POST them to the app's request URL (``SlackState.app_url``). The ``trigger_id`` and ``response_url``
values they carry are issued in the state, so the Web API and the response URLs can enforce their limits.
The app's answer (the ack) is applied as Slack applies it: a command's ack body is shown, a submission's
``response_action`` changes the modal stack.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TypeVar

import aiohttp

from bot.emulators._core import Json, JsonValue
from bot.emulators.slack import payloads
from bot.emulators.slack.blockkit import validate_view
from bot.emulators.slack.records import AppResponse, Delivery, FakeView, Target
from bot.emulators.slack.responses import ResponseUrls
from bot.emulators.slack.signing import signature, signed_headers
from bot.emulators.slack.state import SlackState

__all__ = ["FORM", "Driver"]

T = TypeVar("T")

FORM = "application/x-www-form-urlencoded"


def _readable(raw: bytes, content_type: str) -> JsonValue:
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


class Driver:
    """Sends requests into the app as Slack does. See the module docstring."""

    def __init__(self, state: SlackState, responses: ResponseUrls, *, app_timeout: float = 10.0) -> None:
        self.state, self.responses = state, responses
        self.app_timeout = app_timeout
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        # a connection per request: one kept alive and reused just as the app closes it idle (its keep-alive is its
        # read timeout, 10 s) failed the request ("dispatch_failed") with nothing wrong in the app
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.app_timeout), connector=aiohttp.TCPConnector(force_close=True)
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

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
        state = self.state
        if state.app_url is None or self._session is None:
            raise RuntimeError("FakeSlack must be started and app_url set before sending requests to the app")
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        out: dict[str, str] = {"Content-Type": content_type}
        if sign:
            out.update(signed_headers(state.signing_secret, raw, timestamp=timestamp))
            if signature is not None:
                out["X-Slack-Signature"] = signature
        out.update(headers or {})
        started = time.perf_counter()
        async with self._session.post(state.app_url, data=raw, headers=out) as resp:
            text = await resp.text()
            status, answer_headers = resp.status, dict(resp.headers)
        elapsed = time.perf_counter() - started
        parsed: JsonValue = text
        if text.strip()[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = text
        response = AppResponse(status, parsed, text, answer_headers, elapsed)
        state.deliveries.append(Delivery(kind, _readable(raw, content_type), response))
        return response

    async def _send_form(self, fields: Mapping[str, str], kind: str) -> AppResponse:
        return await self.post_raw(urllib.parse.urlencode(fields), kind=kind)

    async def _send_payload(self, payload: Json) -> AppResponse:
        return await self._send_form({"payload": json.dumps(payload)}, kind=str(payload["type"]))

    async def command(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL", command: str = "/pipeline"
    ) -> AppResponse:
        """A slash command. An ack body with text or blocks is shown as Slack shows it (ephemeral or in_channel)."""
        state = self.state
        person, where = state.known_user(user), state.known_channel(channel)
        target = state.issue_target(user, where.id)
        fields = payloads.slash_command(
            token=state.verification_token, team_id=state.team_id, team_domain=state.team_domain, channel_id=where.id,
            channel_name=where.name, user_id=user, user_name=person.name, command=command, text=text,
            api_app_id=state.api_app_id, response_url=state.response_url(target), trigger_id=state.issue_trigger(user),
        )
        marks = (len(state.response_posts), len(state.ephemeral_posts))
        response = await self._send_form(fields, kind="command")
        self._apply_ack(response, target, marks)
        state.changed()
        return response

    def _apply_ack(self, response: AppResponse, target: Target, marks: tuple[int, int]) -> None:
        """Show the ack body as Slack does. The listener may already have posted to the response_url while
        the ack travelled back; the ack is still what the person saw first, so it goes before those."""
        state = self.state
        body = response.body
        if response.status != 200:
            return
        if isinstance(body, str) and body.strip():
            body = {"text": body}
        if isinstance(body, dict) and (body.get("text") or body.get("blocks")):
            count = len(state.ephemeral_posts)
            self.responses.apply(target, body, source="ack")
            _hoist(state.response_posts, marks[0], lambda r: r.token == target.token)
            if len(state.ephemeral_posts) > count:
                _hoist(state.ephemeral_posts, marks[1], lambda e: e.token == target.token)

    async def click(
        self,
        channel: str,
        ts: str,
        action_id: str,
        *,
        user: str = "U0ALICE",
        value: JsonValue = None,
        block_id: str | None = None,
        values: Mapping[str, Mapping[str, JsonValue]] | None = None,
    ) -> AppResponse:
        """A click (or a pick, for selects: ``value`` is the option value) on an element of a channel message.
        ``value`` for a button replaces the button's own value: for tampering tests."""
        state = self.state
        where = state.known_channel(channel)
        message = state.message(where.id, ts)
        found_block, element = payloads.find_element(message.blocks, action_id, block_id)
        container: Json = {"type": "message", "message_ts": ts, "channel_id": where.id, "is_ephemeral": False}
        if message.is_reply:
            container["thread_ts"] = message.thread_ts
        payload = payloads.block_actions(
            token=state.verification_token, api_app_id=state.api_app_id, team=state.team(), user=state.user_ref(user),
            container=container, trigger_id=state.issue_trigger(user),
            actions=[payloads.action(element, found_block, value, self.action_ts())],
            state={"values": payloads.state_values(message.blocks, values or {}, every_input=False)},
            channel={"id": where.id, "name": where.name}, message=state.message_json(message, include_metadata=False),
            response_url=state.response_url(state.issue_target(user, where.id, message_ts=ts)),
        )
        return await self._send_payload(payload)

    async def click_ephemeral(
        self,
        channel: str,
        action_id: str,
        *,
        user: str = "U0ALICE",
        ts: str | None = None,
        value: JsonValue = None,
        block_id: str | None = None,
    ) -> AppResponse:
        """A click in the newest ephemeral message ``user`` sees in ``channel`` with that action (or at ``ts``).
        Slack sends no ``message`` for ephemeral messages: the app must rely on ``response_url``."""
        state = self.state
        candidates = [e for e in state.ephemerals(channel, user) if (ts is None or e.ts == ts) and
                      any(a == action_id for a in e.action_ids)]
        if not candidates:
            seen = [(e.ts, e.action_ids) for e in state.ephemerals(channel, user)]
            raise LookupError(f"no ephemeral for {user} in {channel} has action {action_id!r}; seen: {seen}")
        ephemeral = candidates[-1]
        found_block, element = payloads.find_element(ephemeral.blocks, action_id, block_id)
        where = state.channels[ephemeral.channel]
        payload = payloads.block_actions(
            token=state.verification_token, api_app_id=state.api_app_id, team=state.team(), user=state.user_ref(user),
            container={"type": "message", "message_ts": ephemeral.ts, "channel_id": where.id, "is_ephemeral": True},
            trigger_id=state.issue_trigger(user), actions=[payloads.action(element, found_block, value,
                                                                           self.action_ts())],
            channel={"id": where.id, "name": where.name},
            response_url=state.response_url(
                state.issue_target(user, where.id, message_ts=ephemeral.ts, ephemeral=True)),
        )
        return await self._send_payload(payload)

    async def click_view(
        self,
        view_id: str,
        action_id: str,
        *,
        user: str | None = None,
        value: JsonValue = None,
        block_id: str | None = None,
        values: Mapping[str, Mapping[str, JsonValue]] | None = None,
    ) -> AppResponse:
        """A click or pick inside a modal or the Home tab (``container.type == "view"``). Picks and ``values``
        are kept in the view's state, as Slack keeps what the person typed."""
        state = self.state
        view = state.views[view_id]
        who = user or view.user
        found_block, element = payloads.find_element(view.blocks, action_id, block_id)
        self._remember(view, values or {})
        if element.get("type") != "button" and value is not None:
            self._remember(view, {found_block: {action_id: value}})
        payload = payloads.block_actions(
            token=state.verification_token, api_app_id=state.api_app_id, team=state.team(), user=state.user_ref(who),
            container={"type": "view", "view_id": view.id}, trigger_id=state.issue_trigger(who),
            actions=[payloads.action(element, found_block, value, self.action_ts())],
            state={"values": view.state()}, view=state.view_json(view),
        )
        return await self._send_payload(payload)

    def _remember(self, view: FakeView, values: Mapping[str, Mapping[str, JsonValue]]) -> None:
        payloads.state_values(view.blocks, values)  # raises on ids the view lacks
        for block_id, by_action in values.items():
            view.values.setdefault(block_id, {}).update(by_action)

    async def submit(
        self, view_id: str, values: Mapping[str, Mapping[str, JsonValue]] | None = None, *, user: str | None = None
    ) -> AppResponse:
        """Submit a modal with ``{block_id: {action_id: value}}``; the ack's ``response_action`` (errors,
        update, push, clear) or its absence (close) is applied to the modal stack as Slack does."""
        state = self.state
        view = state.views[view_id]
        if view.type != "modal" or view.closed:
            raise LookupError(f"view {view_id} is not an open modal")
        who = user or view.user
        self._remember(view, values or {})
        payload = payloads.view_submission(token=state.verification_token, api_app_id=state.api_app_id,
                                           team=state.team(), user=state.user_ref(who),
                                           view=state.view_json(view, every_input=True),
                                           trigger_id=state.issue_trigger(who))
        response = await self._send_payload(payload)
        self._apply_view_ack(view, response)
        state.changed()
        return response

    def _apply_view_ack(self, view: FakeView, response: AppResponse) -> None:
        state = self.state
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
                state.warnings.extend(f"view_submission {action}: {p}" for p in problems)
                return
            if not isinstance(sent, dict):  # validate_view said so already; this narrows the type
                return
            sent = {**sent, "blocks": payloads.fill_block_ids(list(sent.get("blocks") or []))}
            if action == "update":  # inputs keeping their block_id and action_id keep their values
                state.replace_view(view, sent)
            else:
                pushed = state.new_view(sent, view.user, previous=view.id, root=view.root_view_id)
                state.stacks.setdefault(view.user, []).append(pushed.id)
            return
        stack = state.open_modals(view.user)
        closing = stack if action == "clear" else [view]
        for item in closing:
            item.closed = True

    async def close_view(self, view_id: str, *, user: str | None = None, clear: bool = False) -> AppResponse | None:
        """The person closes a modal (its Close button, or with ``clear`` the X that closes the whole stack).
        With ``notify_on_close`` the app gets a ``view_closed`` payload, as from Slack; else nothing is sent."""
        state = self.state
        view = state.views[view_id]
        if view.type != "modal" or view.closed:
            raise LookupError(f"view {view_id} is not an open modal")
        who = user or view.user
        stack = state.open_modals(view.user)
        closing = stack if clear or view.view.get("clear_on_close") else [view]
        for item in closing:
            item.closed = True
        state.changed()
        if not view.view.get("notify_on_close"):
            return None
        payload: Json = {
            "type": "view_closed", "team": state.team(), "user": state.user_ref(who), "api_app_id": state.api_app_id,
            "token": state.verification_token, "view": state.view_json(view), "is_cleared": len(closing) > 1,
            "is_enterprise_install": False, "enterprise": None,
        }
        return await self._send_payload(payload)

    async def open_home(self, user: str) -> AppResponse:
        """The user opens the app's Home tab: an ``app_home_opened`` event."""
        state = self.state
        state.known_user(user)
        event: Json = {"type": "app_home_opened", "user": user, "channel": state.dm(user).id, "tab": "home",
                       "event_ts": self.action_ts()}
        home = state.home(user)
        if home is not None:
            event["view"] = state.view_json(home)
        return await self.send_event(event)

    async def send_event(
        self, event: Json, *, retry_num: int | None = None, retry_reason: str = "http_timeout",
        event_id: str | None = None,
    ) -> AppResponse:
        """An Events API delivery. ``event`` is wrapped in an ``event_callback`` envelope unless it is one;
        ``retry_num`` adds Slack's retry headers (resend with the same ``event_id`` to test dedupe)."""
        state = self.state
        if event.get("type") == "event_callback":
            envelope = event
        else:
            envelope = payloads.event_callback(
                event, token=state.verification_token, team_id=state.team_id, api_app_id=state.api_app_id,
                bot_user_id=state.bot_user_id, event_id=event_id or f"Ev{state.next_id():010d}",
                event_time=int(time.time()),
            )
        headers = None
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return await self.post_raw(json.dumps(envelope), content_type="application/json", headers=headers,
                                   kind=f"event:{envelope['event'].get('type')}")

    async def url_verification(self, challenge: str = "fake-challenge") -> AppResponse:
        """The handshake Slack sends when the Events request URL is saved."""
        body = {"token": self.state.verification_token, "challenge": challenge, "type": "url_verification"}
        return await self.post_raw(json.dumps(body), content_type="application/json", kind="url_verification")

    def signature_for(self, timestamp: int | str, body: bytes | str) -> str:
        """The correct ``X-Slack-Signature`` for a body, for tests that tamper with one part."""
        return signature(self.state.signing_secret, timestamp, body)

    @staticmethod
    def action_ts() -> str:
        return f"{time.time():.6f}"
