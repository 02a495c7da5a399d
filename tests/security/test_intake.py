"""What anyone on the internet can send to ``/slack/events``: garbage gets 401 (unsigned) or 400 (signed but not what
Slack sends) with at most one WARNING line and never an ERROR or a traceback; a client that sends its request slowly
is disconnected; an over-long command is refused with the limit, before any parsing work."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import urllib.parse
from pathlib import Path
from urllib.parse import urlsplit

from bot.emulators.slack.signing import signature
from bot.slack.http import HttpServer
from tests.scenario.harness import World
from tests.scenario.surface import ask, command_body
from tests.security import Recorder, security_world

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def _payload(value: object) -> str:
    return urllib.parse.urlencode({"payload": json.dumps(value)})


VIEW_WITHOUT_TYPE = {"type": "view_submission", "user": {"id": "U0ALICE"},
                     "view": {"id": "V0001", "callback_id": "run_modal", "state": {"values": {}}}}

# (what, body, content type, signed, status)
GARBAGE: list[tuple[str, bytes | str, str, bool, int]] = [
    ("non-UTF-8, unsigned", b"\xff\xfe\x00command=/pipeline&text=\xc3", FORM, False, 401),
    ("non-UTF-8, signed", b"\xff\xfe\x00command=/pipeline&text=\xc3", FORM, True, 400),
    ("payload not JSON, unsigned", "payload=not%20json", FORM, False, 401),
    ("payload not JSON, signed", "payload=not%20json", FORM, True, 400),
    ("view_submission without a view type, unsigned", _payload(VIEW_WITHOUT_TYPE), FORM, False, 401),
    ("view_submission without a view type, signed", _payload(VIEW_WITHOUT_TYPE), FORM, True, 400),
    ("payload without a type", _payload({"view": {"id": "V1"}}), FORM, True, 400),
    ("payload a list", _payload([1, 2]), FORM, True, 400),
    ("payload a string", _payload("x"), FORM, True, 400),
    ("block_actions whose actions are a string", _payload({"type": "block_actions", "actions": "x",
                                                           "user": {"id": "U0ALICE"}}), FORM, True, 400),
    ("JSON that does not parse, unsigned", "{not json", JSON, False, 401),
    ("JSON that does not parse, signed", "{not json", JSON, True, 400),
    ("JSON list", "[1]", JSON, True, 400),
    ("event without an event", json.dumps({"type": "event_callback", "event_id": "Ev1"}), JSON, True, 400),
    ("empty", "", FORM, True, 400),
    ("form that is not a command", "a=b&c=d", FORM, True, 400),
]


_U = {"id": "U0ALICE", "username": "alice", "team_id": "T0001"}
_VIEW = {"id": "V1", "type": "modal", "callback_id": "run_modal", "private_metadata": "{}", "hash": "h"}


def _submission(**view: object) -> str:
    return _payload({"type": "view_submission", "team": {"id": "T0001"}, "user": _U, "trigger_id": "1.2",
                     "view": {**_VIEW, **view}})


def _click(action_id: str = "run.refresh", **fields: object) -> str:
    action = {"action_id": action_id, "block_id": "b", "value": "1", "type": "button",
              "selected_option": {"value": "leads-ods"}}
    return _payload({"type": "block_actions", "team": {"id": "T0001"}, "user": _U, "trigger_id": "1.2",
                     "container": {"type": "message"}, "channel": {"id": "C0GENERAL"}, "actions": [action], **fields})


def _event(**fields: object) -> str:
    return json.dumps({"type": "event_callback", "team_id": "T0001", "api_app_id": "A0APP", "event_id": "Ev9",
                       "event_time": 1, "event": {"type": "app_home_opened", "user": "U0ALICE", "tab": "home"},
                       "authorizations": [{"team_id": "T0001", "user_id": "U0BOT", "is_bot": True}], **fields})


# signed (only Slack, or whoever holds the secret, can send these) but not in the shapes Slack sends: each once
# made Bolt or a listener raise, an ERROR traceback and a 500 (or no answer at all)
MALFORMED_SIGNED: list[tuple[str, bytes | str, str, bool, int]] = [
    ("JSON nested 5,000 deep", '{"type": "block_actions", "x": ' + "[" * 5000 + "]" * 5000 + "}", JSON, True, 400),
    ("a payload nested 5,000 deep", _payload({"type": "block_actions"})[:-3] + "%2C%22x%22%3A" + "%5B" * 5000
     + "%5D" * 5000 + "%7D", FORM, True, 400),
    ("view_submission without state", _submission(), FORM, True, 400),
    ("view_submission whose state.values is a list", _submission(state={"values": []}), FORM, True, 400),
    ("view_submission whose state is a string", _submission(state="x"), FORM, True, 400),
    ("view_submission whose block is a string", _submission(state={"values": {"b": "x"}}), FORM, True, 400),
    ("event whose authorizations are a string", _event(authorizations="x"), JSON, True, 400),
    ("event whose authorizations hold a string", _event(authorizations=["x"]), JSON, True, 400),
    ("block_actions whose user is a string", _click(user="U0ALICE"), FORM, True, 400),
    ("block_actions whose channel is a string", _click(channel="C0GENERAL"), FORM, True, 400),
    ("block_actions whose view has a string state", _click(view={**_VIEW, "state": "x"}), FORM, True, 400),
    ("command whose text is a list", json.dumps({"command": "/pipeline", "user_id": "U0ALICE", "text": ["a"]}),
     JSON, True, 400),
    ("command whose text is an object", json.dumps({"command": "/pipeline", "user_id": "U0ALICE", "text": {"a": 1},
                                                    "channel_id": "C0GENERAL"}), JSON, True, 400),
]


async def test_signed_payloads_in_shapes_slack_never_sends_get_400_and_one_warning_at_most(tmp_path: Path) -> None:
    async with security_world(tmp_path) as w:
        with Recorder() as recorder:
            await _answers_to_garbage(w, recorder, MALFORMED_SIGNED)


async def test_a_pipeline_choice_outside_a_modal_is_acked_and_ignored(tmp_path: Path) -> None:
    async with security_world(tmp_path) as w:
        with Recorder() as recorder:
            started = time.monotonic()
            response = await w.slack.post_raw(_click("pipeline.select"), content_type=FORM)
            assert response.status == 200 and time.monotonic() - started < 2.5
            await asyncio.sleep(0.2)
            logged = [r for r in recorder.records if r.levelno >= logging.WARNING
                      and not r.name.startswith("bot.emulators")]
            assert [r.levelno for r in logged] == [logging.WARNING], [r.getMessage() for r in logged]
            assert not any(r.exc_info for r in logged)
            assert not w.slack.views


async def _answers_to_garbage(
    w: World, recorder: Recorder, cases: list[tuple[str, bytes | str, str, bool, int]] = GARBAGE
) -> None:
    for what, body, content_type, signed, status in cases:
        seen = len(recorder.records)
        response = await w.slack.post_raw(body, sign=signed, content_type=content_type)
        await asyncio.sleep(0.05)  # anything logged after the answer
        logged = [r for r in recorder.records[seen:] if r.name.startswith(("bot.", "aiohttp", "slack"))
                  and not r.name.startswith("bot.emulators") and r.levelno >= logging.WARNING]
        assert response.status == status, (what, response.status, response.text)
        assert not [r for r in logged if r.levelno >= logging.ERROR], (what, [r.getMessage() for r in logged])
        assert len(logged) <= 1, (what, [r.getMessage() for r in logged])
        assert not any(r.exc_info for r in logged), what
        assert len(response.text) < 200, what  # nothing of the body, no trace


async def test_garbage_gets_401_or_400_and_one_warning_at_most(tmp_path: Path) -> None:
    async with security_world(tmp_path) as w:
        with Recorder() as recorder:
            await _answers_to_garbage(w, recorder)

            now = int(time.time())
            body = command_body(w, "run leads-ods")
            odd_headers = {
                "a timestamp that is not a number": ("abc", "v0=" + "0" * 64),
                "a timestamp in Arabic-Indic digits": ("١٧٠٠٠٠٠٠٠٠", signature(w.slack.signing_secret, now, body)),
                "a timestamp of a thousand digits": ("9" * 1000, "v0=" + "0" * 64),
                "a signature that is not ASCII": (str(now), "v0=é" + "0" * 63),
            }
            for what, (timestamp, signed) in odd_headers.items():
                seen = len(recorder.records)
                response = await w.slack.post_raw(body, headers={"X-Slack-Request-Timestamp": timestamp,
                                                                 "X-Slack-Signature": signed})
                assert response.status == 401, (what, response.status)
                assert not [r for r in recorder.records[seen:] if r.levelno >= logging.ERROR], what

            # requests malformed at the HTTP level, written on the socket as no HTTP client would
            assert w.runtime.http is not None
            address = urlsplit(w.runtime.http.url)
            start = "POST /slack/events HTTP/1.1\r\nHost: bot\r\n"
            malformed = {
                "a header line of 20 KB": (f"{start}X-Pad: {'a' * 20_000}\r\n\r\n", b" 400 "),
                "a Content-Length that is not a number": (f"{start}Content-Length: abc\r\n\r\n", b" 400 "),
                "a chunk size that is not hex": (f"{start}Transfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n",
                                                 b" 400 "),
                "gzip that is not gzip": (f"{start}Content-Encoding: gzip\r\nContent-Length: 5\r\n\r\nabcde",
                                          b" 400 "),
                "a path that is not ASCII": ("GET /é HTTP/1.1\r\nHost: bot\r\n\r\n", b" 400 "),
                # a body announced larger than any Slack sends is refused before it is read
                "a body of 2 MiB": (f"{start}Content-Type: {FORM}\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n"
                                    "command=", b" 413 "),
            }
            for what, (request, status) in malformed.items():
                seen = len(recorder.records)
                reader, writer = await asyncio.open_connection(address.hostname, address.port)
                writer.write(request.encode())
                await writer.drain()
                answer = await _closed_within(reader, 5.0)
                writer.close()
                await asyncio.sleep(0.05)
                assert answer is not None and status in answer.split(b"\r\n")[0], (what, answer)
                logged = [r for r in recorder.records[seen:] if r.levelno >= logging.WARNING
                          and r.name.startswith(("bot.", "aiohttp", "slack"))]
                assert len(logged) <= 1, (what, [r.getMessage() for r in logged])
                assert not any(r.exc_info or r.levelno >= logging.ERROR for r in logged), (what, logged)

            await w.settle(0.3)
            assert not recorder.errors(), [r.getMessage() for r in recorder.errors()]
        for emulator in w.emulators.values():
            assert not emulator.state.requests_to("trigger")
        assert {c.method for c in w.slack.calls} <= {"auth.test"}
        assert not w.slack.ephemerals() and not w.slack.views
        # the endpoint still serves Slack
        assert "run and watch data pipelines" in (await ask(w, "help")).text


async def test_slack_ssl_check_is_answered_without_a_signature_and_reaches_nothing(tmp_path: Path) -> None:
    async with security_world(tmp_path) as w:
        check = await w.slack.post_raw("ssl_check=1&token=abc", sign=False)
        assert (check.status, check.text) == (200, "")
        # the same flag smuggled into anything else is an unsigned request like any other
        for smuggled in ("ssl_check=1&command=/pipeline&text=run+leads-ods&user_id=U0ALICE",
                         "ssl_check=1&payload=%7B%7D", "ssl_check=true&token=abc"):
            assert (await w.slack.post_raw(smuggled, sign=False)).status == 401, smuggled
        await w.settle(0.2)
        assert not w.emulators["rivery"].state.requests_to("trigger")


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes | None:
    """What the server sent before it closed the connection, or None if it was still open after ``seconds``."""
    received = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            chunk = await asyncio.wait_for(reader.read(4096), deadline - time.monotonic())
        except TimeoutError:
            return None
        except ConnectionResetError:  # closed with our unread bytes still in its buffer: a reset, not a FIN
            return received
        if not chunk:
            return received
        received += chunk
    return None


async def test_a_slow_client_is_disconnected(tmp_path: Path) -> None:
    async with security_world(tmp_path, http_read_timeout_seconds=0.5) as w:
        assert w.runtime.http is not None
        address = urlsplit(w.runtime.http.url)
        host, port = address.hostname or "127.0.0.1", address.port or 80

        async def dribble(first: bytes, then: bytes) -> bytes | None:
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(first)
                await writer.drain()
                waiting = asyncio.ensure_future(_closed_within(reader, 5.0))
                while not waiting.done():  # one byte every 100 ms: the connection is never idle
                    try:
                        writer.write(then)
                        await writer.drain()
                    except ConnectionError:
                        break
                    await asyncio.sleep(0.1)
                return await waiting
            finally:
                writer.close()

        started = time.monotonic()
        # headers that never end
        assert await dribble(b"POST /slack/events HTTP/1.1\r\nHost: bot\r\n", b"X") is not None
        # a body that never ends
        headers = (f"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: {FORM}\r\n"
                   "Content-Length: 100000\r\n\r\n").encode()
        assert await dribble(headers + b"command=", b"a") is not None
        # a body that stops coming: answered 408, then closed
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(headers + b"command=")
        answer = await _closed_within(reader, 5.0)
        writer.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer
        # a connection that never says anything
        reader, writer = await asyncio.open_connection(host, port)
        assert await _closed_within(reader, 5.0) == b""
        writer.close()
        assert time.monotonic() - started < 8.0

        # the server serves the next client as always
        assert "run and watch data pipelines" in (await ask(w, "help")).text


async def test_an_over_long_command_is_refused_saying_the_limit(tmp_path: Path) -> None:
    async with security_world(tmp_path) as w:
        reply = await ask(w, "run leads-ods note=é" + "a" * 500_000)
        assert reply.text.startswith("⚠️"), reply.text
        assert "at most 4,000" in reply.text and "500,020 characters" in reply.text, reply.text
        just_over = await ask(w, "run leads-ods " + "x" * (4001 - len("run leads-ods ")))
        assert "at most 4,000" in just_over.text
        await w.settle(0.3)
        assert not w.emulators["rivery"].state.requests_to("trigger")


async def test_a_command_mentioning_payload_is_read_as_typed(tmp_path: Path) -> None:
    """Bolt reads any form containing the word "payload" as an interactive payload, and found this one empty."""
    async with security_world(tmp_path) as w:
        reply = await ask(w, "run leads-ods load_date=payload")
        assert "`load_date=payload` must be a date like 2024-01-31" in reply.text, reply.text
        assert (await w.command("run notes-load note=payload")).ok
        await w.card_saying("notes-load is queued")
        [trigger] = w.emulators["rivery"].state.requests_to("trigger")
        assert "payload" in json.dumps(trigger.body)


async def test_a_client_that_does_not_read_its_answers_is_disconnected() -> None:
    """Pipelined requests whose answers are never read: aiohttp would wait for its write buffer to drain forever.
    (The server alone: filling the kernel's buffers with answers takes a few seconds of answering.)"""
    async def ready() -> list[str]:
        return []

    http = HttpServer(None, ready=ready, read_timeout=0.5)
    address = urlsplit(await http.start("127.0.0.1", 0))
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect((address.hostname or "127.0.0.1", address.port or 80))
    client.setblocking(False)
    try:
        requests = b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n" * 500
        deadline = time.monotonic() + 20.0
        closed = False
        while time.monotonic() < deadline:  # keep the server busy answering; never read a byte of it
            try:
                client.send(requests)
            except BlockingIOError:
                pass
            except OSError:  # reset by the server: it gave up on us
                closed = True
                break
            await asyncio.sleep(0.02)
            if http.open_connections() == 0:
                closed = True
                break
        assert closed, "a client that never reads its answers is still connected"
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n")
        answer = await _closed_within(reader, 2.0)
        writer.close()
        assert answer is not None and answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        client.close()
        await http.stop()


async def test_connections_beyond_the_limit_are_closed_at_once() -> None:
    async def ready() -> list[str]:
        return []

    server = HttpServer(None, ready=ready, max_connections=3)
    url = urlsplit(await server.start("127.0.0.1", 0))
    host, port = url.hostname or "127.0.0.1", url.port or 80
    held = []
    try:
        for _ in range(3):
            held.append(await asyncio.open_connection(host, port))
        for _ in range(50):  # the three are counted once aiohttp has them
            if server.open_connections() == 3:
                break
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection(host, port)
        assert await _closed_within(reader, 2.0) == b"", "a fourth connection was kept"
        writer.close()
        # the ones inside are served
        first_reader, first_writer = held[0]
        first_writer.write(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n")
        answer = await _closed_within(first_reader, 2.0)
        assert answer is not None and answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        for _, writer in held:
            writer.close()
        await server.stop()


async def test_running_out_of_file_descriptors_is_one_warning_not_a_traceback_per_accept() -> None:
    async def ready() -> list[str]:
        return []

    server = HttpServer(None, ready=ready)
    await server.start("127.0.0.1", 0)
    try:
        with Recorder() as recorder:
            loop = asyncio.get_running_loop()
            for _ in range(20):  # what asyncio reports at each accept when the process has no descriptor left
                loop.call_exception_handler({"message": "socket.accept() out of system resource",
                                             "exception": OSError(24, "Too many open files")})
            other = [r for r in recorder.records if r.levelno >= logging.WARNING]
        assert [r.levelno for r in other] == [logging.WARNING], [r.getMessage() for r in other]
        assert "Too many open files" in other[0].getMessage() and not other[0].exc_info
    finally:
        await server.stop()
