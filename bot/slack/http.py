"""The bot's HTTP server on PORT: Slack's requests (HTTP mode) and the health endpoints.

A request to ``/slack/events`` is read within ``read_timeout`` and at most ``MAX_BODY`` bytes, checked by
``bot.slack.intake`` (signature, then shape: 401 or 400 with one WARNING line, never a traceback), claimed by
``bot.slack.replays`` (a repeat: 200, empty, nothing done), and only then handed to Bolt. A client that has
not sent its request headers within ``read_timeout`` of connecting (or of its last answer) is disconnected.

What a client costs is bounded the other way too. A client that does not read its answers (pipelining requests it
never reads, say) leaves them queued in the server's write buffer: once answers have waited there for
``read_timeout``, the connection is aborted (aiohttp would wait for the buffer to drain forever). aiohttp itself
queues at most 32 pipelined requests per connection before it stops reading. At most ``max_connections`` are
open at once; one more is closed as soon as it is accepted, so file descriptors run out for no one (a signed
command still gets in once a held connection is dropped). If the process runs out of them anyway, the loop's
"socket.accept() out of system resource" is one WARNING per ``ACCEPT_LOG_INTERVAL``, not a traceback per attempt.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.models import Json
from bot.ops.metrics import SLACK_ACK, SLACK_REQUESTS_REFUSED, Metrics
from bot.slack.intake import Accepted, Refused, Signatures, SslCheck, inspect
from bot.slack.replays import Claim, LedgerUnavailable, Replays

if TYPE_CHECKING:
    from logging import _ExcInfoType  # typeshed's, for the signature ServerLog.exception overrides

__all__ = ["ACCEPT_LOG_INTERVAL", "MAX_BODY", "MAX_CONNECTIONS", "HttpServer", "ServerLog"]

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[list[str]]]
MAX_BODY = 1024 * 1024  # Slack's largest payloads (a modal's state) are far below this
MAX_CONNECTIONS = 1000  # below the usual 1,024 file descriptors, with room for the database and the providers
ACCEPT_LOG_INTERVAL = 60.0  # seconds between two warnings that connections cannot be accepted


class HttpServer:
    def __init__(
        self,
        app: AsyncApp | None,
        *,
        ready: Check,
        metrics: Metrics | None = None,
        signatures: Signatures | None = None,
        replays: Replays | None = None,
        read_timeout: float = 10.0,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if app is not None and (signatures is None or replays is None):
            raise ValueError("serving Slack's requests needs the signing secret and the replay ledger")
        self.bolt = app
        self.ready = ready
        self.metrics = metrics
        self.signatures = signatures
        self.replays = replays
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stuck_since: dict[asyncio.BaseTransport, float] = {}  # a connection whose answers wait, since when
        self._accept_logged_at: float | None = None
        self._accept_failures = 0
        self._previous_handler: Callable[[asyncio.AbstractEventLoop, dict[str, object]], object] | None = None
        self.url = ""

    def build(self) -> web.Application:
        web_app = web.Application(client_max_size=MAX_BODY)
        if self.bolt is not None:
            web_app.router.add_post("/slack/events", self._slack)
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/readyz", self._readyz)
        if self.metrics is not None:
            web_app.router.add_get("/metrics", self._metrics)
        return web_app

    async def _slack(self, request: web.Request) -> web.StreamResponse:
        assert self.bolt is not None
        assert self.signatures is not None
        assert self.replays is not None
        arrived = time.monotonic()
        raw = await self._read(request)
        if isinstance(raw, Refused):
            return self._refuse(request, raw)
        checked = inspect(raw, request.headers, self.signatures)
        if isinstance(checked, Refused):
            return self._refuse(request, checked)
        if isinstance(checked, SslCheck):
            return web.Response(status=200)
        try:
            retry = request.headers.get("X-Slack-Retry-Num", "")
            shown = retry if retry.isascii() and retry.isdigit() and len(retry) < 4 else None  # it goes in a log
            claim = await self.replays.claim(checked.key, retry=shown)
        except LedgerUnavailable as exc:
            if not _reads_only(checked.body):
                log.warning("a Slack request was refused: the database did not answer (%s)", exc)
                return web.Response(status=503)
            # help, list, status…: done twice they change nothing, so a slow database does not cost the answer
            log.warning("a read-only command was answered without its replay claim: the database did not answer (%s)",
                        exc)
            return await self._dispatch(request, checked, None, arrived)
        if claim is None:
            return web.Response(status=200)
        return await self._dispatch(request, checked, claim, arrived)

    async def _dispatch(
        self, request: web.Request, checked: Accepted, claim: Claim | None, arrived: float
    ) -> web.StreamResponse:
        assert self.bolt is not None
        assert self.replays is not None
        acked = False
        renewing = self.replays.keep(claim) if claim is not None else None  # a slow attempt is alive: never taken
        try:
            try:
                # building the request reads the body's fields too (authorizations, enterprise…)
                bolt_request = AsyncBoltRequest(
                    body=checked.text,
                    query=request.query_string,
                    headers=dict(request.headers),
                )
                if bolt_request.body != checked.body:  # Bolt's parse of a command mentioning "payload": empty
                    bolt_request.body = checked.body
                    bolt_request.context = build_async_context(AsyncBoltContext({}), checked.body)
                bolt_response = await self.bolt.async_dispatch(bolt_request)
            except Exception as exc:  # Bolt's routing choked on a field intake does not check: the body's fault
                return self._refuse(request, Refused(400, f"Bolt could not route it ({type(exc).__name__})"))
            answer = await to_aiohttp_response(bolt_response)
            if answer.status >= 300:
                return answer
            # a 2xx from Bolt means its listener acked and is at work: from here a repeat must do nothing, whether
            # or not the answer reaches Slack. Recorded before the answer is written (bounded), so no repeat can
            # find the claim held once the client has the ack
            acked = True
            if claim is not None:
                await self.replays.answered(claim)
            try:
                await answer.prepare(request)
                await answer.write_eof()
            except ConnectionResetError:  # the client stopped waiting (Slack gives up after 3 s): not our error
                log.info("a Slack request's answer was not sent: the client had gone")
            else:
                if self.metrics is not None:
                    self.metrics.observe(SLACK_ACK, time.monotonic() - arrived)
            return answer
        finally:
            if renewing is not None:
                renewing.cancel()
            if claim is not None and not acked:
                await self.replays.failed(claim)

    async def _read(self, request: web.Request) -> bytes | Refused:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return Refused(413, f"a body of {request.content_length} bytes (at most {MAX_BODY})")
        try:
            async with asyncio.timeout(self.read_timeout):
                return await request.read()
        except TimeoutError:
            return Refused(408, f"the body did not arrive within {self.read_timeout:g} s")
        except web.HTTPRequestEntityTooLarge:
            return Refused(413, f"a body over {MAX_BODY} bytes")
        except (RequestPayloadError, HttpProcessingError) as exc:  # e.g. a gzip body that is not gzip
            return Refused(400, f"the body could not be read: {_short(exc)}")

    def _refuse(self, request: web.Request, refused: Refused) -> web.Response:
        """One WARNING line, no body content, no traceback; the connection is closed after the answer."""
        log.warning("refused a request to /slack/events from %s: %s", request.remote, refused.reason)
        if self.metrics is not None:
            self.metrics.inc(SLACK_REQUESTS_REFUSED, {"reason": str(refused.status)})
        response = web.Response(status=refused.status)
        response.force_close()
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def _readyz(self, request: web.Request) -> web.Response:
        problems = await self.ready()
        status = 200 if not problems else 503
        return web.json_response({"ready": not problems, "problems": problems}, status=status)

    async def _metrics(self, request: web.Request) -> web.Response:
        assert self.metrics is not None
        body = await self.metrics.render()
        return web.Response(
            text=body, content_type="text/plain", charset="utf-8", headers={"X-Content-Version": "0.0.4"}
        )

    async def start(self, host: str, port: int) -> str:
        # keepalive_timeout also bounds the wait for a request's headers (aiohttp arms it at connect);
        # lingering_time=0: a body left unread (refused, too slow) is not waited for after the answer
        self._runner = web.AppRunner(
            self.build(),
            access_log=None,
            keepalive_timeout=self.read_timeout,
            lingering_time=0,
            logger=ServerLog(logging.getLogger("aiohttp.server"), {}),
        )
        await self._runner.setup()
        loop = asyncio.get_running_loop()
        # our own listener rather than aiohttp's site: each connection passes the count of open ones first
        self._listener = await loop.create_server(self._connection, host, port)
        self._previous_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._loop_exception)
        self._sweeper = asyncio.ensure_future(self._sweep())
        bound = self._listener.sockets[0].getsockname()
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound[1]}"  # noqa: S104
        return self.url

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._listener is not None:
            self._listener.close()
            asyncio.get_running_loop().set_exception_handler(self._previous_handler)
            self._listener = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def open_connections(self) -> int:
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    def _connection(self) -> asyncio.BaseProtocol:
        """The protocol for a connection just accepted: aiohttp's, or a quick close when too many are open."""
        assert self._runner is not None
        assert self._runner.server is not None
        if self.open_connections() >= self.max_connections:
            return _CloseAtOnce()
        return self._runner.server()

    async def _sweep(self) -> None:
        """Abort every connection whose answers have waited unread in the write buffer for ``read_timeout``."""
        interval = min(1.0, self.read_timeout / 4)
        while True:
            await asyncio.sleep(interval)
            self._abort_stuck(time.monotonic())

    def _abort_stuck(self, now: float) -> None:
        server = self._runner.server if self._runner is not None else None
        if server is None:
            return
        waiting: dict[asyncio.BaseTransport, float] = {}
        for handler in server.connections:
            transport = handler.transport
            if transport is None or not transport.get_write_buffer_size():
                continue
            since = self._stuck_since.get(transport, now)
            if now - since >= self.read_timeout:
                log.warning("closed a connection whose answers went unread for %g s", self.read_timeout)
                transport.abort()
                continue
            waiting[transport] = since
        self._stuck_since = waiting

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        """Out of file descriptors, the loop reports each failed accept with a traceback: one line a minute."""
        if not str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            if self._previous_handler is not None:
                self._previous_handler(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        self._accept_failures += 1
        now = time.monotonic()
        if self._accept_logged_at is None or now - self._accept_logged_at >= ACCEPT_LOG_INTERVAL:
            error = context.get("exception")
            log.warning(
                "cannot accept connections: %s (%d time(s) since the last warning)",
                error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__,
                self._accept_failures,
            )
            self._accept_logged_at = now
            self._accept_failures = 0


#: commands that only read: answering one twice changes nothing, so it needs no replay claim when the database is slow
READ_ONLY_COMMANDS = frozenset({"", "help", "list", "status", "last", "stats"})


def _reads_only(body: Json) -> bool:
    """A slash command whose first word only reads (``run`` and anything that opens, starts or changes: no)."""
    text = body.get("text")
    if "command" not in body or not isinstance(text, str):
        return False
    words = text.split(maxsplit=1)
    return (words[0].lower() if words else "") in READ_ONLY_COMMANDS


class _CloseAtOnce(asyncio.Protocol):
    """A connection beyond the limit: closed without a word (reading it would already cost what the limit saves)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log. A request aiohttp cannot parse (a header too long, a bad Content-Length or chunk,
    a path that is not ASCII) is the client's doing, answered 400 by aiohttp: one WARNING line, no traceback, or
    anyone could fill the error log. Anything else (a handler that raised) stays an ERROR with its traceback."""

    def exception(  # typeshed's signature: what Logger.error takes, and kwargs it would refuse
        self,
        msg: object,
        *args: object,
        exc_info: _ExcInfoType = True,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **kwargs: object,
    ) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            self.logger.warning("%s: %s", str(msg) % args, _short(error))
            return
        self.logger.error(msg, *args, exc_info=exc_info, stack_info=stack_info, stacklevel=stacklevel, extra=extra)


def _short(error: BaseException) -> str:
    """An exception in one short line: what a client sent can be long."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 160 else text[:159] + "…"
