"""PagerDuty Events API v2: trigger, acknowledge and resolve one alert per Slack alert (docs/PROVIDERS.md, "PagerDuty
Events API v2").

``build_event`` is pure: the event PagerDuty gets, without its routing key (added at send time only), with the summary
cut to PagerDuty's 1024 characters and every text redacted first. ``PagerDutyEvents`` sends it over httpx with a
bounded deadline; the routing key is a ``SecretStr``, added to the client's redactor before any call, so no error
or log can carry it.

Errors: a 400 (PagerDuty: "Check that the JSON is valid", do not retry) is ``ProviderRejected`` with PagerDuty's
message and errors; 429, 5xx, timeouts and network errors are ``ProviderUnavailable`` (PagerDuty: retry after some
time). ``retryable`` says which is which for the outbox. Every event carries our dedup key, so sending one again is
harmless (a repeated trigger is logged on the same alert; a repeated acknowledge or resolve changes nothing):
that is why every call counts as idempotent and an answer that cannot be read is worth another try too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import httpx
from pydantic import SecretStr

from bot.errors import ProviderError, ProviderRejected, ProviderResponseError, ProviderUnavailable
from bot.models import Json, JsonValue
from bot.ops.redact import Redactor
from bot.providers._http import ACCEPT_ENCODING, Call, HttpCaller, RetryPolicy, Sleep, loads

__all__ = [
    "EVENTS_URL",
    "MAX_DEDUP_KEY",
    "MAX_SUMMARY",
    "Accepted",
    "Action",
    "Link",
    "PagerDutyEvents",
    "Severity",
    "build_event",
    "retryable",
]

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MAX_SUMMARY = 1024
MAX_DEDUP_KEY = 255
PROVIDER = "PagerDuty"

Action = Literal["trigger", "acknowledge", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]
_SEVERITIES = ("critical", "error", "warning", "info")
_REJECTED_HINT = (
    "Sending it again will not help: check the pagerduty routing_key (the 32-character Integration Key of an Events "
    "API v2 integration on the service)."
)


@dataclass(frozen=True, slots=True)
class Link:
    """A link PagerDuty shows on the alert (``links[]``): the Slack alert, the run's card, the console."""

    href: str
    text: str = ""


@dataclass(frozen=True, slots=True)
class Accepted:
    """PagerDuty's 202: the event is queued for processing (the Events API is asynchronous)."""

    dedup_key: str
    message: str


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _scrub(value: JsonValue, redact: Callable[[str], str]) -> JsonValue:
    """Every string in a JSON-like value redacted (keys too: a provider's words may be anywhere)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): _scrub(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v, redact) for v in value]
    return value


def build_event(
    action: Action,
    dedup_key: str,
    *,
    summary: str = "",
    source: str = "",
    severity: Severity = "error",
    custom_details: Mapping[str, JsonValue] | None = None,
    links: Sequence[Link] = (),
    timestamp: datetime | None = None,
    component: str = "",
    client: str = "pipeline-bot",
    client_url: str = "",
    redact: Callable[[str], str] = lambda text: text,
) -> Json:
    """The event for ``action`` on alert ``dedup_key``, without ``routing_key``. A trigger carries the payload,
    links and client; an acknowledge or resolve only the dedup key, as PagerDuty's examples do. Texts are redacted
    before the summary is cut (half a secret is no longer recognised). ``ValueError``: the event would be refused."""
    if not dedup_key.strip() or len(dedup_key) > MAX_DEDUP_KEY:
        raise ValueError(f"dedup_key must be 1 to {MAX_DEDUP_KEY} characters, not {len(dedup_key)}")
    event: Json = {"event_action": action, "dedup_key": dedup_key}
    if action != "trigger":
        return event
    if not summary.strip() or not source.strip():
        raise ValueError("a trigger needs a summary and a source (PagerDuty refuses it without either)")
    if severity not in _SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(_SEVERITIES)}, not {severity!r}")
    payload: Json = {
        "summary": _cut(redact(summary), MAX_SUMMARY),
        "source": redact(source),
        "severity": severity,
    }
    if timestamp is not None:
        payload["timestamp"] = timestamp.isoformat()
    if component:
        payload["component"] = redact(component)
    if custom_details:
        payload["custom_details"] = _scrub(custom_details, redact)
    event["payload"] = payload
    if links:
        event["links"] = [{"href": link.href, "text": redact(link.text)} if link.text else {"href": link.href}
                          for link in links]
    if client:
        event["client"] = client
    if client_url:
        event["client_url"] = client_url
    return event


def retryable(exc: ProviderError) -> bool:
    """Whether sending the event again later may succeed: not after a refusal (400, or a key refused)."""
    return isinstance(exc, ProviderUnavailable | ProviderResponseError)


def _error_text(response: httpx.Response) -> str:
    """PagerDuty's 400: ``{status, message, errors: [...]}``; the errors say what was wrong."""
    try:
        body = loads(response.content)
    except ValueError:
        return "" if "html" in response.headers.get("content-type", "") else response.text
    if not isinstance(body, dict):
        return str(body)
    said = str(body.get("message") or body.get("status") or "")
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        said = f"{said}: {'; '.join(str(e) for e in errors[:10])}" if said else "; ".join(map(str, errors[:10]))
    return said


class PagerDutyEvents:
    """Sends alert events to the Events API v2. One per process; the routing key comes with each event."""

    def __init__(
        self,
        url: str = EVENTS_URL,
        *,
        timeout_seconds: float = 10.0,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        redactor: Redactor | None = None,
    ) -> None:
        self.url = url
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds, connect=min(5.0, timeout_seconds)),
            headers={"accept": "application/json", "accept-encoding": ACCEPT_ENCODING, "user-agent": "pipeline-bot"},
        )
        self.caller = HttpCaller(
            self.http,
            provider=PROVIDER,
            connection="events-api",
            # one try: the outbox retries durably, and an outage must not hold a worker (PagerDuty: retry later)
            retry=retry or RetryPolicy(attempts=1),
            sleep=sleep,
            error_text=_error_text,
            deadline=timeout_seconds,
        )
        if redactor is not None:  # the process's secrets: none of them goes into a summary or custom_details
            self.caller.redactor.include(redactor)

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def trigger(
        self,
        routing_key: SecretStr,
        dedup_key: str,
        summary: str,
        source: str,
        severity: Severity = "error",
        custom_details: Mapping[str, JsonValue] | None = None,
        links: Sequence[Link] = (),
        *,
        timestamp: datetime | None = None,
        client_url: str = "",
    ) -> Accepted:
        self.caller.redactor.add(routing_key.get_secret_value())
        event = build_event(
            "trigger", dedup_key, summary=summary, source=source, severity=severity, custom_details=custom_details,
            links=links, timestamp=timestamp, client_url=client_url, redact=self.caller.redactor.snapshot(),
        )
        return await self._send(routing_key, event, f"trigger alert {dedup_key}")

    async def acknowledge(self, routing_key: SecretStr, dedup_key: str) -> Accepted:
        return await self._send(routing_key, build_event("acknowledge", dedup_key), f"acknowledge alert {dedup_key}")

    async def resolve(self, routing_key: SecretStr, dedup_key: str) -> Accepted:
        return await self._send(routing_key, build_event("resolve", dedup_key), f"resolve alert {dedup_key}")

    async def _send(self, routing_key: SecretStr, event: Json, what: str) -> Accepted:
        self.caller.redactor.add(routing_key.get_secret_value())
        call = Call("POST", self.url, what, json={"routing_key": routing_key.get_secret_value(), **event})
        try:
            response = await self.caller.send(call)
        except ProviderRejected as exc:
            if exc.status_code != 400:
                raise
            raise self.caller.error(ProviderRejected, f"{exc} {_REJECTED_HINT}", status_code=400) from None
        body = self.caller.decode(response, call)
        if not isinstance(body, dict) or body.get("status") != "success":
            raise self.caller.error(
                ProviderResponseError,
                f"{PROVIDER} answered HTTP {response.status_code} to {what} without status \"success\": "
                f"{self.caller.excerpt(body, 200)!r}",
                status_code=response.status_code,
            )
        dedup = str(body.get("dedup_key") or event["dedup_key"])
        return Accepted(dedup_key=self.caller.redact(dedup), message=self.caller.redact(str(body.get("message", ""))))
