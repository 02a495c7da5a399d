"""The fake Slack's Web API transport: ``{url}/api/<method>``.

Reads the parameters as Slack does (query string, form or JSON body, JSON-in-form fields), applies a queued
fault (``faults.py``), checks the token, calls the method's handler, and records the call with its answer.
The handlers live in one module per API family (``chat.py``, ``conversations.py``, ``views.py``): each is a
function from parameters to the answer's fields, raising ``ApiError`` for Slack's ``ok: false`` answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
from collections.abc import Callable, Mapping

from aiohttp import web

from bot.emulators._core import Json, JsonValue
from bot.emulators.slack import payloads
from bot.emulators.slack.blockkit import message_warnings, validate_message
from bot.emulators.slack.faults import Faults
from bot.emulators.slack.records import ApiCall, Channel
from bot.emulators.slack.state import SlackState

__all__ = [
    "ApiError",
    "Method",
    "WebApi",
    "api_channel",
    "as_int",
    "blocks_of",
    "checked_blocks",
    "message_warnings_of",
    "opt_str",
]

#: a Web API method: the request's parameters → the answer's fields besides ``ok``
Method = Callable[[Json], Json]

JSON_FIELDS = ("blocks", "attachments", "metadata", "view", "response_action", "outputs")  # JSON in a form body


class ApiError(Exception):
    """Slack's ``{"ok": false, "error": ...}`` answer (with ``status`` and ``headers`` for 429s and 5xx)."""

    def __init__(
        self, error: str, *, status: int = 200, headers: Mapping[str, str] | None = None, **extra: JsonValue
    ) -> None:
        super().__init__(error)
        self.error, self.status, self.headers, self.extra = error, status, dict(headers or {}), extra


# -- parameters ---------------------------------------------------------------------------------------


def as_int(value: JsonValue, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def opt_str(value: JsonValue) -> str | None:
    return str(value) if value not in (None, "") else None


def blocks_of(value: JsonValue) -> list[Json]:
    return value if isinstance(value, list) else []


async def read_params(request: web.Request) -> Json:
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


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


# -- checks shared by the families ----------------------------------------------------------------


def api_channel(state: SlackState, ref: JsonValue, *, need_member: bool = False) -> Channel:
    """The channel a call names, or Slack's error when it is unknown or the bot may not use it."""
    channel = state.lookup_channel(ref)
    if channel is None:
        raise ApiError("channel_not_found")
    if (channel.private or need_member) and not channel.member and channel.im_user is None:
        raise ApiError("not_in_channel")
    return channel


def checked_blocks(params: Json) -> list[Json]:
    """The call's ``blocks``, validated as Slack does (``invalid_blocks``) and given block_ids."""
    blocks = params.get("blocks")
    if blocks in (None, ""):
        return []
    problems = validate_message(blocks)
    if problems:
        raise ApiError("invalid_blocks", errors=problems, response_metadata={"messages": problems})
    return payloads.fill_block_ids(blocks)


def message_warnings_of(state: SlackState, params: Json, text: str, blocks: list[Json]) -> None:
    """Record the warnings Slack would give about a message (``response_metadata.warnings``)."""
    state.call_warnings.extend(message_warnings(text, blocks))
    for key in ("link_names", "parse"):
        if params.get(key) not in (None, "", False, "none", "0", 0, "false"):
            state.call_warnings.append(f"{key}={params[key]!r}: mentions must come from known ids only")


# -- transport -----------------------------------------------------------------------------------------


class WebApi:
    """Serves ``/api/{method}`` with the families' ``methods``; ``auth.test`` is answered here."""

    def __init__(self, state: SlackState, faults: Faults, methods: Mapping[str, Method]) -> None:
        self.state, self.faults = state, faults
        self.methods: dict[str, Method] = {"auth.test": self.auth_test, **methods}

    def auth_test(self, params: Json) -> Json:
        state = self.state
        return {"url": f"{state.url}/", "team": "Fake Team", "user": state.users[state.bot_user_id].name,
                "team_id": state.team_id, "user_id": state.bot_user_id, "bot_id": state.bot_id,
                "is_enterprise_install": False}

    async def on_api(self, request: web.Request) -> web.Response:
        state = self.state
        method = request.match_info["method"]
        at = state.clock()
        state.call_warnings = []
        params: Json = {}
        try:
            params = await read_params(request)
            token = bearer(request) or opt_str(params.get("token"))
            params.pop("token", None)
            fault = self.faults.take(method)
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            state.call_warnings = []
            if fault is not None and fault.error is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
                raise ApiError(fault.error, status=fault.status, headers=headers)
            handler = self.methods.get(method)
            if handler is None:
                raise ApiError("unknown_method")
            if not token:
                raise ApiError("not_authed")
            if token != state.bot_token:
                refusal = state.workflow_token_refusal(token)
                if refusal != "":  # None: no token this fake handed out
                    raise ApiError(refusal or "invalid_auth")
            try:
                body: Json = {"ok": True, **handler(params)}
            except (ValueError, TypeError, AttributeError) as exc:  # parameters of the wrong shape
                raise ApiError("invalid_arguments", errors=[f"{type(exc).__name__}: {exc}"]) from exc
            status, headers_out, error, problems = 200, {}, None, ()
        except ApiError as exc:
            problems = tuple(exc.extra.get("errors", ()))
            body = {"ok": False, "error": exc.error, **exc.extra}
            status, headers_out, error = exc.status, exc.headers, exc.error
        except ValueError as exc:  # unreadable body
            body = {"ok": False, "error": "invalid_json", "detail": str(exc)}
            status, headers_out, error, problems = 200, {}, "invalid_json", ()
        found = tuple(state.call_warnings)
        if found:
            state.warnings.extend(f"{method}: {w}" for w in found)
            body.setdefault("response_metadata", {})["warnings"] = list(found)
        state.calls.append(ApiCall(method, params, error is None, error, at, status, found, problems, body))
        state.changed()
        return web.json_response(body, status=status, headers=headers_out)
