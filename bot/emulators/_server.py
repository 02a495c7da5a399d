"""The HTTP side every emulator shares: aiohttp app, fault injection, request log, control API.

A provider emulator subclasses ``EmulatorServer``, declares its routes with names (faults match
route names) and answers as the vendor documents say. ``start()`` binds an ephemeral port by default
and returns the base URL, so tests run many emulators side by side.

Control API (for the demo, scenario tests in other processes and people trying scripts):
``GET /_emulator/runs``, ``POST /_emulator/runs`` ``{job, parameters?, outcome?}`` (a run started
outside the bot), ``POST /_emulator/faults`` (a fault), ``DELETE /_emulator/faults``,
``POST /_emulator/clock`` ``{advance}`` (manual clock only), ``GET /_emulator/requests``. And a console: an HTML
page per run at ``GET /console/runs/<run id>`` (``_console.py``), where the demo's "Open in console" leads.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Self

from aiohttp import web

from bot.emulators._console import console_routes
from bot.emulators._core import EmulatorState, Fault, JsonValue, ManualClock, Outcome, RecordedRequest

__all__ = ["EmulatorServer", "Route", "json_response", "read_body"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]



@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    name: str
    handler: Handler


def json_response(body: JsonValue, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, content_type="application/json", headers=headers
    )


async def read_body(request: web.Request) -> JsonValue:
    """The request body as JSON whatever the headers say (vendor clients often send none), else form."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        pass
    text = raw.decode("utf-8", "replace")
    form = urllib.parse.parse_qs(text, keep_blank_values=True)
    if form:
        return {k: v[-1] for k, v in form.items()}
    return text


async def _trickle(answer: web.StreamResponse, request: web.Request, every: float) -> web.StreamResponse:
    """Send ``answer`` one byte every ``every`` seconds (chunked: no length to tell the client how long it is)."""
    if not isinstance(answer, web.Response) or not isinstance(answer.body, bytes):
        return answer
    body = answer.body
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in ("content-length", "transfer-encoding")}
    slow = web.StreamResponse(status=answer.status, reason=answer.reason, headers=headers)
    await slow.prepare(request)
    try:
        for i in range(len(body)):
            await asyncio.sleep(every)
            await slow.write(body[i : i + 1])
        await slow.write_eof()
    except ConnectionError:  # the client gave up: what the fault is for
        pass
    return slow


async def _reset(answer: web.StreamResponse, request: web.Request) -> web.StreamResponse:
    """The request was handled (a trigger's run exists) but its answer is lost: the connection is reset (RST),
    as a proxy or a crashed gateway between the bot and the provider would."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return answer


class EmulatorServer:
    """Base of the four provider emulators. Route handlers are named ``on_<what>``."""

    provider: ClassVar[str]

    def __init__(self, state: EmulatorState | None = None) -> None:
        self.state = state or EmulatorState()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- for subclasses ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        raise NotImplementedError  # every emulator declares its routes

    def expired_token_response(self) -> web.StreamResponse:
        """What the provider answers for an expired token."""
        return json_response({"message": "token expired"}, status=401)

    def configure(self, scenario: Mapping[str, JsonValue]) -> None:
        """Provider-specific scenario keys (credentials…). Unknown keys are an error."""
        if scenario:
            raise ValueError(f"unknown scenario keys for {self.provider}: {sorted(scenario)}")

    # -- app --------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=16 * 1024 * 1024)
        for route in self.routes():
            app.router.add_route(route.method, route.path, route.handler, name=route.name)
        control = [
            ("GET", "/_emulator/runs", self._ctl_runs),
            ("POST", "/_emulator/runs", self._ctl_start_run),
            ("POST", "/_emulator/faults", self._ctl_add_fault),
            ("DELETE", "/_emulator/faults", self._ctl_clear_faults),
            ("POST", "/_emulator/clock", self._ctl_clock),
            ("GET", "/_emulator/requests", self._ctl_requests),
        ]
        for method, path, handler in [*control, *console_routes(self.state, self.provider)]:
            app.router.add_route(method, path, handler)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        info = request.match_info
        name = info.route.name if info.http_exception is None else None
        if name is None:  # control API and unknown paths
            return await handler(request)
        body = await read_body(request)  # aiohttp caches the bytes: handlers read it again
        self.state.requests.append(
            RecordedRequest(
                route=name,
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )
        fault = self.state.take_fault(name)
        if fault is None:
            return await handler(request)
        return await self._inject(fault, request, handler)

    async def _inject(self, fault: Fault, request: web.Request, handler: Handler) -> web.StreamResponse:
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay)
            return await handler(request)
        if fault.kind == "trickle":
            return await _trickle(await handler(request), request, fault.delay)
        if fault.kind == "reset":
            return await _reset(await handler(request), request)
        if fault.kind == "malformed":
            return web.Response(text='{"status": "RUNN', status=200, content_type="application/json")
        if fault.kind == "expired_token":
            return self.expired_token_response()
        if fault.kind == "html":
            page = f"<html><body><h1>{fault.status} Bad Gateway</h1></body></html>"
            return web.Response(text=page, status=fault.status, content_type="text/html")
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
        return json_response({"message": f"injected fault {fault.status}"}, fault.status, headers)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._runner = web.AppRunner(self.build_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0]
        self.url = f"http://{host}:{bound[1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- control API ------------------------------------------------------------------------

    async def _ctl_runs(self, request: web.Request) -> web.Response:
        now = self.state.now()
        return json_response(
            [
                {
                    "run_id": r.run_id,
                    "job": r.job,
                    "phase": r.phase(now),
                    "parameters": r.parameters,
                    "external": r.external,
                }
                for r in self.state.runs.values()
            ]
        )

    async def _ctl_start_run(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        try:
            outcome = Outcome.parse(body["outcome"]) if body.get("outcome") else None
            run = self.external_run(str(body["job"]), body.get("parameters") or {}, outcome)
        except (KeyError, ValueError, TypeError) as exc:
            return json_response({"message": f"bad request: {exc}"}, 400)
        return json_response({"run_id": run}, 201)

    def external_run(self, job: str, parameters: Mapping[str, JsonValue], outcome: Outcome | None = None) -> str:
        """Start a run as the provider's console or scheduler would; returns its run id."""
        return self.state.start_run(job, parameters, external=True, outcome=outcome).run_id

    async def _ctl_add_fault(self, request: web.Request) -> web.Response:
        try:
            self.state.add_fault(Fault.parse(await read_body(request)))
        except (ValueError, TypeError) as exc:
            return json_response({"message": f"bad fault: {exc}"}, 400)
        return json_response({"ok": True}, 201)

    async def _ctl_clear_faults(self, request: web.Request) -> web.Response:
        self.state.clear_faults()
        return json_response({"ok": True})

    async def _ctl_clock(self, request: web.Request) -> web.Response:
        body = await read_body(request)
        if not isinstance(self.state.clock, ManualClock):
            return json_response({"message": "this emulator runs on real time"}, 409)
        self.state.clock.advance(float(body.get("advance", 0)))
        return json_response({"now": self.state.now()})

    async def _ctl_requests(self, request: web.Request) -> web.Response:
        return json_response(
            [
                {"route": r.route, "method": r.method, "path": r.path, "query": r.query, "body": r.body}
                for r in self.state.requests
            ]
        )
