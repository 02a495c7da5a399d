"""Profitbase InVision Data Flow execution API, as the vendor document describes it.

``POST {site}/api/pub/v1/dataflows/{id}/start[?await=true]`` and
``GET {site}/api/pub/v1/dataflows/{id}/runs/{runId}/status``; the key as ``api_key`` query
parameter or ``x-api-key`` header; answers ``{runId, status}``. The only documented error is a bare
500, which is what unknown flows and runs get.

A missing or wrong key is answered 401, which no source documents; ``strict=True`` answers it as the document
allows, with the bare 500 (docs/PROVIDERS.md, "InVision: provenance").
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import ClassVar

from aiohttp import web

from bot.emulators._core import EmulatorState, JsonValue
from bot.emulators._server import EmulatorServer, Route, json_response

__all__ = ["InVisionEmulator"]

_STATUS = {"queued": "Pending", "running": "Running", "succeeded": "Succeeded", "failed": "Failed",
           "canceled": "Failed"}


class InVisionEmulator(EmulatorServer):
    provider: ClassVar[str] = "invision"

    def __init__(
        self,
        state: EmulatorState | None = None,
        *,
        api_keys: Iterable[str] = (),
        prefix: str = "/invision/",
        await_limit_s: float = 600.0,
        strict: bool = False,
    ) -> None:
        super().__init__(state)
        #: answer only as the document does (see the module docstring)
        self.strict = strict
        self.api_keys = set(api_keys)  # empty: any key is accepted
        self.prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
        self.await_limit_s = await_limit_s
        #: answer a start without its runId (the flow is started all the same): the document promises one, a
        #: client must still not take such an answer for a refusal
        self.omit_run_id = False

    def configure(self, scenario: Mapping[str, JsonValue]) -> None:
        scenario = dict(scenario)
        self.api_keys = set(scenario.pop("api_keys", self.api_keys))
        if "prefix" in scenario:
            self.prefix = "/" + str(scenario.pop("prefix")).strip("/") + "/"
        for key in ("omit_run_id", "strict"):
            if key in scenario:
                setattr(self, key, bool(scenario.pop(key)))
        super().configure(scenario)

    def routes(self) -> list[Route]:
        base = f"{self.prefix}api/pub/v1/dataflows/{{flow}}"
        return [
            Route("POST", f"{base}/start", "trigger", self.on_start),
            Route("GET", f"{base}/runs/{{run}}/status", "status", self.on_status),
        ]

    def expired_token_response(self) -> web.StreamResponse:
        return web.Response(status=401)

    def _authorized(self, request: web.Request) -> bool:
        key = request.headers.get("x-api-key") or request.query.get("api_key")
        return bool(key) and (not self.api_keys or key in self.api_keys)

    def _refused(self) -> web.Response:
        """The document gives no answer for a refused key: 401 by assumption; strict, its one error, a bare 500."""
        return web.Response(status=500 if self.strict else 401)

    def _answer(self, run_id: str) -> web.Response:
        run = self.state.runs[run_id]
        return json_response({"runId": run.run_id, "status": _STATUS[run.phase(self.state.now())]})

    async def on_start(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._refused()
        flow = request.match_info["flow"]
        if not self.state.knows(flow):
            return web.Response(status=500)
        run = self.state.start_run(flow, run_id=self.state.new_id("uuid"))
        if request.query.get("await", "").lower() == "true":
            waited = 0.0
            while run.phase(self.state.now()) in ("queued", "running") and waited < self.await_limit_s:
                await asyncio.sleep(0.05)
                waited += 0.05
        if self.omit_run_id:
            return json_response({"status": _STATUS[run.phase(self.state.now())]})
        return self._answer(run.run_id)

    async def on_status(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._refused()
        run = self.state.runs.get(request.match_info["run"])
        if run is None or run.job != request.match_info["flow"]:
            return web.Response(status=500)
        return self._answer(run.run_id)
