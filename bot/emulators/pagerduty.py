"""PagerDuty Events API v2, as PagerDuty's published schema and docs describe it (docs/PROVIDERS.md, "PagerDuty
Events API v2").

``POST /v2/enqueue`` with a JSON event: ``routing_key`` (32 characters), ``event_action`` (trigger, acknowledge,
resolve), ``dedup_key`` (at most 255 characters; required but for a trigger), and for a trigger a ``payload`` with
``summary`` (at most 1024 characters), ``source`` and ``severity`` (critical, error, warning, info). Answers 202
``{status: "success", message: "Event processed", dedup_key}``, or 400 ``{status: "invalid event", message: "Event
object is invalid", errors: [...]}``.

Alerts are kept per routing key and dedup key with their state and the history of the events applied to them
(``alerts``, ``alert()``; ``GET /_emulator/alerts``), for tests to assert on. As PagerDuty documents it: a trigger on
a resolved alert opens a new one; an acknowledge or resolve of no open alert is accepted and dropped
(``dropped``). ``events_per_minute`` throttles a routing key with 429 (PagerDuty documents about 120 a minute).
Faults (5xx, 429 with ``Retry-After``, delays, malformed bodies) are the shared ones of ``_server.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from aiohttp import web

from bot.emulators._core import EmulatorState, Json, JsonValue
from bot.emulators._server import EmulatorServer, Route, json_response

__all__ = ["ACTIONS", "SEVERITIES", "PagerDutyEmulator", "PdAlert", "validate_event"]

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
#: documented limits (developer-docs, events-API-v2/02-Trigger-Events.md and 01-Overview.md)
ROUTING_KEY_LENGTH = 32
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_EVENT_BYTES = 512 * 1024
_OPTIONAL_TEXT = ("timestamp", "component", "group", "class")

AlertState = Literal["triggered", "acknowledged", "resolved"]
_STATE_OF: dict[str, AlertState] = {"trigger": "triggered", "acknowledge": "acknowledged", "resolve": "resolved"}


@dataclass(slots=True)
class PdAlert:
    """One alert of a service, as the events applied to it left it."""

    routing_key: str
    dedup_key: str
    summary: str
    severity: str
    source: str
    opened_at: float
    state: AlertState = "triggered"
    #: every event applied, in order: (event_action, time, the event as sent)
    history: list[tuple[str, float, Json]] = field(default_factory=list)

    def actions(self) -> list[str]:
        return [action for action, _, _ in self.history]


def _text_problems(value: JsonValue, name: str, *, required: bool, limit: int | None = None) -> list[str]:
    if value is None:
        return [f"'{name}' is missing"] if required else []
    if not isinstance(value, str):
        return [f"'{name}' must be a string, not {type(value).__name__}"]
    if required and not value.strip():
        return [f"'{name}' is blank"]
    if limit is not None and len(value) > limit:
        return [f"'{name}' is too long ({len(value)} characters, at most {limit})"]
    return []


def _context_problems(value: JsonValue, name: str, required_key: str) -> list[str]:
    """``links`` (each with ``href``) or ``images`` (each with ``src``): arrays of objects."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [f"'{name}' must be an array of objects"]
    problems = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            problems.append(f"'{name}[{i}]' must be an object")
            continue
        problems += _text_problems(item.get(required_key), f"{name}[{i}].{required_key}", required=True)
        for key, text in item.items():
            if key != required_key:
                problems += _text_problems(text, f"{name}[{i}].{key}", required=False)
    return problems


def validate_event(event: JsonValue) -> list[str]:
    """What is wrong with an alert event, one line per problem; empty: PagerDuty would accept it."""
    if not isinstance(event, dict):
        return ["the event must be a JSON object"]
    problems = _text_problems(event.get("routing_key"), "routing_key", required=True)
    key = event.get("routing_key")
    if not problems and isinstance(key, str) and len(key) != ROUTING_KEY_LENGTH:
        problems.append(f"Length of 'routing_key' is incorrect (should be {ROUTING_KEY_LENGTH} characters)")
    action = event.get("event_action")
    if action not in ACTIONS:
        problems.append(f"'event_action' must be one of {', '.join(ACTIONS)}, not {action!r}")
    problems += _text_problems(
        event.get("dedup_key"), "dedup_key", required=action in ("acknowledge", "resolve"), limit=MAX_DEDUP_KEY
    )
    for name in ("client", "client_url"):
        problems += _text_problems(event.get(name), name, required=False)
    problems += _context_problems(event.get("links"), "links", "href")
    problems += _context_problems(event.get("images"), "images", "src")
    if action == "trigger":
        problems += _payload_problems(event.get("payload"))
    return problems


def _payload_problems(payload: JsonValue) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing" if payload is None else "'payload' must be an object"]
    problems = _text_problems(payload.get("summary"), "payload.summary", required=True, limit=MAX_SUMMARY)
    problems += _text_problems(payload.get("source"), "payload.source", required=True)
    severity = payload.get("severity")
    if severity not in SEVERITIES:
        problems.append(f"'payload.severity' must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    for name in _OPTIONAL_TEXT:
        problems += _text_problems(payload.get(name), f"payload.{name}", required=False)
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        problems.append("'payload.custom_details' must be an object")
    return problems


def _invalid(errors: list[str]) -> web.Response:
    return json_response({"status": "invalid event", "message": "Event object is invalid", "errors": errors}, 400)


class PagerDutyEmulator(EmulatorServer):
    provider: ClassVar[str] = "pagerduty"

    def __init__(
        self,
        state: EmulatorState | None = None,
        *,
        routing_keys: Iterable[str] = (),
        events_per_minute: int = 0,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(state)
        #: the integration keys of the emulated services; empty: any well-formed key is one
        self.routing_keys = set(routing_keys)
        #: events a routing key may send in 60 s before 429 (0: no limit)
        self.events_per_minute = events_per_minute
        #: a ``Retry-After`` on the throttle's 429 (PagerDuty documents none: None sends none)
        self.retry_after = retry_after
        #: every alert ever opened, oldest first (a trigger after a resolve opens another with the same dedup key)
        self.alerts: list[PdAlert] = []
        #: acknowledge and resolve events that found no open alert: accepted (202) and dropped, as PagerDuty does
        self.dropped: list[Json] = []
        self._accepted_at: dict[str, list[float]] = {}

    def configure(self, scenario: Mapping[str, JsonValue]) -> None:
        scenario = dict(scenario)
        self.routing_keys = set(scenario.pop("routing_keys", self.routing_keys))
        self.events_per_minute = int(scenario.pop("events_per_minute", self.events_per_minute))
        if "retry_after" in scenario:
            value = scenario.pop("retry_after")
            self.retry_after = None if value is None else float(value)
        super().configure(scenario)

    def routes(self) -> list[Route]:
        return [Route("POST", "/v2/enqueue", "enqueue", self.on_enqueue)]

    def build_app(self) -> web.Application:
        app = super().build_app()
        app.router.add_route("GET", "/_emulator/alerts", self._ctl_alerts)
        return app

    # -- for tests --------------------------------------------------------------------------

    def alert(self, dedup_key: str, routing_key: str | None = None) -> PdAlert:
        """The newest alert with this dedup key (of this routing key, when given)."""
        for found in reversed(self.alerts):
            if found.dedup_key == dedup_key and routing_key in (None, found.routing_key):
                return found
        raise KeyError(f"no alert with dedup_key {dedup_key!r}; known: {[a.dedup_key for a in self.alerts]}")

    # -- the API ----------------------------------------------------------------------------

    async def on_enqueue(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if len(raw) > MAX_EVENT_BYTES:
            return _invalid([f"the event is {len(raw)} bytes; events are limited to {MAX_EVENT_BYTES} bytes"])
        try:  # JSON only: PagerDuty takes no form bodies (``read_body`` would)
            event = json.loads(raw)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            return json_response(
                {"status": "Unrecognized object", "message": "Event object format is unrecognized",
                 "errors": ["JSON parse error"]},
                400,
            )
        problems = validate_event(event)
        if not problems and self.routing_keys and event["routing_key"] not in self.routing_keys:
            problems = ["Invalid routing key"]
        if problems:
            return _invalid(problems)
        if self._throttled(event["routing_key"]):
            headers = {"Retry-After": f"{self.retry_after:g}"} if self.retry_after is not None else None
            return json_response(
                {"status": "throttle event", "message": "Request Limit Exceeded", "errors": ["Too many requests"]},
                429, headers,
            )
        dedup_key = self._apply(event)
        return json_response({"status": "success", "message": "Event processed", "dedup_key": dedup_key}, 202)

    def _throttled(self, routing_key: str) -> bool:
        if self.events_per_minute <= 0:
            return False
        now = self.state.now()
        recent = [t for t in self._accepted_at.get(routing_key, []) if now - t < 60.0]
        self._accepted_at[routing_key] = recent
        if len(recent) >= self.events_per_minute:
            return True
        recent.append(now)
        return False

    def _open_alert(self, routing_key: str, dedup_key: str) -> PdAlert | None:
        for found in reversed(self.alerts):
            if (found.routing_key, found.dedup_key) == (routing_key, dedup_key):
                return None if found.state == "resolved" else found
        return None

    def _apply(self, event: Json) -> str:
        now = self.state.now()
        action: str = event["event_action"]
        routing_key: str = event["routing_key"]
        dedup_key: str = event.get("dedup_key") or self.state.new_id()
        alert = self._open_alert(routing_key, dedup_key)
        if action == "trigger":
            if alert is None:
                payload = event["payload"]
                alert = PdAlert(routing_key, dedup_key, payload["summary"], payload["severity"], payload["source"], now)
                self.alerts.append(alert)
            # a trigger on an acknowledged alert is logged on it and leaves it acknowledged
        elif alert is None:
            self.dropped.append(event)
            return dedup_key
        else:
            alert.state = _STATE_OF[action]
        alert.history.append((action, now, event))
        return dedup_key

    async def _ctl_alerts(self, request: web.Request) -> web.Response:
        return json_response(
            [
                {"dedup_key": a.dedup_key, "state": a.state, "summary": a.summary, "severity": a.severity,
                 "source": a.source, "history": [{"event_action": act, "at": at} for act, at, _ in a.history]}
                for a in self.alerts
            ]
        )
