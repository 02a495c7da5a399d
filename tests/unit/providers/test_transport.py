"""The provider clients' HTTP/1.1 transport on aiohttp (bot/providers/transport.py): what httpx's own transport did
and HttpCaller relies on, checked against real local servers, some of them misbehaving on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import cast

import httpx
import pytest
from aiohttp import web

from bot.errors import ProviderResponseError, ProviderUnavailable, TriggerOutcomeUnknown
from bot.providers import invision, tailer
from bot.providers._http import Call, HttpCaller, RetryPolicy
from bot.providers.base import SPARE_CONNECTIONS
from bot.providers.shards import ShardedTransport, tls_context
from bot.providers.transport import AiohttpTransport
from tests.local_servers import web_server

Raw = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_server(handler: Raw) -> AsyncIterator[str]:
    """A server speaking bytes: for answers no HTTP library would send."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset rather than a FIN: what a proxy or a restarting gateway does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


@contextlib.asynccontextmanager
async def caller(url: str, connections: int = 4, timeout: float = 5.0) -> AsyncIterator[HttpCaller]:
    async with httpx.AsyncClient(
        base_url=url, transport=AiohttpTransport(connections), timeout=httpx.Timeout(timeout)
    ) as http:
        yield HttpCaller(http, provider="Prov", connection="prov", retry=RetryPolicy(attempts=1), deadline=timeout)


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A port whose listen queue is full: a new connection is never accepted."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


TRIGGER = Call("POST", "runs", "start the run", idempotent=False, json={"a": 1})


# -- the "did it go out" signal, through HttpCaller ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_a_trigger_reset_after_it_was_sent_is_unknown_and_sent_once(method: str) -> None:
    """aiohttp resends a GET, PUT or DELETE once when its connection breaks: DataKitchen's trigger is a PUT."""
    seen: list[bytes] = []

    async def taken_then_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        reset(writer)

    async with raw_server(taken_then_reset) as url, caller(url) as http:
        with pytest.raises(TriggerOutcomeUnknown) as err:
            await http.send(Call(method, "runs", "start the run", idempotent=False, json={"a": 1}))
    assert "unknown whether it started" in str(err.value)
    assert len(seen) == 1, "a trigger goes out once"


async def test_a_trigger_answered_then_hung_up_before_the_answer_ended_is_unknown() -> None:
    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"run_id\": ")
        await writer.drain()

    async with raw_server(cut) as url, caller(url) as http:
        with pytest.raises(TriggerOutcomeUnknown):
            await http.send(TRIGGER)


async def test_a_trigger_to_a_refused_port_did_not_start() -> None:
    async with caller(f"http://127.0.0.1:{refused_port()}") as http:
        with pytest.raises(ProviderUnavailable) as err:
            await http.send(TRIGGER)
    assert not isinstance(err.value, TriggerOutcomeUnknown)
    assert "Cannot reach Prov" in str(err.value) and "ConnectError" in str(err.value)


async def test_a_trigger_never_connected_did_not_start(unaccepting_port: int) -> None:
    async with caller(f"http://127.0.0.1:{unaccepting_port}", timeout=0.5) as http:
        with pytest.raises(ProviderUnavailable) as err:
            await http.send(TRIGGER)
    assert not isinstance(err.value, TriggerOutcomeUnknown)


@pytest.mark.parametrize("idempotent", [True, False], ids=["status", "trigger"])
async def test_an_answer_trickled_past_the_deadline_is_a_timeout(idempotent: bool) -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        while True:  # a byte well within the read timeout, for ever
            await response.write(b" ")
            await asyncio.sleep(0.05)

    async with web_server(trickle) as url, caller(url, timeout=0.5) as http:
        call = Call("POST" if not idempotent else "GET", "runs", "do it", idempotent=idempotent)
        with pytest.raises(TriggerOutcomeUnknown if not idempotent else ProviderUnavailable) as err:
            await asyncio.wait_for(http.send(call), 5)
    assert "did not answer in time" in str(err.value)


async def test_a_gzip_bomb_is_inflated_no_further_than_the_cap() -> None:
    bomb = gzip.compress(bytes(8 * 1024 * 1024))

    async def gzipped(request: web.Request) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    async with web_server(gzipped) as url, caller(url) as http:
        http.max_body = 1024 * 1024
        with pytest.raises(ProviderResponseError) as err:
            await http.send(Call("GET", "status", "check the run"))
    assert "more than 1 MB" in str(err.value)


async def test_an_answer_closed_unread_gives_its_connection_back() -> None:
    """One connection, answers too large to read: each is closed with the rest unread, and the next call still
    finds a connection (none is left held by an answer nobody reads)."""

    async def large(request: web.Request) -> web.StreamResponse:
        if request.path == "/small":
            return web.json_response({"ok": True})
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(1000):
                await response.write(b"a" * 65536)
        return response

    async with web_server(large) as url, caller(url, connections=1, timeout=2.0) as http:
        http.max_body = 1024
        for _ in range(3):
            with pytest.raises(ProviderResponseError):
                await http.send(Call("GET", "large", "read a large answer"))
        assert await http.json(Call("GET", "small", "read a small answer")) == {"ok": True}


# -- exceptions by cause, straight from the transport -----------------------------------------------------------------


async def answer_with(data: bytes) -> Raw:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(data)
        await writer.drain()

    return handler


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort",  # the body cut short
        b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",  # a malformed status line
        b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 0\r\n\r\n",  # a malformed header
        b"",  # hung up without a word
    ],
    ids=["truncated body", "status line", "header", "no answer"],
)
async def test_a_broken_answer_is_a_protocol_error(data: bytes) -> None:
    async with raw_server(await answer_with(data)) as url, httpx.AsyncClient(transport=AiohttpTransport(2)) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(f"{url}/x")  # reads the whole answer


async def test_a_reset_once_sent_is_a_network_error() -> None:
    async def taken_then_reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        reset(writer)

    async with raw_server(taken_then_reset) as url, httpx.AsyncClient(transport=AiohttpTransport(2)) as http:
        with pytest.raises(httpx.NetworkError) as err:
            await http.get(f"{url}/x")
    assert not isinstance(err.value, httpx.ConnectError)


async def test_refused_and_unresolvable_are_connect_errors() -> None:
    async with httpx.AsyncClient(transport=AiohttpTransport(2)) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{refused_port()}/x")
        with pytest.raises(httpx.ConnectError):
            await http.get("http://no-such-host.invalid/x")


async def test_timeouts_come_from_the_request(unaccepting_port: int) -> None:
    async def silent(request: web.Request) -> web.StreamResponse:
        await asyncio.Event().wait()
        raise AssertionError

    async def slow_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await asyncio.Event().wait()
        raise AssertionError

    async with httpx.AsyncClient(transport=AiohttpTransport(1), timeout=httpx.Timeout(0.3)) as http:
        with pytest.raises(httpx.ConnectTimeout):
            await http.get(f"http://127.0.0.1:{unaccepting_port}/x")
        async with web_server(silent) as url:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(f"{url}/x")
        async with web_server(slow_body) as url:
            with pytest.raises(httpx.ReadTimeout):
                await http.get(f"{url}/x")  # reads the body: each read within the read timeout
            async with http.stream("GET", f"{url}/held") as held:  # the one connection, held
                assert held.status_code == 200
                with pytest.raises(httpx.PoolTimeout):
                    await http.get(f"{url}/x")


async def test_cancellation_stays_cancellation() -> None:
    arrived = asyncio.Event()

    async def silent(request: web.Request) -> web.StreamResponse:
        arrived.set()
        await asyncio.Event().wait()
        raise AssertionError

    async with web_server(silent) as url, httpx.AsyncClient(transport=AiohttpTransport(1)) as http:
        call = asyncio.create_task(http.get(f"{url}/x"))
        await arrived.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call


# -- what goes out, what comes back ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [{"json": {"a": [1, "é"]}}, {"data": {"name": "x y", "n": "1"}}, {"content": b"\x00raw\xff"}, {}],
    ids=["json", "form", "bytes", "none"],
)
async def test_the_request_goes_out_exactly_as_httpx_built_it(body: dict[str, object]) -> None:
    seen: list[tuple[list[tuple[bytes, bytes]], bytes, str]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append((list(request.raw_headers), await request.read(), request.raw_path))
        return web.Response(text="ok", headers={"Set-Cookie": "session=1; Path=/"})

    transport = AiohttpTransport(2)
    async with web_server(record) as url:
        for _ in range(2):
            request = httpx.Request(
                "POST", f"{url}/a%2Fb/c?q=1%202", headers={"X-Api-Key": "k", "accept-encoding": "gzip"},
                json=body.get("json"), data=cast("dict[str, str] | None", body.get("data")),
                content=cast("bytes | None", body.get("content")),
            )
            response = await transport.handle_async_request(request)
            await response.aread()
            await response.aclose()
        await transport.aclose()
    for headers, content, path in seen:
        assert headers == list(request.headers.raw), "no header added, none dropped, none reordered"
        assert content == request.content
        assert path == "/a%2Fb/c?q=1%202"
    assert all(b"Cookie" not in dict(headers) for headers, _, _ in seen), "no cookie kept between calls"


async def test_a_redirect_is_an_answer_and_a_compressed_body_is_passed_raw() -> None:
    squeezed = gzip.compress(b'{"a": 1}')

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path == "/moved":
            raise web.HTTPFound("/elsewhere")
        return web.Response(body=squeezed, headers={"Content-Encoding": "gzip"})

    async with web_server(answer) as url, httpx.AsyncClient(transport=AiohttpTransport(2)) as http:
        moved = await http.get(f"{url}/moved")
        assert moved.status_code == 302 and moved.headers["location"] == "/elsewhere"
        async with http.stream("GET", f"{url}/gz") as response:
            assert b"".join([chunk async for chunk in response.aiter_raw()]) == squeezed


def test_a_transport_made_outside_an_event_loop_works_on_each_loop_it_is_used_on() -> None:
    transport = AiohttpTransport(2)

    async def get() -> int:
        async def ok(request: web.Request) -> web.StreamResponse:
            return web.Response(text="ok")

        async with web_server(ok) as url:
            response = await transport.handle_async_request(httpx.Request("GET", f"{url}/x"))
            await response.aread()
            await response.aclose()
            return response.status_code

    assert asyncio.run(get()) == 200
    assert asyncio.run(get()) == 200
    asyncio.run(transport.aclose())


# -- how the provider clients use it -----------------------------------------------------------------------------------


async def test_a_client_sends_on_aiohttp_sized_by_its_concurrency_and_http2_keeps_the_small_pools() -> None:
    conn = invision.Connection(base_url="http://127.0.0.1:1/invision/", api_key="key-1234", max_concurrency=3)
    async with invision.Client("inv", conn) as client:
        transport = client.http._transport_for_url(httpx.URL("http://127.0.0.1:1/invision/x"))
        assert isinstance(transport, AiohttpTransport)
        assert transport.connections == 3 + SPARE_CONNECTIONS and transport.keepalive_expiry == 5.0
        assert transport.verify is tls_context()
    token = "eyJhbGciOiJSUzI1NiJ9.eyJ1c2VyX2lkIjoiYm90QGV4YW1wbGUuY29tIn0.c2lnbmF0dXJl"
    async with tailer.Client("tailer", tailer.Connection(base_url="https://tailer.example/", token=token)) as client:
        assert client.http2
        assert isinstance(client.http._transport_for_url(httpx.URL("https://tailer.example/x")), ShardedTransport)


async def test_a_proxy_from_the_environment_takes_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "direct.example")
    conn = invision.Connection(base_url="https://inv.example/invision/", api_key="key-1234")
    async with invision.Client("inv", conn) as client:
        proxied = client.http._transport_for_url(httpx.URL("https://inv.example/invision/x"))
        direct = client.http._transport_for_url(httpx.URL("https://direct.example/x"))
    assert isinstance(proxied, httpx.AsyncHTTPTransport)
    assert isinstance(direct, AiohttpTransport)


async def test_a_streamed_upload_is_sent_whole_with_its_length() -> None:
    seen: list[tuple[str | None, str | None, bytes]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append((request.headers.get("Content-Length"), request.headers.get("Transfer-Encoding"),
                     await request.read()))
        return web.Response(text="ok")

    async def parts() -> AsyncIterator[bytes]:
        yield b"one,"
        yield b"two"

    async with web_server(record) as url, httpx.AsyncClient(transport=AiohttpTransport(1)) as http:
        assert (await http.post(f"{url}/up", content=parts())).status_code == 200
    assert seen == [("7", None, b"one,two")]


async def test_the_trace_hears_the_request_begin_to_go_out_and_only_then() -> None:
    heard: list[str] = []

    async def trace(event: str, info: Mapping[str, object]) -> None:
        heard.append(event)

    async def ok(request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok")

    async with web_server(ok) as url, httpx.AsyncClient(transport=AiohttpTransport(1)) as http:
        for _ in range(2):  # a new connection, then the same one again
            assert (await http.get(f"{url}/x", extensions={"trace": trace})).status_code == 200
        assert heard == ["http11.send_request_headers.started"] * 2
        heard.clear()
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{refused_port()}/x", extensions={"trace": trace})
        assert heard == []
