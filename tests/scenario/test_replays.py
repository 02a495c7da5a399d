"""A signed request acts once: posted again byte for byte within Slack's five minutes, retried by Slack after it
was handled, sent to another replica, or redelivered in Socket Mode, it is answered (HTTP 200, empty) and does
nothing. A request whose first delivery was never acknowledged is still processed when it comes again."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl

import aiohttp
import pytest
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.emulators.slack.signing import signed_headers
from bot.ops.metrics import SLACK_ACK
from bot.runtime import Runtime
from bot.slack.intake import request_key
from bot.slack.replays import ACK_DEADLINE, ledger_key
from bot.slack.socket_mode import ReplaySafeSocketModeHandler, envelope_key
from tests.postgres import create_postgres_database, drop_postgres_database
from tests.scenario.harness import World, world
from tests.scenario.surface import command_body


def triggers(w: World) -> int:
    return len(w.emulators["rivery"].state.requests_to("trigger"))


async def test_the_same_signed_run_posted_three_times_starts_one_run(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        body = command_body(w, "run leads-ods")
        signed_at = int(time.time())
        answers = [await w.slack.post_raw(body, timestamp=signed_at) for _ in range(3)]
        assert [a.status for a in answers] == [200, 200, 200]
        assert answers[1].text == answers[2].text == ""
        await w.card_saying("leads-ods is queued")

        # three at once, to one process: still one
        again = command_body(w, "run orders")
        together = await asyncio.gather(*(w.slack.post_raw(again, timestamp=signed_at) for _ in range(3)))
        assert [a.status for a in together] == [200, 200, 200]
        await w.card_saying("orders is queued")
        await w.settle(0.5)
        assert triggers(w) == 2
        assert len(w.cards()) == 2
        assert len(w.slack.calls_to("chat.postMessage")) == 2
        assert w.runtime.metrics.value("pipeline_bot_slack_requests_refused_total", {"reason": "repeat"}) == 4


async def test_a_slack_retry_of_a_handled_request_starts_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        body = command_body(w, "run leads-ods")
        first = await w.slack.post_raw(body)
        assert first.ok
        await w.card_saying("leads-ods is queued")
        for attempt in ("1", "2"):  # Slack signs each retry anew: a later timestamp, the same body
            retry = await w.slack.post_raw(body, timestamp=int(time.time()) + int(attempt),
                                           headers={"X-Slack-Retry-Num": attempt, "X-Slack-Retry-Reason": "http_timeout"})
            assert (retry.status, retry.text) == (200, "")
        await w.settle(0.5)
        assert triggers(w) == 1
        assert len(w.cards()) == 1


async def test_a_slack_retry_of_a_handled_event_does_nothing_though_its_bytes_differ(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        opened = {"type": "app_home_opened", "user": "U0ALICE", "tab": "home", "event_ts": "1.000001"}
        assert (await w.slack.send_event(opened, event_id="Ev0HOME01")).ok
        await w.until(lambda: len(w.slack.calls_to("views.publish")) == 1, what="the Home tab")
        await asyncio.sleep(1.1)  # the retry's envelope has a later event_time: other bytes, the same event
        retry = await w.slack.send_event(opened, event_id="Ev0HOME01", retry_num=1)
        assert (retry.status, retry.text) == (200, "")
        assert (await w.slack.send_event(opened, event_id="Ev0HOME02")).ok  # another event is another request
        await w.until(lambda: len(w.slack.calls_to("views.publish")) == 2, what="the second Home tab")
        await w.settle(0.3)
        assert len(w.slack.calls_to("views.publish")) == 2


async def test_a_request_whose_first_delivery_was_never_acknowledged_is_processed_when_it_comes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path) as w:
        app = w.runtime.app
        real = app.async_dispatch
        failures = 1

        async def first_fails(request: Any) -> BoltResponse:
            nonlocal failures
            if failures:
                failures -= 1
                return BoltResponse(status=500, body="")  # as when a listener raises before its ack
            return await real(request)

        monkeypatch.setattr(app, "async_dispatch", first_fails)
        body = command_body(w, "run leads-ods")
        assert (await w.slack.post_raw(body)).status == 500
        retry = await w.slack.post_raw(body, headers={"X-Slack-Retry-Num": "1"})
        assert retry.ok
        await w.card_saying("leads-ods is queued")
        assert (await w.slack.post_raw(body, headers={"X-Slack-Retry-Num": "2"})).text == ""
        await w.settle(0.3)
        assert triggers(w) == 1


async def test_a_claim_left_by_a_process_that_died_before_its_ack_lapses_after_the_ack_deadline(
    tmp_path: Path
) -> None:
    async with world(tmp_path) as w:
        body = command_body(w, "run leads-ods")
        key = ledger_key(request_key(body.encode(), {}))
        # a process took the request and stopped before answering it, just now
        await w.runtime.store.requests.claim(key, now=w.runtime.now(), hold=ACK_DEADLINE, keep=timedelta(minutes=15))

    async with world(tmp_path) as w:  # the next process on the same database
        assert (await w.slack.post_raw(body)).text == ""  # a repeat within the deadline is a replay, not a retry
        await w.settle(0.3)
        assert triggers(w) == 0

        # the same, longer ago than Slack waits for an ack: Slack's retry is the request's only chance
        real_now = w.runtime.replays.now
        w.runtime.replays.now = lambda: real_now() + 2 * ACK_DEADLINE
        assert (await w.slack.post_raw(body, headers={"X-Slack-Retry-Num": "1"})).ok
        await w.card_saying("leads-ods is queued")
        assert triggers(w) == 1


async def test_a_replay_to_another_replica_on_postgresql_is_refused(tmp_path: Path) -> None:
    url = await create_postgres_database()
    try:
        async with world(tmp_path, database_url=url) as w:
            other = Runtime(w.settings, w.runtime.catalog)
            await other.start()
            try:
                assert w.runtime.http is not None and other.http is not None
                first_url, other_url = f"{w.runtime.http.url}/slack/events", f"{other.http.url}/slack/events"
                body = command_body(w, "run leads-ods")
                signed_at = int(time.time())
                assert (await w.slack.post_raw(body, timestamp=signed_at)).ok
                w.slack.app_url = other_url
                replayed = await w.slack.post_raw(body, timestamp=signed_at)
                assert (replayed.status, replayed.text) == (200, "")

                # both at once, one to each replica
                again = command_body(w, "run orders")

                async def post_to(address: str) -> int:
                    w.slack.app_url = address
                    return (await w.slack.post_raw(again, timestamp=signed_at)).status

                assert list(await asyncio.gather(post_to(first_url), post_to(other_url))) == [200, 200]
                await w.card_saying("leads-ods is queued")
                await w.card_saying("orders is queued")
                await w.settle(0.5)
                assert triggers(w) == 2
                assert len(w.cards()) == 2
            finally:
                await other.stop()
    finally:
        await drop_postgres_database(url)


# -- Socket Mode: the handler's entry point, fed envelopes as the Socket Mode client would ---------------------


@dataclass
class Acks:
    """Stands in for the Socket Mode client's websocket: what the handler sends back for each envelope."""

    sent: list[SocketModeResponse] = field(default_factory=list)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("tests.socket_mode"))

    async def send_socket_mode_response(self, response: SocketModeResponse) -> None:
        self.sent.append(response)

    def of(self, envelope_id: str) -> int:
        return sum(1 for r in self.sent if r.envelope_id == envelope_id)

    @property
    def client(self) -> AsyncBaseSocketModeClient:
        """This stand-in where the handler asks for the client: it uses only the two members above."""
        return cast(AsyncBaseSocketModeClient, self)


@asynccontextmanager
async def socket_mode(w: World) -> AsyncIterator[ReplaySafeSocketModeHandler]:
    """The runtime's own handler class around the world's app; never connected, closed at the end."""
    handler = ReplaySafeSocketModeHandler(w.runtime.app, "xapp-1-test", w.runtime.replays)
    try:
        yield handler
    finally:
        await handler.close_async()


def envelope(envelope_id: str, kind: str, payload: dict[str, Any], retry: int | None = None) -> SocketModeRequest:
    return SocketModeRequest(type=kind, envelope_id=envelope_id, payload=payload, accepts_response_payload=True,
                             retry_attempt=retry, retry_reason="timeout" if retry else None)


async def test_a_redelivered_socket_mode_envelope_is_acked_and_does_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w, socket_mode(w) as handler:
        acks = Acks()
        command = dict(parse_qsl(command_body(w, "run leads-ods")))
        first = envelope("e-1", "slash_commands", command)
        await handler.handle(acks.client, first)
        for attempt in (1, 2):  # Slack saw no ack in time and sends the same envelope again
            await handler.handle(acks.client, envelope("e-1", "slash_commands", command, retry=attempt))
        assert acks.of("e-1") == 3  # every delivery acked, so Slack stops
        await w.card_saying("leads-ods is queued")

        # an event redelivered in a new envelope is still the same event
        opened = {"type": "event_callback", "event_id": "Ev0HOME1", "team_id": w.slack.team_id,
                  "api_app_id": w.slack.api_app_id, "event": {"type": "app_home_opened", "user": "U0ALICE",
                                                              "tab": "home", "event_ts": "1.0"}}
        await handler.handle(acks.client, envelope("e-2", "events_api", opened))
        await handler.handle(acks.client, envelope("e-3", "events_api", opened, retry=1))
        assert envelope_key(envelope("e-2", "events_api", opened)) == envelope_key(envelope("e-3", "events_api", opened))
        await w.until(lambda: w.slack.home("U0ALICE") is not None, what="the Home tab")
        await w.settle(0.5)
        assert triggers(w) == 1
        assert len(w.slack.calls_to("views.publish")) == 1


async def test_socket_mode_acks_are_timed_once_for_each_envelope_bolt_handled(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        handler = ReplaySafeSocketModeHandler(w.runtime.app, "xapp-1-test", w.runtime.replays, w.runtime.metrics)
        try:
            acks = Acks()
            command = dict(parse_qsl(command_body(w, "run leads-ods")))
            await handler.handle(acks.client, envelope("e-5", "slash_commands", command))
            await handler.handle(acks.client, envelope("e-5", "slash_commands", command, retry=1))  # a repeat: not Bolt's
            assert acks.of("e-5") == 2
        finally:
            await handler.close_async()
        assert w.runtime.metrics.value(f"{SLACK_ACK}_count") == 1


async def test_a_socket_mode_envelope_whose_first_delivery_failed_is_processed_when_redelivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path) as w:
        app = w.runtime.app
        real = app.async_dispatch
        failures = 1

        async def first_fails(request: Any) -> BoltResponse:
            nonlocal failures
            if failures:
                failures -= 1
                return BoltResponse(status=500, body="")
            return await real(request)

        monkeypatch.setattr(app, "async_dispatch", first_fails)
        acks = Acks()
        command = dict(parse_qsl(command_body(w, "run leads-ods")))
        async with socket_mode(w) as handler:
            await handler.handle(acks.client, envelope("e-9", "slash_commands", command))
            assert acks.of("e-9") == 0  # no ack: Slack will redeliver it
            await handler.handle(acks.client, envelope("e-9", "slash_commands", command, retry=1))
            assert acks.of("e-9") == 1
        await w.card_saying("leads-ods is queued")
        assert triggers(w) == 1


async def test_a_slow_but_live_attempt_is_never_taken_over(tmp_path: Path) -> None:
    """The first delivery takes longer than the takeover delay to ack, yet its process is alive: a repeat is refused
    (it used to take the claim over after three seconds on the clock and start the run a second time)."""
    async with world(tmp_path) as w:
        replays = w.runtime.replays
        shift = [timedelta(0)]
        real_now = replays.now
        replays.now = lambda: real_now() + shift[0]
        entered, go_on = asyncio.Event(), asyncio.Event()
        calls = [0]

        async def slow_first(next: Any) -> Any:  # Bolt passes the next step by this name
            calls[0] += 1
            if calls[0] == 1:
                entered.set()
                await go_on.wait()
            return await next()

        w.runtime.app.middleware(slow_first)
        body = command_body(w, "run leads-ods")
        first = asyncio.ensure_future(w.slack.post_raw(body))
        await asyncio.wait_for(entered.wait(), 5)
        shift[0] = timedelta(minutes=1)  # long past any takeover delay
        await asyncio.sleep(1.5)  # the live attempt renews its claim meanwhile
        repeat = await w.slack.post_raw(body, headers={"X-Slack-Retry-Num": "1"})
        assert (repeat.status, repeat.text) == (200, "")
        go_on.set()
        assert (await first).ok
        await w.card_saying("leads-ods is queued")
        await w.settle(0.3)
        assert triggers(w) == 1


async def test_a_locked_sqlite_file_holds_up_no_ack_and_a_repeat_is_still_refused(tmp_path: Path) -> None:
    """Another writer holds SQLite's lock: commands are still acked at once (on SQLite the process's memory is the
    ledger; claims used to wait for the lock, then be refused 503), the run starts once the lock is free, and the
    same request posted again is refused all the same."""
    async with world(tmp_path) as w:
        database = w.settings.database_url.split("///", 1)[1]
        locked, release = threading.Event(), threading.Event()

        def hold_the_lock() -> None:
            conn = sqlite3.connect(database, timeout=30, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")
                locked.set()
                release.wait(20)
                conn.execute("COMMIT")
            finally:
                conn.close()

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        try:
            assert await asyncio.to_thread(locked.wait, 5)
            started = time.monotonic()
            body = command_body(w, "run leads-ods")
            acked = await w.slack.post_raw(body)
            took = time.monotonic() - started
            assert acked.status == 200, acked.status
            assert took < 3.0, took
            helped = await w.slack.post_raw(command_body(w, "help"))
            assert helped.status == 200, helped.status
            assert "run and watch data pipelines" in helped.text, helped.text
            repeat = await w.slack.post_raw(body)
            assert (repeat.status, repeat.text) == (200, "")
        finally:
            release.set()
            await asyncio.to_thread(holder.join)
        await w.card_saying("leads-ods is queued")
        assert (await w.slack.post_raw(body)).text == ""
        await w.settle(0.3)
        assert triggers(w) == 1


async def test_a_client_that_stopped_waiting_is_no_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Slack gives up on an answer after 3 s and closes the connection; the answer the bot then writes finds the
    connection closing. That is the client's doing: one INFO line, not an ERROR with a traceback for each (seen
    as hundreds of them under load in bench/ack_latency.py), and the request still counts as taken."""
    caplog.set_level(logging.INFO)
    async with world(tmp_path) as w:
        go_on = asyncio.Event()

        async def slow(next: Any) -> Any:  # Bolt passes the next step by this name
            await go_on.wait()
            return await next()

        w.runtime.app.middleware(slow)
        body = command_body(w, "help")
        assert w.slack.app_url is not None
        async with aiohttp.ClientSession() as session:
            headers = {"Content-Type": "application/x-www-form-urlencoded",
                       **signed_headers(w.slack.signing_secret, body)}
            with pytest.raises(TimeoutError):
                async with session.post(w.slack.app_url, data=body, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=0.5)):
                    pass
        caplog.clear()
        go_on.set()
        await w.settle(0.5)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == [], [r.getMessage() for r in errors]
        assert any("the client had gone" in r.getMessage() for r in caplog.records), [
            r.getMessage() for r in caplog.records]
        assert (await w.slack.post_raw(body)).text == ""  # answered once: a repeat is refused
