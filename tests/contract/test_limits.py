"""What every provider client refuses from whatever answers at its base_url: an answer too large to hold, and a
redirect that would take its credentials to another host. Run against small local servers that misbehave on
every route (the login of DataKitchen included), through each client's real HTTP stack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bot.errors import ProviderError, ProviderResponseError
from bot.providers._http import MAX_BODY_BYTES
from bot.providers.base import ProviderClient
from tests.contract.cases import ProviderCase
from tests.contract.conftest import SleepRecorder

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HUGE = 64 * 1024 * 1024  # what the endless answer would send in all
CHUNK = 64 * 1024


@dataclass
class Server:
    """A local HTTP server answering every method and path with ``handler``."""

    handler: Handler
    url: str = ""
    seen: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    async def _any(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path_qs, dict(request.headers), await request.read()))
        return await self.handler(request)

    async def __aenter__(self) -> Server:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def built(case: ProviderCase) -> AsyncIterator[Callable[[str], ProviderClient[Any, Any]]]:
    made: list[ProviderClient[Any, Any]] = []

    def build(url: str) -> ProviderClient[Any, Any]:
        made.append(case.client(url, SleepRecorder(), 5.0))
        return made[-1]

    yield build
    for client in made:
        await client.aclose()


async def test_an_answer_over_the_cap_fails_the_call_clearly_without_being_read_to_its_end(
    case: ProviderCase, built: Callable[[str], ProviderClient[Any, Any]]
) -> None:
    sent = {"bytes": 0, "whole": 0}

    async def endless(request: web.Request) -> web.StreamResponse:
        """A JSON answer that goes on for 64 MB, sent as it is read (no Content-Length to refuse it by)."""
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            await response.write(b'{"message": "ok", "run_id": "r-1", "pad": "')
            while sent["bytes"] < HUGE:
                await response.write(b"a" * CHUNK)
                sent["bytes"] += CHUNK
            await response.write(b'"}')
            sent["whole"] += 1
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client hung up: what this test hopes for
        return response

    async with Server(endless) as server:
        client = built(server.url)
        with pytest.raises(ProviderResponseError) as caught:
            await client.get_status(case.job, "run-1")
        await asyncio.sleep(0.2)  # let the server see the hang-up
    assert "more than 10 MB" in str(caught.value), str(caught.value)
    assert sent["whole"] == 0 and sent["bytes"] < HUGE / 2, f"the client read {sent['bytes']} bytes"
    assert MAX_BODY_BYTES == 10 * 1024 * 1024


async def test_a_trigger_answered_over_the_cap_is_reported(
    case: ProviderCase, built: Callable[[str], ProviderClient[Any, Any]]
) -> None:
    async def declared(request: web.Request) -> web.StreamResponse:
        """An answer that says up front it is 11 MB: refused before a byte of it is read."""
        body = b'{"run_id": "' + b"a" * (11 * 1024 * 1024) + b'"}'
        return web.Response(body=body, content_type="application/json")

    async with Server(declared) as server:
        client = built(server.url)
        with pytest.raises(ProviderError) as caught:
            await client.trigger(case.job, case.parameters)
    assert "more than 10 MB" in str(caught.value), str(caught.value)


@pytest.mark.parametrize("follow", [False, True], ids=["default client", "client set to follow redirects"])
async def test_a_redirect_to_another_host_never_carries_the_credentials(
    case: ProviderCase, built: Callable[[str], ProviderClient[Any, Any]], follow: bool
) -> None:
    async def stolen(request: web.Request) -> web.StreamResponse:
        return web.json_response({"message": "ok", "run_id": "r-1", "token": "x.y.z"})

    async with Server(stolen) as elsewhere:

        async def redirect(request: web.Request) -> web.StreamResponse:
            raise web.HTTPTemporaryRedirect(f"{elsewhere.url}/collect{request.path_qs}")

        async with Server(redirect) as provider:
            client = built(provider.url)
            client.http.follow_redirects = follow  # even a client built to follow redirects must not
            with pytest.raises(ProviderError) as caught:
                await client.get_status(case.job, "run-1")
            with pytest.raises(ProviderError):
                await client.trigger(case.job, case.parameters)
    secrets = client.connection.secret_values()
    carried = [s for s in secrets for _, path, headers, body in elsewhere.seen
               if s in str(headers) or s.encode() in body or s in path]
    assert not carried, f"{case.name}'s credentials reached another host"
    assert elsewhere.seen == [], "nothing at all goes to the other host"
    assert provider.seen, "the provider was asked"
    message = str(caught.value)
    assert "another address" in message and elsewhere.url in message, message
    assert "base_url" in message, message
