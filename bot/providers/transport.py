"""A connection's HTTP/1.1 calls sent on aiohttp's connection pool, behind httpx's API.

The provider clients keep httpx (auth flows, ``build_request``, ``Response``, every test); this transport sends
what httpx built through one ``aiohttp.ClientSession`` per connection. aiohttp's pool hands out a connection in
constant time where httpcore's scans all of them (bot/providers/shards.py): client CPU per call, 6,000 GETs at 64
concurrent to a local server answering in 200 ms, measured by the lead: httpx's own pool 21 ms, ``ShardedTransport``
2.05 ms, this transport 0.99 ms, raw aiohttp 0.36 ms. HTTP/2 clients (Tailer) keep ``ShardedTransport``: aiohttp
has no HTTP/2.

What httpx's own transport guarantees and the bot relies on, kept here:
- the ``trace`` request extension hears ``http11.send_request_headers.started`` just before the request's first
  byte is handed to the connection (aiohttp's ``on_request_headers_sent`` fires before it buffers the headers):
  ``HttpCaller`` tells a trigger that never went out ("did not start") from one that may have (unknown);
- failures as httpx's exceptions, by cause: no connection (DNS, refused, unreachable, TLS) ``ConnectError``; the
  connection broken once the request went out ``ReadError``; a server that hangs up before answering, a body cut
  short, a malformed status line or header ``RemoteProtocolError``; ``PoolTimeout``, ``ConnectTimeout``,
  ``WriteTimeout``, ``ReadTimeout`` from the request's ``timeout`` extension. Cancellation stays cancellation;
- no retry of its own: aiohttp resends a GET or PUT whose connection broke, and a DataKitchen trigger is a PUT;
- the answer streamed as it came (no inflating: ``read_capped`` inflates under its cap), never buffered whole;
  closing it unread closes its connection; no redirects, no cookies kept, no header of aiohttp's own (nor the
  Basic auth aiohttp makes of a URL's ``user:password@``);
- TLS verified with ``tls_context()`` (passed in by ``base.py``). aiohttp reads no environment: a proxy from it is
  httpx's own transport, which ``httpx.AsyncClient`` mounts per scheme ahead of the client's own transport (this
  one); a host in ``NO_PROXY`` gets this one.

The write timeout bounds the time from a connection in hand to the request handed to it (aiohttp writes a body
larger than the socket's buffer in a task of its own); the call's deadline (``HttpCaller``) bounds the rest.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import SimpleNamespace
from typing import NoReturn

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

__all__ = ["AiohttpTransport"]

Trace = Callable[[str, Mapping[str, object]], Awaitable[None]]

#: headers aiohttp adds unless told not to: the request goes out with exactly the headers httpx built
_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")
#: the longest status line or header line read (httpcore's h11 takes up to 100 KB of headers; aiohttp's 8 KB
#: default would refuse a long Content-Security-Policy or cookie)
_MAX_LINE = 64 * 1024

_POOL, _CONNECT, _WRITE, _SENT = "pool", "connect", "write", "sent"


class _Attempt:
    """One request's way through aiohttp, as its trace hooks see it: which phase it is in, and the timer of that
    phase (pool wait, connect, write; aiohttp times each read itself)."""

    __slots__ = ("phase", "request", "timeouts", "timer", "trace")

    def __init__(self, request: httpx.Request, timer: asyncio.Timeout) -> None:
        self.request = request
        self.timer = timer
        self.timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        trace = request.extensions.get("trace")
        self.trace: Trace | None = trace
        self.phase = _POOL

    def enter(self, phase: str, timeout: str | None) -> None:
        self.phase = phase
        seconds = self.timeouts.get(timeout) if timeout else None
        self.timer.reschedule(None if seconds is None else asyncio.get_running_loop().time() + seconds)

    @property
    def connected(self) -> bool:
        return self.phase in (_WRITE, _SENT)

    @property
    def sent(self) -> bool:
        return self.phase == _SENT


def _attempt(context: SimpleNamespace) -> _Attempt:
    attempt = context.trace_request_ctx
    assert isinstance(attempt, _Attempt)
    return attempt


async def _connecting(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
    _attempt(context).enter(_CONNECT, "connect")


async def _connected(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
    _attempt(context).enter(_WRITE, "write")


async def _sending(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
    attempt = _attempt(context)
    attempt.enter(_SENT, None)  # from here aiohttp's read timeout (it starts once the request is written)
    if attempt.trace is not None:
        await attempt.trace("http11.send_request_headers.started", {"request": attempt.request})


def _trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_connection_create_start.append(_connecting)
    config.on_connection_create_end.append(_connected)
    config.on_connection_reuseconn.append(_connected)
    config.on_request_headers_sent.append(_sending)
    config.freeze()
    return config


def _raise_mapped(exc: Exception, attempt: _Attempt) -> NoReturn:
    """``exc`` (aiohttp's, or an OS error it let through) as the httpx exception of the same cause."""
    request = attempt.request
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ClientResponseError):
        # aiohttp's own words only: its text reads "400, message=…, url='…'" for an answer it could not parse (no
        # HTTP 400 was answered: a person took it for one) and quotes the whole URL, query string and all
        message = exc.message or type(exc).__name__
    mapped: httpx.TransportError
    if isinstance(exc, aiohttp.SocketTimeoutError):
        mapped = httpx.ReadTimeout(message, request=request)
    elif isinstance(exc, aiohttp.ConnectionTimeoutError):
        mapped = httpx.ConnectTimeout(message, request=request)
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        mapped = httpx.ReadTimeout(message, request=request)
    elif isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        mapped = httpx.ProxyError(message, request=request)
    elif isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, unreachable, TLS: nothing sent
        mapped = httpx.ConnectError(message, request=request)
    elif isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError):
        # hung up before the answer, a body cut short, a status line or header aiohttp could not parse
        mapped = httpx.RemoteProtocolError(message, request=request)
    elif isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        mapped = httpx.UnsupportedProtocol(message, request=request)
    elif isinstance(exc, aiohttp.ClientError | OSError):
        # reset, broken pipe, a closed connection: a network error; before a connection was in hand, a connect error
        cls = httpx.ReadError if attempt.connected else httpx.ConnectError
        mapped = cls(message, request=request)
    else:
        raise exc
    raise mapped from exc


def _reason_phrase(reason: str | None) -> bytes:
    """The reason phrase's bytes as they came: aiohttp decodes them as UTF-8 with ``surrogateescape``, and a phrase
    outside latin-1 (a localized server, a gateway's "200 Käynnissä") must not fail the answer: it carries nothing
    the bot reads (UnicodeEncodeError escaped the transport, unmapped: a trigger the provider took was lost)."""
    return (reason or "").encode("utf-8", "surrogateescape")


class _Body(httpx.AsyncByteStream):
    """An answer's body as aiohttp receives it, raw (no inflating); closed unread, its connection is closed."""

    def __init__(self, response: aiohttp.ClientResponse, attempt: _Attempt) -> None:
        self._response = response
        self._attempt = attempt

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, OSError) as exc:  # a TimeoutError too: aiohttp's read timeout
            _raise_mapped(exc, self._attempt)

    async def aclose(self) -> None:
        response = self._response
        if response.content.at_eof() and response.content.exception() is None:
            response.release()  # read to its end: the connection goes back to the pool
        else:
            response.close()  # the rest unread: the connection is closed, its place in the pool freed


class AiohttpTransport(httpx.AsyncBaseTransport):
    """``connections`` connections at most (to one host: a connection's base_url), each kept alive
    ``keepalive_expiry`` seconds, TLS verified with ``verify`` (the provider clients pass ``shards.tls_context()``;
    None: aiohttp's default verification). The session is made on the first request, on that request's event loop."""

    def __init__(
        self, connections: int, *, keepalive_expiry: float = 5.0, verify: ssl.SSLContext | None = None
    ) -> None:
        self.connections = connections
        self.keepalive_expiry = keepalive_expiry
        self.verify = verify
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _session_for(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        if self._session is not None and self._loop is loop and not self._session.closed:
            return self._session
        if self._session is not None and not self._session.closed:
            # made on another event loop, now closed (it cannot be used from this one): its connections are dropped
            connector = self._session.connector
            self._session.detach()
            if connector is not None:
                connector._close()
        connector = aiohttp.TCPConnector(
            limit=self.connections,
            limit_per_host=self.connections,
            keepalive_timeout=self.keepalive_expiry,
            ssl=True if self.verify is None else self.verify,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=_AUTO_HEADERS,
            auto_decompress=False,
            trust_env=False,  # a proxy from the environment is httpx's transport, mounted per scheme
            trace_configs=[_trace_config()],
            timeout=aiohttp.ClientTimeout(total=None, connect=None, sock_connect=None, sock_read=None),
            max_line_size=_MAX_LINE,
            max_field_size=_MAX_LINE,
        )
        # aiohttp resends a GET, PUT or DELETE once when its connection breaks: a PUT may start a run (DataKitchen's
        # trigger), and the retries of reads are HttpCaller's. No public switch in aiohttp 3.14
        session._retry_connection = False
        self._session, self._loop = session, loop
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session_for(asyncio.get_running_loop())
        headers = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw)
        try:
            body = request.content
        except httpx.RequestNotRead:  # a streamed upload (none of the clients sends one): sent whole
            body = await request.aread()
            headers.popall("Transfer-Encoding", None)
            headers["Content-Length"] = str(len(body))
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        pool = timeouts.get("pool")
        timer = asyncio.timeout_at(None if pool is None else asyncio.get_running_loop().time() + pool)
        attempt = _Attempt(request, timer)
        try:
            async with timer:
                response = await session.request(
                    request.method,
                    # without the URL's user and password: aiohttp would send them as Basic auth (or refuse them
                    # beside our Authorization header with a ValueError); httpx's own transports never send them
                    URL(str(request.url), encoded=True).with_user(None),
                    headers=headers,
                    data=body or None,
                    allow_redirects=False,
                    compress=False,
                    timeout=aiohttp.ClientTimeout(total=None, sock_read=timeouts.get("read")),
                    server_hostname=request.extensions.get("sni_hostname"),
                    trace_request_ctx=attempt,
                )
        except TimeoutError as exc:
            if not timer.expired():
                _raise_mapped(exc, attempt)  # aiohttp's own (read): this timer's are plain TimeoutErrors
            if attempt.phase == _POOL:
                raise httpx.PoolTimeout("no connection free in time", request=request) from None
            if attempt.phase == _CONNECT:
                raise httpx.ConnectTimeout("not connected in time", request=request) from None
            raise httpx.WriteTimeout("the request not written in time", request=request) from None
        except (aiohttp.ClientError, OSError) as exc:
            _raise_mapped(exc, attempt)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if attempt.phase != _POOL or task is None or task.cancelling():
                raise  # cancellation stays cancellation
            # nobody cancelled this call: aiohttp cancels the calls waiting for a connection when its session closes
            raise httpx.ConnectError("the client was closed before a connection was free", request=request) from None
        try:
            return httpx.Response(
                response.status,
                headers=list(response.raw_headers),
                stream=_Body(response, attempt),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": _reason_phrase(response.reason)},
            )
        except BaseException:
            response.close()  # never handed on: nobody else would give its connection back
            raise

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
