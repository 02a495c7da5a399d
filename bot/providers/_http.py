"""HTTP plumbing shared by the provider clients: retries for reads, error mapping, redaction.

Reads (status, lists, statistics) are retried on connection errors, timeouts, 429 and 5xx with
exponential backoff and the provider's ``Retry-After``. Writes that start something (a trigger) are
sent once: a retried trigger can start a second run, so a timeout there becomes
``TriggerOutcomeUnknown`` and the person is told to look before trying again.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from bot.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
)

__all__ = ["Call", "HttpCaller", "RetryPolicy", "Sleep", "parse_retry_after"]

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How reads are retried. ``attempts`` counts the first try."""

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 20.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        return base * (0.5 + random.random() / 2)  # jitter keeps many clients from retrying in step


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import datetime as _dt

    return max((when - _dt.datetime.now(_dt.UTC)).total_seconds(), 0.0)


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP call as a provider client describes it."""

    method: str
    url: str
    what: str  # for messages: "check the status of run 42"
    idempotent: bool = True
    params: Mapping[str, Any] | None = None
    json: Any = None
    data: Mapping[str, str] | None = None
    headers: Mapping[str, str] | None = None
    content: bytes | None = None


class HttpCaller:
    """Sends calls for one connection and turns every failure into a typed ``ProviderError``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        provider: str,
        connection: str,
        secrets: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        error_text: Callable[[httpx.Response], str] | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.connection = connection
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._error_text = error_text or _default_error_text

    # -- public -----------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def send(self, call: Call) -> httpx.Response:
        attempts = self.retry.attempts if call.idempotent else 1
        last: ProviderError | None = None
        for attempt in range(1, attempts + 1):
            try:
                response = await self.client.request(
                    call.method,
                    call.url,
                    params=call.params,
                    json=call.json,
                    data=call.data,
                    headers=call.headers,
                    content=call.content,
                )
            except httpx.TimeoutException as exc:
                last = self._timeout_error(call, exc)
            except httpx.TransportError as exc:
                last = self._unreachable(call, exc)
            else:
                if response.is_success:
                    return response
                last = self._status_error(call, response)
                if not _retryable_status(response.status_code):
                    raise last
            if attempt < attempts:
                retry_after = last.retry_after if isinstance(last, ProviderUnavailable) else None
                await self._sleep(self.retry.delay(attempt, retry_after))
        assert last is not None
        raise last

    async def json(self, call: Call) -> Any:
        return self.decode(await self.send(call), call)

    def decode(self, response: httpx.Response, call: Call) -> Any:
        try:
            return json.loads(response.content)
        except ValueError:
            raise self.error(
                ProviderResponseError,
                f"{self.provider} sent an answer that is not JSON when asked to {call.what} "
                f"(HTTP {response.status_code}: {_excerpt(self.redact(response.text))!r})",
                status_code=response.status_code,
            ) from None

    def error(self, cls: type[ProviderError], message: str, **kw: Any) -> ProviderError:
        return cls(self.redact(message), provider=self.provider, connection=self.connection, **kw)

    # -- failure mapping --------------------------------------------------------------------

    def _timeout_error(self, call: Call, exc: httpx.TimeoutException) -> ProviderError:
        if not call.idempotent and not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return self.error(
                TriggerOutcomeUnknown,
                f"{self.provider} did not answer in time when asked to {call.what}: it is unknown whether "
                f"it started. Check the {self.provider} console before trying again.",
            )
        return self.error(
            ProviderUnavailable,
            f"{self.provider} did not answer in time when asked to {call.what} ({type(exc).__name__}).",
        )

    def _unreachable(self, call: Call, exc: httpx.TransportError) -> ProviderError:
        if not call.idempotent and isinstance(exc, httpx.RemoteProtocolError):
            return self.error(
                TriggerOutcomeUnknown,
                f"The connection to {self.provider} broke while asking it to {call.what}: it is unknown "
                f"whether it started. Check the {self.provider} console before trying again.",
            )
        return self.error(
            ProviderUnavailable,
            f"Cannot reach {self.provider} ({self.connection}) to {call.what}: {type(exc).__name__}: {exc}",
        )

    def _status_error(self, call: Call, response: httpx.Response) -> ProviderError:
        code = response.status_code
        detail = _excerpt(self.redact(self._error_text(response)))  # redact first: a cut secret would escape
        said = f": {detail}" if detail else ""
        if code == 401:
            return self.error(
                ProviderAuthError,
                f"{self.provider} refused the credentials of connection {self.connection} (HTTP 401){said}. "
                "Check the token or password in its environment variable.",
                status_code=code,
            )
        if code == 403:
            return self.error(
                ProviderAuthError,
                f"{self.provider} says the credentials of connection {self.connection} may not "
                f"{call.what} (HTTP 403){said}. Grant the missing permission or scope.",
                status_code=code,
            )
        if code == 404:
            return self.error(
                ProviderNotFound,
                f"{self.provider} does not know what we asked for when trying to {call.what} (HTTP 404){said}.",
                status_code=code,
            )
        if code == 429 or code >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if not call.idempotent and code not in (429, 503):
                return self.error(
                    TriggerOutcomeUnknown,
                    f"{self.provider} answered HTTP {code} when asked to {call.what}: it is unknown whether "
                    f"it started. Check the {self.provider} console before trying again.",
                    status_code=code,
                )
            busy = "is rate limiting us" if code == 429 else "is failing"
            return ProviderUnavailable(
                self.redact(f"{self.provider} {busy} (HTTP {code}) when asked to {call.what}{said}."),
                provider=self.provider,
                connection=self.connection,
                status_code=code,
                retry_after=retry_after,
            )
        return self.error(
            ProviderRejected,
            f"{self.provider} refused to {call.what} (HTTP {code}){said}.",
            status_code=code,
        )


def _retryable_status(code: int) -> bool:
    return code == 429 or code >= 500


def _excerpt(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _default_error_text(response: httpx.Response) -> str:
    """The most useful words of an error body: a JSON ``message``/``detail``/``error``, else the text."""
    try:
        body = json.loads(response.content)
    except ValueError:
        ctype = response.headers.get("content-type", "")
        return "" if "html" in ctype else response.text
    return _message_of(body)


def _message_of(body: Any) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "error_description", "errors"):
            if body.get(key):
                return _message_of(body[key])
        return json.dumps(body)[:300]
    if isinstance(body, list):
        return "; ".join(_message_of(item) for item in body[:5])
    return str(body)
