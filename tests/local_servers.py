"""A local HTTP server answering every path with one handler: the gateways, proxies and odd providers the tests
stand in front of the bot's real clients."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def web_server(handler: Handler, *, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve ``handler`` on a free port of 127.0.0.1; yields the base URL (``http://127.0.0.1:PORT``, ``https`` with
    ``tls``). Handlers still running at the end are cancelled (some never end on purpose)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls).start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"{'https' if tls else 'http'}://{host}:{port}"
    finally:
        await runner.cleanup()


async def refuse_showing_the_request(request: web.Request) -> web.StreamResponse:
    """A proxy's 407 whose page shows the request it refused, headers and all, as a debugging or verbose proxy does."""
    shown = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
    return web.Response(status=407, text=f"Access denied for:\n{request.method} {request.url}\n{shown}")
