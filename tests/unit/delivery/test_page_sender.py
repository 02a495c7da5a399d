"""The PagerDuty sender against the Events API emulator (real HTTP) and the store: how long it waits after each
kind of failure, and an event whose pipeline no longer names a service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from bot.delivery.pagerduty import PagerDutyEvents
from bot.delivery.paging import PageSender
from bot.emulators._core import EmulatorState, Fault, ManualClock
from bot.emulators.pagerduty import PagerDutyEmulator
from bot.store.store import Store
from bot.store.tables import pagerduty_events

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
KEY = SecretStr("e93facc04764012d7bfb002500d5d1a6")
TRIGGER = {"summary": "orders on Rivery failed", "source": "rivery/orders", "severity": "error"}


@pytest.fixture
async def pagerduty() -> AsyncIterator[PagerDutyEmulator]:
    server = PagerDutyEmulator(EmulatorState(clock=ManualClock()))
    await server.start()
    yield server
    await server.stop()


async def _sender(store: Store, pagerduty: PagerDutyEmulator, keys: dict[str, SecretStr]) -> PageSender:
    events = PagerDutyEvents(f"{pagerduty.url}/v2/enqueue", timeout_seconds=2.0)
    return PageSender(store, events, keys.get, owner="test", now=lambda: NOW, retry=timedelta(seconds=2))


async def _not_before(store: Store) -> datetime:
    async with store.engine.connect() as conn:
        found: datetime = (await conn.execute(select(pagerduty_events.c.not_before))).scalar_one()
    return found


@pytest.mark.parametrize(
    ("fault", "waits"),
    [
        (Fault(route="enqueue", status=503), 2.0),  # 5xx: the first wait
        (Fault(route="enqueue", status=429), 60.0),  # throttled, no Retry-After: "a back off of a few minutes"
        (Fault(route="enqueue", status=429, retry_after=7), 7.0),  # throttled, told when
    ],
    ids=["5xx", "429", "429-retry-after"],
)
async def test_a_failed_send_waits_as_pagerduty_asks(
    store: Store, pagerduty: PagerDutyEmulator, fault: Fault, waits: float
) -> None:
    await store.paging.enqueue(1, "trigger", pipeline="orders", event=TRIGGER, now=NOW)
    sender = await _sender(store, pagerduty, {"orders": KEY})
    pagerduty.state.add_fault(fault)
    try:
        assert await sender.tick() == 0
        assert await _not_before(store) == NOW + timedelta(seconds=waits)
        [event] = await store.paging.of_alert(1)
        assert (event.state.value, event.attempts) == ("pending", 1)
        assert KEY.get_secret_value() not in event.last_error
    finally:
        await sender.aclose()


async def test_the_wait_doubles_and_the_event_is_sent_once_pagerduty_is_back(
    store: Store, pagerduty: PagerDutyEmulator
) -> None:
    await store.paging.enqueue(1, "trigger", pipeline="orders", event=TRIGGER, now=NOW)
    clock = [NOW]
    events = PagerDutyEvents(f"{pagerduty.url}/v2/enqueue", timeout_seconds=2.0)
    sender = PageSender(store, events, {"orders": KEY}.get, owner="t", now=lambda: clock[0], retry=timedelta(seconds=2))
    pagerduty.state.add_fault(Fault(route="enqueue", status=502, times=2))
    try:
        assert await sender.tick() == 0
        clock[0] = NOW + timedelta(seconds=2)
        assert await sender.tick() == 0
        assert await _not_before(store) == clock[0] + timedelta(seconds=4)
        clock[0] += timedelta(seconds=4)
        assert await sender.tick() == 1
        assert pagerduty.alert("pipeline-bot/alert/1").actions() == ["trigger"]
    finally:
        await sender.aclose()


async def test_an_event_of_a_pipeline_that_no_longer_pages_is_dropped_with_the_reason(
    store: Store, pagerduty: PagerDutyEmulator
) -> None:
    await store.paging.enqueue(1, "resolve", pipeline="gone", event={}, now=NOW)
    sender = await _sender(store, pagerduty, {})
    try:
        assert await sender.tick() == 0
        [event] = await store.paging.of_alert(1)
        assert event.state.value == "dead" and "no longer names a PagerDuty service" in event.last_error
        assert pagerduty.state.requests_to("enqueue") == []
    finally:
        await sender.aclose()


async def test_the_database_away_mid_tick_is_one_warning_and_one_line_when_it_is_back(
    store: Store, pagerduty: PagerDutyEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11's lows (found by the ninth pass): the sender caught its events' failures inside the tick, so the
    database away while it recorded them was an ERROR "PagerDuty event not recorded" at every tick, out of reach of
    the rule every other job follows (``bot.ops.outages``: one WARNING per outage, one INFO when it is back)."""
    import logging

    from bot.ops.outages import Outages
    from bot.store.away import database_away

    await store.paging.enqueue(1, "trigger", pipeline="orders", event=TRIGGER, now=NOW)
    sender = await _sender(store, pagerduty, {"orders": KEY})
    recorded = store.paging.sent

    async def away(*_: object, **__: object) -> None:
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")

    monkeypatch.setattr(store.paging, "sent", away)  # PagerDuty took it; recording that finds the database away
    job = Outages(database_away).quiet("pagerduty", sender.tick)
    caplog.set_level(logging.DEBUG)
    try:
        for _ in range(5):
            await job()
        monkeypatch.setattr(store.paging, "sent", recorded)  # the database is back
        await job()
    finally:
        await sender.aclose()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "the database is away" in warnings[0], warnings
    assert any("the database is back (5 runs missed)" in r.getMessage() for r in caplog.records)
    [event] = await store.paging.of_alert(1)
    assert event.state.value == "sent"  # nothing lost: sent again (same dedup key) and recorded once it is back
