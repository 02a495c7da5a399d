"""What the HTTP endpoint lets through to Bolt: signed first, then well formed.

The signature is checked on the raw bytes before anything is decoded or parsed, so an unsigned body costs one
HMAC and gets 401 whatever it holds (the one exception: Slack's certificate check, which Slack sends unsigned,
gets an empty 200 and reaches nothing). A signed body that is not UTF-8, not the form or JSON Slack sends, or
lacks a field Bolt routes on gets 400. Bolt itself would answer such bodies with 500 and an ERROR traceback
(it parses before it verifies, and indexes fields without checking them). The body checked here is the body
Bolt is given (``Accepted.body``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from slack_sdk.signature import Clock

from bot.models import Json, JsonValue

__all__ = ["Accepted", "Refused", "Signatures", "SslCheck", "inspect", "request_key"]

MAX_AGE_SECONDS = 300  # Slack's window: a timestamp further from our clock is refused

# fields a payload may carry as an object (or, for some, an id string); anything else there breaks Bolt
_OBJECTS = ("user", "team", "channel", "container", "message", "view", "state", "enterprise", "event")
# interactive payloads: Slack sends these fields as objects only, and the listeners read them as such
_INTERACTIVE = frozenset({"block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut",
                          "message_action"})
_INTERACTIVE_OBJECTS = ("user", "team", "channel", "container", "message", "view", "enterprise")
# Slack's deepest payloads (a view's rich-text blocks) nest a dozen levels; far deeper is not Slack, and a body
# nested thousands deep makes the JSON decoder (or anything walking the result) raise RecursionError
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Accepted:
    text: str  # the body as Bolt takes it
    body: Json
    key: str  # what identifies it among Slack's requests (see request_key)


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    reason: str  # for one log line: short, no body content


class Signatures:
    """Slack's request signature over the raw bytes. (slack_sdk's verifier decodes the body as UTF-8 first and
    parses the timestamp with ``int``: a non-UTF-8 body or a timestamp like ``abc`` raised instead of failing.)
    The clock is slack_sdk's, the one Bolt checks with too."""

    def __init__(self, secret: str, clock: Clock | None = None) -> None:
        self._secret = secret.encode("utf-8")
        self._clock = clock or Clock()

    def valid(self, raw: bytes, timestamp: str | None, signature: str | None) -> bool:
        if not timestamp or not signature or len(timestamp) > 12 or not (timestamp.isascii() and timestamp.isdigit()):
            return False
        if abs(self._clock.now() - int(timestamp)) > MAX_AGE_SECONDS:
            return False
        signed = b"v0:" + timestamp.encode("ascii") + b":" + raw
        expected = b"v0=" + hmac.new(self._secret, signed, hashlib.sha256).hexdigest().encode("ascii")
        return hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape"))

    def refusal(self, timestamp: str | None) -> str:
        """Why ``valid`` said no, for the log: a timestamp out of the window is named as such (a clock that is off
        looks like a wrong secret otherwise); anything else is "no valid signature"."""
        if timestamp and len(timestamp) <= 12 and timestamp.isascii() and timestamp.isdigit():
            skew = round(abs(self._clock.now() - int(timestamp)))
            if skew > MAX_AGE_SECONDS:
                return (
                    f"request too old: its X-Slack-Request-Timestamp is {skew} s from this machine's clock (at most "
                    f"{MAX_AGE_SECONDS} s); if Slack sent it just now, synchronise the clock (NTP)"
                )
        return "no valid signature"


@dataclass(frozen=True, slots=True)
class SslCheck:
    """Slack's certificate check (``ssl_check=1&token=…``): sent unsigned, answered 200 and nothing else."""


def inspect(raw: bytes, headers: Mapping[str, str], signatures: Signatures) -> Accepted | Refused | SslCheck:
    if _is_ssl_check(raw):
        return SslCheck()
    timestamp = headers.get("X-Slack-Request-Timestamp")
    if not signatures.valid(raw, timestamp, headers.get("X-Slack-Signature")):
        return Refused(401, signatures.refusal(timestamp))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Refused(400, "the body is not UTF-8")
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    try:
        body = _parse(text, content_type)
    except json.JSONDecodeError:
        return Refused(400, "the body or its payload is not JSON")
    except RecursionError:
        return Refused(400, "the body or its payload is nested too deep")
    except ValueError as exc:
        return Refused(400, str(exc))
    problem = "the body or its payload is nested too deep" if _too_deep(body) else _shape_problem(body)
    if problem:
        return Refused(400, problem)
    return Accepted(text, body, request_key(raw, body))


def request_key(raw: bytes, body: Mapping[str, JsonValue]) -> str:
    """An event is its ``event_id`` (Slack's retries of it carry the same); anything else is its exact bytes.

    Commands and interactions carry a ``trigger_id`` Slack issues once, so two genuine requests never share
    their bytes; the same bytes again are a replay."""
    event_id = body.get("event_id")
    if body.get("type") == "event_callback" and isinstance(event_id, str) and event_id:
        return "event:" + event_id
    return "body:" + hashlib.sha256(raw).hexdigest()


def _parse(text: str, content_type: str) -> Json:
    """Bolt's ``parse_body``, strict: JSON must be an object, a ``payload`` field must hold a JSON object.

    Unlike Bolt, a form is an interactive payload only when it has a ``payload`` field: Bolt takes any form
    that merely contains the word (a command like ``run x payload_date=…``) for one and finds it empty."""
    if not text:
        return {}
    if content_type == "application/json" or text.startswith("{"):
        found = json.loads(text)
    else:
        form = dict(parse_qsl(text, keep_blank_values=True))
        if "payload" not in form:
            return form
        found = json.loads(form["payload"])
    if not isinstance(found, dict):
        raise ValueError("the body or its payload is not a JSON object")
    return found


def _is_ssl_check(raw: bytes) -> bool:
    """Only the exact shape Slack sends: nothing else rides along without a signature."""
    if len(raw) > 256 or not raw.isascii():
        return False
    fields = parse_qsl(raw.decode("ascii"), keep_blank_values=True)
    return dict(fields).get("ssl_check") == "1" and {name for name, _ in fields} <= {"ssl_check", "token"}


def _too_deep(body: object) -> bool:
    """Deeper than ``MAX_DEPTH``, found without recursion (recursion is what such a body breaks)."""
    level: list[object] = [body]
    for _ in range(MAX_DEPTH):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node if isinstance(node, list) else ())
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _view_problem(view: Mapping[str, JsonValue], *, needs_state: bool) -> str:
    """A view's ``state.values``: block id → action id → the element's value, objects all the way down."""
    state = view.get("state")
    if state is None and not needs_state:
        return ""
    values = state.get("values") if isinstance(state, dict) else None
    if not isinstance(values, dict) or not all(
        isinstance(block, dict) and all(isinstance(element, dict) for element in block.values())
        for block in values.values()
    ):
        return "a view whose state has no values object"
    return ""


def _shape_problem(body: Mapping[str, JsonValue]) -> str:
    """Why Bolt could not route ``body`` (or would crash on it); empty when it can."""
    kind = body.get("type")
    if kind is None:  # a slash command (form fields) or Slack's SSL check
        if body.get("ssl_check"):
            return ""
        if isinstance(body.get("command"), str) and isinstance(body.get("user_id"), str):
            # a form's fields are strings; a JSON body (Slack never sends commands so) could hold anything
            return "" if all(isinstance(v, str) for v in body.values()) else "a command field that is not a string"
        return "neither a command nor a payload with a type"
    if not isinstance(kind, str):
        return "its type is not a string"
    for name in _OBJECTS:
        value = body.get(name)
        if value is not None and not isinstance(value, dict | str):
            return f"its {name} is not an object"
    if isinstance(body.get("user"), dict) and not isinstance(body["user"].get("id"), str):
        return "its user has no id"
    if kind in _INTERACTIVE:
        if not isinstance(body.get("user"), dict):
            return f"a {kind} payload without a user object"
        for name in _INTERACTIVE_OBJECTS:
            if body.get(name) is not None and not isinstance(body[name], dict):
                return f"a {kind} payload whose {name} is not an object"
        view = body.get("view")
        if isinstance(view, dict):
            problem = _view_problem(view, needs_state=kind == "view_submission")
            if problem:
                return problem
    authorizations = body.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)
    ):
        return "its authorizations are not a list of objects"
    if kind == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "a block_actions payload without actions"
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "an action without an action_id"
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or not all(isinstance(view.get(f), str) for f in ("id", "type", "callback_id")):
            return f"a {kind} whose view has no id, type or callback_id"
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, dict) or not isinstance(event.get("type"), str):
            return "an event_callback without an event type"
    if kind == "url_verification" and not isinstance(body.get("challenge"), str):
        return "a url_verification without a challenge"
    return ""
