"""The bot's HTTP server on PORT: Slack's requests (HTTP mode) and the health endpoints."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.ops.metrics import Metrics

__all__ = ["HttpServer"]

Check = Callable[[], Awaitable[list[str]]]


class HttpServer:
    def __init__(self, app: AsyncApp | None, *, ready: Check, metrics: Metrics | None = None) -> None:
        self.bolt = app
        self.ready = ready
        self.metrics = metrics
        self._runner: web.AppRunner | None = None
        self.url = ""

    def build(self) -> web.Application:
        web_app = web.Application(client_max_size=1024 * 1024)
        if self.bolt is not None:
            web_app.router.add_post("/slack/events", self._slack)
        web_app.router.add_get("/healthz", self._healthz)
        web_app.router.add_get("/readyz", self._readyz)
        if self.metrics is not None:
            web_app.router.add_get("/metrics", self._metrics)
        return web_app

    async def _slack(self, request: web.Request) -> web.Response:
        assert self.bolt is not None
        response = await self.bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

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
        self._runner = web.AppRunner(self.build(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound = self._runner.addresses[0]
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{bound[1]}"  # noqa: S104
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
