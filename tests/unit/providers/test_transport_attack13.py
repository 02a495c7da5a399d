"""Issue 11's thirteenth pass on the providers' HTTP (bot/providers/transport.py, bot/providers/base.py): what a
provider, a proxy or the network can send that the first tests of the aiohttp transport did not try. Real local
servers, through the clients as ``base.py`` builds them."""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.errors import ProviderUnavailable
from bot.providers import invision
from bot.providers._http import Call
from bot.providers.shards import tls_context
from bot.providers.transport import AiohttpTransport
from tests.local_servers import web_server
from tests.unit.providers.test_transport import answer_with, raw_server, read_request

JOB = invision.Job(dataflow_id="flow-1")


def client_of(url: str, **settings: object) -> invision.Client:
    return invision.Client("inv", invision.Connection(base_url=f"{url}/invision/", api_key="key-1234", **settings))


async def test_a_cookie_a_provider_sets_is_never_sent_back() -> None:
    """httpx's client keeps the cookies of every answer and sends them on every later call (aiohttp's jar was
    emptied, httpx's was not): a load balancer's or a gateway's cookie rode along for the client's life, and a
    provider (or whatever answers at its address) setting a new one per answer grew the jar and every request
    without bound."""
    seen: list[str | None] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Cookie"))
        cookie = f"lb{len(seen)}=sticky; Path=/; Max-Age=3600"
        return web.json_response({"ok": True}, headers={"Set-Cookie": cookie})

    async with web_server(answer) as url, client_of(url) as client:
        for _ in range(3):
            assert await client.caller.json(Call("GET", "api/pub/v1/ping", "ping")) == {"ok": True}
        assert not client.http.cookies
    assert seen == [None, None, None]


@pytest.mark.parametrize("reason", ["Käynnissä ✓".encode(), b"\xff\xfe OK"], ids=["utf-8", "not utf-8"])
async def test_a_trigger_answered_with_a_reason_phrase_outside_latin_1_is_read(reason: bytes) -> None:
    """The reason phrase went to httpx as latin-1: a UTF-8 one (a localized server, a gateway) raised
    UnicodeEncodeError out of the transport, unmapped. A trigger the provider had taken was lost (no run id kept,
    "something went wrong"), every poll of the connection was an "internal error", and the answer's connection
    was left held until the garbage collector found it."""
    body = b'{"runId": "r-1"}'
    head = b"HTTP/1.1 200 " + reason + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    async with raw_server(await answer_with(head + body)) as url, client_of(url) as client:
        triggered = await client.trigger(JOB, {})
    assert triggered.run_id == "r-1"


async def test_a_chunked_answer_broken_midway_is_a_protocol_error_at_once() -> None:
    """A chunk size that is no number, the connection left open: the error is the answer's, not a wait for the
    deadline (aiohttp's parser drops the body's reader without ending it)."""

    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
        await writer.drain()
        await asyncio.Event().wait()  # held open: only the deadline would end the call

    async with raw_server(broken) as url, httpx.AsyncClient(transport=AiohttpTransport(2), timeout=30) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await asyncio.wait_for(http.get(f"{url}/x"), 10)


async def test_closing_the_transport_fails_a_call_waiting_for_a_connection_as_a_connect_error() -> None:
    """A call waiting for one of the pool's connections when the client is closed (shutdown past its grace): an
    httpx error saying it never went out, not a ``CancelledError`` nobody asked for (aiohttp cancels its waiters;
    a task ending "cancelled" is neither a failure logged nor an outcome recorded, and a trigger's start was left
    to recovery as "unknown whether it started")."""
    arrived, done = asyncio.Event(), asyncio.Event()

    async def held(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        arrived.set()
        await done.wait()

    async with raw_server(held) as url:
        transport = AiohttpTransport(1)
        async with httpx.AsyncClient(transport=transport, timeout=30) as http:
            first = asyncio.create_task(http.get(f"{url}/a"))
            await arrived.wait()
            assert transport._session is not None and transport._session.connector is not None
            connector = transport._session.connector
            wait_for_one, queued = connector._wait_for_available_connection, asyncio.Event()

            async def queue(*args: Any) -> None:
                queued.set()
                await wait_for_one(*args)

            connector._wait_for_available_connection = queue  # type: ignore[method-assign,assignment]
            waiting = asyncio.create_task(http.get(f"{url}/b"))
            await queued.wait()  # the second call waits for the one connection
            await transport.aclose()
            results = await asyncio.gather(first, waiting, return_exceptions=True)
        done.set()
    assert isinstance(results[0], httpx.RemoteProtocolError), repr(results[0])  # it went out: "unknown" for a trigger
    assert isinstance(results[1], httpx.ConnectError), repr(results[1])


async def test_an_answer_that_does_not_parse_is_told_without_a_status_never_answered_or_the_url() -> None:
    """aiohttp's text for an answer it cannot parse is "400, message=…, url='http://…?…'": the person read that the
    provider answered HTTP 400, and the whole URL, query string and all, reached Slack and the log."""
    echoed = b"Authorization: Bearer not-http\r\n\r\n"  # a status line that is no status line (a proxy echoing)
    async with raw_server(await answer_with(echoed)) as url, client_of(url) as client:
        with pytest.raises(ProviderUnavailable) as err:
            await client.caller.send(Call("GET", "api/pub/v1/runs", "list the runs", params={"queryId": "q-77"}))
    said = str(err.value)
    assert "Bad status line" in said and "RemoteProtocolError" in said
    assert "400" not in said and "q-77" not in said and "url=" not in said


# -- TLS --------------------------------------------------------------------------------------------------------------


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


async def test_a_self_signed_provider_is_refused_unless_its_certificate_is_in_ssl_cert_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    taken: list[str] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        taken.append(request.path)
        return web.json_response({"ok": True})

    async with web_server(answer, tls=server_tls) as url:
        try:
            async with client_of(url) as client:
                with pytest.raises(ProviderUnavailable) as err:
                    await client.caller.json(Call("POST", "api/pub/v1/start", "start it", idempotent=False))
            assert "certificate verify failed" in str(err.value) and taken == []
            monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
            tls_context.cache_clear()
            async with client_of(url) as client:
                assert await client.caller.json(Call("GET", "api/pub/v1/ping", "ping")) == {"ok": True}
            assert taken == ["/invision/api/pub/v1/ping"]
        finally:
            monkeypatch.delenv("SSL_CERT_FILE")
            tls_context.cache_clear()
