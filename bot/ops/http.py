"""The bot's HTTP server on PORT: Slack's requests (HTTP mode) and the health endpoints.

A request to ``/slack/events`` is read within ``read_timeout`` and at most ``MAX_BODY`` bytes, checked by
``bot.slack.intake`` (signature, then shape: 401 or 400 with one WARNING line, never a traceback), claimed by
``bot.slack.replays`` (a repeat: 200, empty, nothing done), and only then handed to Bolt. A client that has
not sent its request headers within ``read_timeout`` of connecting (or of its last answer) is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.ops.metrics import Metrics
from bot.slack.intake import Refused, Signatures, SslCheck, inspect
from bot.slack.replays import LedgerUnavailable, Replays

__all__ = ["MAX_BODY", "HttpServer", "ServerLog"]

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[list[str]]]
MAX_BODY = 1024 * 1024  # Slack's largest payloads (a modal's state) are far below this


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
    ) -> None:
        if app is not None and (signatures is None or replays is None):
            raise ValueError("serving Slack's requests needs the signing secret and the replay ledger")
        self.bolt = app
        self.ready = ready
        self.metrics = metrics
        self.signatures = signatures
        self.replays = replays
        self.read_timeout = read_timeout
        self._runner: web.AppRunner | None = None
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
            log.warning("a Slack request was refused: the database did not answer (%s)", exc)
            return web.Response(status=503)
        if claim is None:
            return web.Response(status=200)
        marking: asyncio.Task[None] | None = None
        try:
            bolt_request = AsyncBoltRequest(
                body=checked.text,
                query=request.query_string,
                headers=dict(request.headers),
            )
            if bolt_request.body != checked.body:  # Bolt's parse of a command mentioning "payload": empty
                bolt_request.body = checked.body
                bolt_request.context = build_async_context(AsyncBoltContext({}), checked.body)
            try:
                bolt_response = await self.bolt.async_dispatch(bolt_request)
            except Exception as exc:  # Bolt's routing choked on a field intake does not check: the body's fault
                return self._refuse(request, Refused(400, f"Bolt could not route it ({type(exc).__name__})"))
            answer = await to_aiohttp_response(bolt_response)
            if answer.status >= 300:
                return answer
            # a 2xx from Bolt means its listener acked and is at work: from here a repeat must do nothing, whether
            # or not the answer reaches Slack. Recorded while the answer is written, so neither waits for the
            # other (a client slow to read cannot keep the claim unanswered)
            marking = asyncio.ensure_future(self.replays.answered(claim))
            await answer.prepare(request)
            await answer.write_eof()
            return answer
        finally:
            if marking is None:
                await self.replays.failed(claim)
            else:
                await asyncio.shield(marking)

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
            self.metrics.inc("pipeline_bot_slack_requests_refused_total", {"reason": str(refused.status)})
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
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0]
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound[1]}"  # noqa: S104
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log. A request aiohttp cannot parse (a header too long, a bad Content-Length or chunk,
    a path that is not ASCII) is the client's doing, answered 400 by aiohttp: one WARNING line, no traceback, or
    anyone could fill the error log. Anything else (a handler that raised) stays an ERROR with its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError):
            self.logger.warning("%s: %s", str(msg) % args, _short(error))
            return
        self.logger.error(msg, *args, exc_info=exc_info, **kwargs)


def _short(error: BaseException) -> str:
    """An exception in one short line: what a client sent can be long."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= 160 else text[:159] + "…"
