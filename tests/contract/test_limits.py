"""What every provider client refuses from whatever answers at its base_url: an answer too large to hold, and a
redirect that would take its credentials to another host. Run against small local servers that misbehave on
every route (the login of DataKitchen included), through each client's real HTTP stack."""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.errors import ProviderError, ProviderResponseError
from bot.providers import invision
from bot.providers._http import MAX_BODY_BYTES, Call, HttpCaller
from bot.providers.base import ProviderClient
from bot.providers.shards import ShardedTransport
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
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
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


# -- found by a second independent pass --------------------------------------------------------------------------


@functools.cache
def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzipped: about a thousandth of that on the wire."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(16 * 1024 * 1024)
    return b"".join([deflater.compress(block) for _ in range(size // len(block))] + [deflater.flush()])


async def test_a_compressed_answer_is_inflated_no_further_than_the_cap(
    case: ProviderCase, built: Callable[[str], ProviderClient[Any, Any]]
) -> None:
    """httpx inflated each 64 KB read whole before the cap could count it: 64 MB at once from 64 KB of gzip
    (and gigabytes from a few KB of ``gzip, gzip``). The bot inflates itself, never past the cap."""
    bomb = gzip_bomb(256 * 1024 * 1024)

    async def gzipped(request: web.Request) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    async with Server(gzipped) as server:
        client = built(server.url)
        tracemalloc.start()
        try:
            with pytest.raises(ProviderResponseError) as caught:
                await client.get_status(case.job, "run-1")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert "more than 10 MB" in str(caught.value), str(caught.value)
    assert peak < 2.5 * MAX_BODY_BYTES, f"{peak / 2**20:.0f} MB held at once for a 10 MB cap"


@pytest.mark.parametrize("encoding", ["gzip, gzip", "br", "deflate, identity, gzip"])
async def test_an_answer_in_an_encoding_the_bot_does_not_inflate_is_refused_clearly(
    case: ProviderCase, built: Callable[[str], ProviderClient[Any, Any]], encoding: str
) -> None:
    body = b'{"message": "ok"}'
    for coding in reversed([c.strip() for c in encoding.split(",")]):
        body = gzip.compress(body) if coding == "gzip" else zlib.compress(body) if coding == "deflate" else body

    async def encoded(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, headers={"Content-Type": "application/json", "Content-Encoding": encoding})

    async with Server(encoded) as server:
        client = built(server.url)
        with pytest.raises(ProviderError) as caught:
            await client.get_status(case.job, "run-1")
    assert f"in Content-Encoding '{encoding}'" in str(caught.value), str(caught.value)


async def test_an_answer_nested_too_deeply_is_a_malformed_answer(
    case: ProviderCase, built: Callable[[str], ProviderClient[Any, Any]]
) -> None:
    """``[[[[…`` 100,000 deep: json raises RecursionError, which escaped the typed errors."""
    async def deep(request: web.Request) -> web.StreamResponse:
        return web.Response(text="[" * 100_000, content_type="application/json")

    async with Server(deep) as server:
        client = built(server.url)
        with pytest.raises(ProviderError):
            await client.get_status(case.job, "run-1")
        with pytest.raises(ProviderError):
            await client.trigger(case.job, case.parameters)


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate", "raw deflate", "identity", ""])
async def test_answers_in_gzip_or_deflate_are_read(encoding: str) -> None:
    document = {"message": "ok", "rows": list(range(2000))}
    plain = json.dumps(document).encode()
    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = {
        "gzip": gzip.compress(plain),
        "x-gzip": gzip.compress(plain),
        "deflate": zlib.compress(plain),
        "raw deflate": raw.compress(plain) + raw.flush(),
    }.get(encoding, plain)
    header = "deflate" if encoding == "raw deflate" else encoding

    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "application/json", **({"Content-Encoding": header} if header else {})}
        return web.Response(body=body, headers=headers)

    async with Server(answer) as server, httpx.AsyncClient(base_url=server.url) as http:
        caller = HttpCaller(http, provider="Prov", connection="prov")
        assert await caller.json(Call("GET", "status", "check the run")) == document


async def test_a_connection_keeps_alive_every_connection_its_concurrency_opens() -> None:
    """``max_concurrency`` status calls at once, twice: the second burst reuses the first's connections. httpcore
    closes idle connections while the pool holds more than its keep-alive limit (httpx's default 20), so with 40
    calls in flight half the connections were reopened for every burst (the benchmark at 5,000 runs: ~2,000
    connects in 90 s)."""
    calls = 40
    peers: list[int] = []
    arrived = 0
    everyone = asyncio.Event()

    async def status(request: web.Request) -> web.StreamResponse:
        nonlocal arrived
        assert request.transport is not None  # a request being answered has its connection
        peers.append(request.transport.get_extra_info("peername")[1])
        arrived += 1
        if arrived % calls == 0:
            everyone.set()
        await everyone.wait()  # all of a burst in flight at once: each needs a connection of its own
        return web.json_response({"runId": request.path.split("/")[-2], "status": "Running"})

    async with Server(status) as server:
        conn = invision.Connection(base_url=f"{server.url}/invision/", api_key="key-1234", max_concurrency=calls)
        client = invision.Client("invision-test", conn)
        job = invision.Job(dataflow_id="2b081248-4963-43b3-ba06-5b7403d58b4d")
        try:
            for _ in range(2):
                everyone.clear()
                answers = await asyncio.gather(*(client.get_status(job, f"run-{i}") for i in range(calls)))
                assert {a.raw_status for a in answers} == {"Running"}
        finally:
            await client.aclose()
    assert len(peers) == 2 * calls
    assert len(set(peers)) == calls


async def test_the_small_pools_count_a_connection_busy_until_its_answer_is_read_or_closed() -> None:
    """The least busy small pool takes each request: a count left behind (an answer closed unread, a refused
    connection) would steer requests away from a pool for ever, and pile them onto the others."""
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.json_response({"rows": list(range(1000))})

    transport = ShardedTransport(20)
    async with Server(answer) as server, httpx.AsyncClient(base_url=server.url, transport=transport) as http:
        read = await asyncio.gather(*(http.get(f"r/{i}") for i in range(20)))
        assert {r.status_code for r in read} == {200}
        async with http.stream("GET", "unread") as unread:
            assert unread.status_code == 200 and sum(transport.busy) == 1
        assert sum(transport.busy) == 0
        with pytest.raises(httpx.ConnectError):
            await http.get("http://127.0.0.1:1/nothing-listens")
    assert len(transport.shards) == 3 and transport.busy == [0, 0, 0]
