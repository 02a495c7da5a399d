"""HTTP plumbing shared by the provider clients: retries for reads, error mapping, redaction, limits.

Reads (status, lists, statistics) are retried on connection errors, timeouts, 429 and 5xx with
exponential backoff and the provider's ``Retry-After``. Writes that start something (a trigger) are
sent once: a retried trigger can start a second run, so a timeout there, or a connection that breaks (closed,
reset) once the request began to go out, becomes ``TriggerOutcomeUnknown`` and the person is told to look before
trying again; only a trigger that never began to go out "did not start".

Each attempt has a deadline of its own, the connection's ``timeout_seconds`` for the whole exchange (connecting,
sending, any login the auth flow needs, the whole answer): httpx's timeouts bound each read, so a provider that
trickles a byte a little faster than that would otherwise hold a call open for ever. Past the deadline the call
is a timeout like any other.

An answer is read as a stream and refused past ``MAX_BODY_BYTES``: a provider (or whatever answers at its
address) cannot make the bot buffer gigabytes. A compressed answer is inflated here, never by httpx (which inflates
each network read whole: 64 KB of gzip become 64 MB before any count): one layer of gzip or deflate, a bounded
piece at a time, counted as what it becomes; stacked or unknown encodings are refused. Redirects are never
followed: httpx would carry our own credential headers (``x-api-key``) to any host, and a moved API is better
fixed in ``base_url`` anyway. An error body is redacted whole, in every wire form of every secret
(``bot.ops.redact``), before any part of it is picked, re-encoded or cut for a message.
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Iterable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, replace
from typing import cast

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
from bot.models import JsonValue, RunStatus
from bot.ops.redact import PROCESS, Redactor
from bot.ops.retry_after import parse_retry_after

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_BODY_BYTES",
    "BearerToken",
    "BodyRefused",
    "BodyTooLarge",
    "BodyUnreadable",
    "BrokeAfterSending",
    "Call",
    "CallTimedOut",
    "CredentialUnsendable",
    "HttpCaller",
    "RetryPolicy",
    "Sleep",
    "header_problem",
    "loads",
    "parse_retry_after",
    "read_capped",
    "sendable",
]

#: the most of one answer the bot reads; no status, list or error of a provider comes near it
MAX_BODY_BYTES = 10 * 1024 * 1024
#: what the provider clients ask for: the encodings ``read_capped`` inflates (never br or zstd, whatever is installed)
ACCEPT_ENCODING = "gzip, deflate"
_INFLATES = frozenset({"gzip", "x-gzip", "deflate"})

Sleep = Callable[[float], Awaitable[None]]


def header_problem(value: str) -> str | None:
    """Why a credential cannot go in an HTTP header as it is (never showing it), or None.

    A header value is ASCII without control characters (spaces and tabs are allowed inside): httpx refuses a
    non-ASCII letter (``UnicodeEncodeError``) and aiohttp a line break or a NUL (``ValueError``, "header
    injection"), each raised out of the call as no provider error, so every call of the connection failed as the
    bot's own bug. The value is checked as sent: stripped (a line break at the end of a file is dropped)."""
    if any(c in "\r\n" for c in value):
        return "holds a line break inside it (two values pasted together?)"
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        return "holds a control character"
    if not value.isascii():
        return "holds a character that is not plain ASCII (a typographic dash or quote?)"
    return None


class CredentialUnsendable(Exception):
    """A credential (ours, or a token a provider's login handed out) that cannot be written in a header: nothing
    was sent. ``HttpCaller`` makes it a ``ProviderAuthError``; ``str()`` never holds the value."""

    def __init__(self, whose: str, problem: str) -> None:
        super().__init__(f"{whose} {problem}")
        self.whose, self.problem = whose, problem


def sendable(value: str, whose: str) -> str:
    """``value`` stripped, as a header may carry it; raises ``CredentialUnsendable`` for one no header can."""
    value = value.strip()
    problem = header_problem(value)
    if problem is not None:
        raise CredentialUnsendable(whose, problem)
    return value


class BearerToken(httpx.Auth):
    """A static token as an ``Authorization: Bearer`` header (Rivery's API token, a Tailer token), stripped."""

    def __init__(self, token: str) -> None:
        self.token = token.strip()

    def secrets(self) -> list[str]:
        return [self.token]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {sendable(self.token, 'the token')}"
        yield request


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


class BrokeAfterSending(httpx.NetworkError):
    """The connection broke (reset, closed) once the request had begun to go out: the provider may have taken it,
    a trigger may have started its run. For reads, a network error like any other."""

    def __init__(self, cause: httpx.NetworkError, request: httpx.Request) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}".rstrip(": "), request=request)


class CallTimedOut(httpx.ReadTimeout):
    """One exchange took longer than its deadline all told (each read within httpx's timeout, perhaps). A read
    timeout as far as the caller goes: the request may have reached the provider."""

    def __init__(self, deadline: float, request: httpx.Request) -> None:
        super().__init__(f"no whole answer within {deadline:g} s", request=request)
        self.deadline = deadline


def _longest(timeout: httpx.Timeout) -> float | None:
    """A client's longest finite timeout (its read timeout, as the provider clients build it); None: none set."""
    parts = [t for t in (timeout.connect, timeout.read, timeout.write, timeout.pool) if t is not None]
    return max(parts) if parts else None


class BodyRefused(Exception):
    """An answer whose body the bot did not read: too large, or in an encoding it does not inflate."""

    def __init__(self, message: str, status_code: int | None) -> None:
        super().__init__(message)
        self.status_code = status_code


class BodyTooLarge(BodyRefused):
    """An answer went past the size the bot reads; the rest of it was left unread."""

    def __init__(self, limit: int, status_code: int | None) -> None:
        super().__init__(f"an answer of more than {limit} bytes", status_code)
        self.limit = limit


class BodyUnreadable(BodyRefused):
    """An answer in a Content-Encoding the bot does not inflate (stacked, unknown) or that does not inflate."""

    def __init__(self, encoding: str, reason: str, status_code: int | None) -> None:
        super().__init__(f"an answer in Content-Encoding {encoding!r}: {reason}", status_code)
        self.encoding = encoding
        self.reason = reason


def loads(data: str | bytes) -> JsonValue:
    """``json.loads`` for what a provider sent: a document nested too deeply (``[[[[…``, 100,000 deep) is a
    ``ValueError`` like any other malformed body, never a ``RecursionError`` escaping the error mapping."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class _Inflater:
    """One layer of gzip or deflate, inflated at most ``room`` bytes per call: whatever the ratio, one piece of
    an answer never becomes more than what is left under the cap (zlib keeps the rest of the input for later)."""

    def __init__(self, encoding: str) -> None:
        self._raw_fallback = encoding == "deflate"  # some servers send raw deflate, without the zlib header
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding != "deflate" else zlib.MAX_WBITS)

    def inflate(self, data: bytes, room: int) -> bytes:
        if self._zlib.eof:
            return b""  # bytes after the end of the stream: ignored, as httpx does
        fallback, self._raw_fallback = self._raw_fallback, False
        try:
            return self._zlib.decompress(data, room)
        except zlib.error:
            if not fallback:
                raise
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._zlib.decompress(data, room)


def _inflater(response: httpx.Response) -> _Inflater | None:
    """The inflater for an answer's Content-Encoding; None for none (or identity). Raises ``BodyUnreadable`` for
    a stack of encodings (``gzip, gzip`` is a bomb's shape: 1.8 KB that become 2 GB) or one the bot does not know."""
    header = ", ".join(response.headers.get_list("content-encoding"))
    codings = [c.strip().lower() for c in header.split(",") if c.strip() and c.strip().lower() != "identity"]
    if not codings:
        return None
    if len(codings) > 1:
        stacked = "the bot inflates one layer of gzip or deflate, never several"
        raise BodyUnreadable(header, stacked, response.status_code)
    if codings[0] not in _INFLATES:
        raise BodyUnreadable(header, "the bot reads plain, gzip or deflate answers only", response.status_code)
    return _Inflater(codings[0])


async def read_capped(response: httpx.Response, limit: int = MAX_BODY_BYTES) -> bytes:
    """Read a streamed answer's body, at most ``limit`` bytes on the wire and ``limit`` once inflated (a gzip bomb
    counts as what it becomes, and is never inflated further than that). Raises ``BodyTooLarge`` as soon as the
    limit is passed, or before reading when Content-Length says so, and ``BodyUnreadable`` for an encoding the bot
    does not inflate; closing the response then drops the connection with the rest unread."""
    try:
        content = response.content  # already read (an auth flow reads the answers it looks at)
    except httpx.ResponseNotRead:
        pass
    else:
        if len(content) > limit:
            raise BodyTooLarge(limit, response.status_code)
        return content
    declared = response.headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit, response.status_code)
    inflater = _inflater(response)
    chunks: list[bytes] = []
    size = wire = 0
    # the raw bytes: httpx's own decoding would inflate each network read whole before this could count it.
    # An async generator in fact; closed at once when the limit is passed, not whenever it is collected
    async with aclosing(cast("AsyncGenerator[bytes, None]", response.aiter_raw())) as stream:
        async for raw in stream:
            wire += len(raw)
            if wire > limit:
                raise BodyTooLarge(limit, response.status_code)
            try:
                chunk = raw if inflater is None else inflater.inflate(raw, limit - size + 1)
            except zlib.error as exc:
                encoding = response.headers.get("content-encoding", "")
                raise BodyUnreadable(encoding, f"the answer does not inflate ({exc})", response.status_code) from None
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(limit, response.status_code)
            chunks.append(chunk)
    content = b"".join(chunks)
    response._content = content  # where Response.aread() keeps the body; aread() itself has no limit
    return content


def _megabytes(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MB"


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP call as a provider client describes it."""

    method: str
    url: str
    what: str  # for messages: "check the status of run 42"
    idempotent: bool = True
    params: Mapping[str, JsonValue] | None = None
    json: JsonValue = None
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
        max_body: int = MAX_BODY_BYTES,
        deadline: float | None = None,
    ) -> None:
        self.client = client
        self.provider = provider
        self.connection = connection
        #: this connection's secrets; clients add the ones they come by (session tokens) as sources. And every
        #: secret of the running bot (``PROCESS``): a provider's log or message may echo another connection's
        #: password or key (a shared service account, a script printing its environment), and it goes to Slack
        self.redactor = Redactor(secrets)
        self.redactor.include(PROCESS)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._error_text = error_text or _default_error_text
        self.max_body = max_body
        #: seconds one exchange may take all told; the client's longest timeout unless told
        self.deadline = deadline if deadline is not None else _longest(client.timeout)

    # -- public -----------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    def excerpt(self, value: object, limit: int = 300) -> str:
        """``value`` as one line for a message: redacted first, then cut."""
        return self.redactor.excerpt(value, limit)

    def redact_status(self, status: RunStatus) -> RunStatus:
        """A run as the provider described it, without our secrets: every string it supplied (run id, raw status,
        message, warning, the extra fields, each task's name, raw status and message) reaches a card or the App
        Home, not only the messages."""
        redact = self.redactor.snapshot()  # one set of secrets, one pattern, for every field
        tasks = tuple(
            replace(t, name=redact(t.name), raw_status=redact(t.raw_status), message=redact(t.message))
            for t in status.tasks
        )
        return replace(
            status,
            run_id=redact(status.run_id),
            raw_status=redact(status.raw_status),
            message=redact(status.message),
            warning=redact(status.warning),
            extra={key: redact(value) for key, value in status.extra.items()},
            tasks=tasks,
        )

    def redacted_answer(self, response: httpx.Response) -> httpx.Response:
        """A copy of an answer whose body has no secret in any form: what error texts are taken from."""
        encoding = response.encoding or "utf-8"
        dropped = ("content-encoding", "content-length", "transfer-encoding")  # the copy is plain bytes
        return httpx.Response(
            response.status_code,
            headers=[(k, v) for k, v in response.headers.multi_items() if k.lower() not in dropped],
            content=self.redact(response.text).encode(encoding, "replace"),
            request=response.request,
        )

    async def send(self, call: Call) -> httpx.Response:
        attempts = self.retry.attempts if call.idempotent else 1
        last: ProviderError | None = None
        unknown = False  # an earlier attempt may have been acted on: a later refusal may be because of it
        for attempt in range(1, attempts + 1):
            try:
                response = await self._exchange(call)
            except httpx.TimeoutException as exc:
                last = self._timeout_error(call, exc)
            except httpx.TransportError as exc:
                last = self._unreachable(call, exc)
            except BodyRefused as exc:
                raise _told(self._refused_body(call, exc), unknown) from None
            except CredentialUnsendable as exc:  # raised before the request was written: nothing went out
                raise _told(self.error(
                    ProviderAuthError,
                    f"The bot cannot send the credentials of connection {self.connection} to {self.provider}: "
                    f"{exc.whose} {exc.problem}, and an HTTP header holds plain ASCII only. Nothing was "
                    f"sent to {self.provider}; check the value of its environment variable.",
                ), unknown) from None
            else:
                if response.is_success:
                    return response
                if response.is_redirect:
                    raise _told(self._redirected(call, response), unknown)
                last = self._status_error(call, response)
                if not _retryable_status(response.status_code):
                    raise _told(last, unknown)
            unknown = unknown or last.outcome_unknown
            if attempt < attempts:
                retry_after = last.retry_after if isinstance(last, ProviderUnavailable) else None
                await self._sleep(self.retry.delay(attempt, retry_after))
        assert last is not None
        raise _told(last, unknown)

    async def _exchange(self, call: Call) -> httpx.Response:
        """One request and its whole answer, read within ``max_body`` and ``deadline``; redirects are answers, never
        followed (whatever the client was built with). Past the deadline: ``CallTimedOut``, an httpx timeout."""
        sent = False  # whether the request itself began to go out (not a login on the way, not the connecting)

        async def trace(event: str, info: Mapping[str, object]) -> None:
            nonlocal sent
            if event.endswith("send_request_headers.started"):
                sent = True

        request = self.client.build_request(
            call.method,
            call.url,
            params=call.params,
            json=call.json,
            data=call.data,
            headers=call.headers,
            content=call.content,
            extensions={"trace": trace},
        )
        timer = asyncio.timeout(self.deadline)
        try:
            async with timer:
                response = await self.client.send(request, stream=True, follow_redirects=False)
                try:
                    await read_capped(response, self.max_body)
                finally:
                    await response.aclose()
        except (TimeoutError, httpx.TransportError) as exc:  # a library may turn the cancellation into an error
            if not timer.expired():
                if sent and isinstance(exc, httpx.NetworkError):  # reset once the request began to go out
                    raise BrokeAfterSending(exc, request) from exc
                raise
            assert self.deadline is not None
            if not sent:  # still connecting (or logging in) at the deadline: the provider never got this request
                raise httpx.ConnectTimeout(f"not connected within {self.deadline:g} s", request=request) from None
            raise CallTimedOut(self.deadline, request) from None
        return response

    async def json(self, call: Call) -> JsonValue:
        return self.decode(await self.send(call), call)

    def decode(self, response: httpx.Response, call: Call) -> JsonValue:
        try:
            return loads(response.content)
        except ValueError:
            raise self.error(
                ProviderResponseError,
                f"{self.provider} sent an answer that is not JSON when asked to {call.what} "
                f"(HTTP {response.status_code}: {self.excerpt(response.text)!r})",
                status_code=response.status_code,
                outcome_unknown=response.is_success and _acts(call),  # it answered "done", unreadably
            ) from None

    def error(
        self, cls: type[ProviderError], message: str, *, status_code: int | None = None, outcome_unknown: bool = False
    ) -> ProviderError:
        return cls(
            self.redact(message), provider=self.provider, connection=self.connection, status_code=status_code,
            outcome_unknown=outcome_unknown,
        )

    # -- failure mapping --------------------------------------------------------------------

    def _refused_body(self, call: Call, exc: BodyRefused) -> ProviderError:
        code = exc.status_code
        said = f" (HTTP {code})" if code else ""
        if isinstance(exc, BodyTooLarge):
            what = f"with more than {_megabytes(exc.limit)}"
            rule = "the bot reads no more than that of an answer"
        else:
            assert isinstance(exc, BodyUnreadable)
            encoding = self.excerpt(exc.encoding, 60)  # the provider's words: redacted, then cut
            what = f"in Content-Encoding {encoding!r}"
            rule = exc.reason
        # a trigger refused outright (4xx) did not start; any other answer may have come with a started run
        if not call.idempotent and (code is None or not 400 <= code < 500) and code != 503:
            return self.error(
                TriggerOutcomeUnknown,
                f"{self.provider} answered{said} {what} when asked to {call.what}; {rule}, so it is unknown "
                f"whether it started. Check the {self.provider} console before trying again.",
                status_code=code,
            )
        return self.error(
            ProviderResponseError,
            f"{self.provider} answered{said} {what} when asked to {call.what}; {rule}. Check that base_url of "
            f"connection {self.connection} is the {self.provider} API.",
            status_code=code,
            outcome_unknown=_acts(call) and (code is None or not 400 <= code < 500) and code != 503,
        )

    def _redirected(self, call: Call, response: httpx.Response) -> ProviderError:
        """A redirect is reported, never followed: the credentials of a connection go to its base_url only."""
        code = response.status_code
        asked = response.request.url
        try:
            target = asked.join(response.headers.get("location", ""))
        except httpx.InvalidURL:
            target = asked
        where = f"{target.scheme}://{target.netloc.decode('ascii', 'replace')}"
        if (target.scheme, target.host, target.port) != (asked.scheme, asked.host, asked.port):
            message = (
                f"{self.provider} redirected the request to {call.what} to another address ({where}, HTTP {code}); "
                f"the bot never sends the credentials of connection {self.connection} anywhere but its base_url, "
                f"so it did not follow. If {self.provider} has moved, put its new address in base_url."
            )
        else:
            message = (
                f"{self.provider} answered the request to {call.what} with a redirect (HTTP {code}) to "
                f"{self.excerpt(target.path, 200)}; the bot does not follow redirects. Check base_url of connection "
                f"{self.connection}."
            )
        return self.error(ProviderRejected, message, status_code=code)

    def _timeout_error(self, call: Call, exc: httpx.TimeoutException) -> ProviderError:
        if not call.idempotent and not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return self.error(
                TriggerOutcomeUnknown,
                f"{self.provider} did not answer in time when asked to {call.what}: it is unknown whether "
                f"it started. Check the {self.provider} console before trying again.",
            )
        why = str(exc) if isinstance(exc, CallTimedOut) else type(exc).__name__
        return self.error(
            ProviderUnavailable,
            f"{self.provider} did not answer in time when asked to {call.what} ({why}).",
            outcome_unknown=_acts(call) and not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout),
        )

    def _unreachable(self, call: Call, exc: httpx.TransportError) -> ProviderError:
        if not call.idempotent and isinstance(exc, httpx.RemoteProtocolError | BrokeAfterSending):
            return self.error(
                TriggerOutcomeUnknown,
                f"The connection to {self.provider} broke while asking it to {call.what}: it is unknown "
                f"whether it started. Check the {self.provider} console before trying again.",
            )
        return self.error(
            ProviderUnavailable,
            f"Cannot reach {self.provider} ({self.connection}) to {call.what}: {_described(exc)}",
            outcome_unknown=_acts(call) and isinstance(exc, httpx.RemoteProtocolError | BrokeAfterSending),
        )

    def _status_error(self, call: Call, response: httpx.Response) -> ProviderError:
        code = response.status_code
        # the body redacted whole before the provider's words are picked, decoded, re-encoded or cut from it; and
        # once more after (a form only decoding reveals): a secret cut in half is no longer recognised
        detail = self.excerpt(self._error_text(self.redacted_answer(response)))
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
                outcome_unknown=_acts(call) and code not in (429, 503),  # a 5xx may come after the work was done
            )
        return self.error(
            ProviderRejected,
            f"{self.provider} refused to {call.what} (HTTP {code}){said}.",
            status_code=code,
        )


def _acts(call: Call) -> bool:
    """Whether the call asks the provider to do something (a GET or HEAD only reads: its failure changed nothing)."""
    return call.method not in ("GET", "HEAD")


def _told(error: ProviderError, unknown: bool) -> ProviderError:
    """``error``, marked as leaving the outcome open when an earlier attempt of the call did."""
    if unknown:
        error.outcome_unknown = True
    return error


def _described(exc: httpx.TransportError) -> str:
    return str(exc) if isinstance(exc, BrokeAfterSending) else f"{type(exc).__name__}: {exc}"


def _retryable_status(code: int) -> bool:
    return code == 429 or code >= 500


def _default_error_text(response: httpx.Response) -> str:
    """The most useful words of an error body: a JSON ``message``/``detail``/``error``, else the text."""
    try:
        body = loads(response.content)
    except ValueError:
        ctype = response.headers.get("content-type", "")
        return "" if "html" in ctype else response.text
    return _message_of(body)


def _message_of(body: JsonValue) -> str:
    if isinstance(body, str):
        return body
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "error_description", "errors"):
            if body.get(key):
                return _message_of(body[key])
        return json.dumps(body)  # whole: the caller redacts, then cuts
    if isinstance(body, list):
        return "; ".join(_message_of(item) for item in body[:5])
    return str(body)
