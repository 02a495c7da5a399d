"""The on-call hand-off: a pipeline's failure alerts mirrored to PagerDuty's Events API v2 (the emulator), one
``dedup_key`` per Slack alert: trigger when it opens, acknowledge when someone acknowledges it in Slack, resolve when
a later run succeeds, in that order. PagerDuty down (5xx, 429, timeouts) never holds the Slack alert back and gets
the event later; a 400 is logged once and dropped; the routing key shows nowhere."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.emulators._core import EmulatorState, Fault, ManualClock, Outcome
from bot.emulators.pagerduty import PagerDutyEmulator
from bot.emulators.slack import FakeSlack
from bot.emulators.slack.server import Message
from tests.scenario.harness import (
    ENV,
    FAILING_RIVER,
    World,
    catalog_text,
    make_emulators,
    running_world,
    unlimited_rivery,
    world,
)

KEY = "e93facc04764012d7bfb002500d5d1a6"  # the service's Integration Key (PagerDuty's example's shape)


def _paged(raw: dict[str, Any]) -> None:
    raw["defaults"]["pagerduty"] = {"routing_key": "${PD_ROUTING_KEY}"}


@asynccontextmanager
async def paged_world(
    tmp: Path, *, known_keys: tuple[str, ...] = (KEY,), **overrides: Any
) -> AsyncIterator[tuple[World, PagerDutyEmulator]]:
    """The scenario world whose pipelines page the PagerDuty emulator (``defaults.pagerduty``)."""
    clock = ManualClock()
    pagerduty = PagerDutyEmulator(EmulatorState(clock=clock), routing_keys=known_keys)
    await pagerduty.start()
    settings = {
        "pagerduty_events_url": f"{pagerduty.url}/v2/enqueue",
        "pagerduty_retry_seconds": 0.2,
        "pagerduty_timeout_seconds": 1.0,
        **overrides,
    }
    emulators = make_emulators(clock)
    unlimited_rivery(emulators)  # a retry within the minute: Rivery's two runs a minute are not the point here
    try:
        async with running_world(
            tmp,
            clock,
            emulators,
            FakeSlack(),
            lambda e: catalog_text(e, rivery_unlimited=True),
            catalog_edit=_paged,
            env={**ENV, "PD_ROUTING_KEY": KEY},
            **settings,
        ) as w:
            yield w, pagerduty
    finally:
        await pagerduty.stop()


def text_of(message: Message) -> str:
    return message.text + json.dumps(message.blocks)


def everything_in_slack(w: World) -> str:
    channels = ("C0GENERAL", "C0ALERTS", "C0OPS")
    return json.dumps([[m.text, m.blocks] for c in channels for m in w.slack.messages(c, top_level=False)])


async def _failed_alert(w: World) -> tuple[Message, int]:
    """``run orders`` (its river fails): the Slack alert in C0ALERTS and the id of its alert."""
    await w.command("run orders", user="U0BOB")
    await w.card_saying("queued")
    w.advance(40)
    await w.until(lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), what="the Slack alert")
    [alert] = [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
    [opened] = [a for a in await w.runtime.store.alerting.open_alerts() if a.pipeline == "orders"]
    return alert, opened.id


def _alert_now(w: World, alert: Message) -> str:
    return text_of(w.slack.message(alert.channel, alert.ts))


async def test_an_alert_is_triggered_acknowledged_and_resolved_on_pagerduty_with_one_dedup_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with paged_world(tmp_path) as (w, pagerduty):
        alert, alert_id = await _failed_alert(w)
        dedup = f"pipeline-bot/alert/{alert_id}"
        await w.until(lambda: any(a.dedup_key == dedup for a in pagerduty.alerts), what="the trigger")
        incident = pagerduty.alert(dedup, KEY)
        assert incident.state == "triggered" and incident.severity == "error"
        assert incident.summary.startswith("orders on Rivery failed: Table")
        assert incident.source == "rivery/orders"
        details = incident.history[0][2]["payload"]["custom_details"]
        assert details["pipeline"] == "orders" and details["run"] == "#1" and details["failed_tasks"]
        # the Slack alert links to its incident once PagerDuty took it
        await w.until(lambda: "Paged on PagerDuty" in _alert_now(w, alert), what="the page line on the alert")
        assert dedup in _alert_now(w, alert)

        # the first acknowledgement in Slack acknowledges the incident; a second one sends nothing more
        await w.slack.click(alert.channel, alert.ts, "run.ack", user="U0ALICE")
        await w.until(lambda: incident.state == "acknowledged", what="the acknowledgement on PagerDuty")
        await w.slack.click(alert.channel, alert.ts, "run.ack", user="U0BOB")
        # the page line says PagerDuty took it (it said only "paged" until the incident was resolved, and after)
        await w.until(lambda: "acknowledged there <!date^" in _alert_now(w, alert), what="the ack on the page line")

        # a retry that succeeds resolves the alert, and the incident after its acknowledgement
        w.emulators["rivery"].state.script(FAILING_RIVER, Outcome(result="succeed", queued_s=1, running_s=2))
        await w.slack.click(alert.channel, alert.ts, "run.retry", user="U0BOB")
        await w.card_saying("Retry of #1")
        w.advance(10)
        await w.until(lambda: incident.state == "resolved", what="the resolve on PagerDuty")
        await w.until(lambda: "resolved there <!date^" in _alert_now(w, alert), what="the resolve on the page line")
        assert "acknowledged there" in _alert_now(w, alert)
        await w.settle(0.5)
        assert incident.actions() == ["trigger", "acknowledge", "resolve"]
        sent = [r.body for r in pagerduty.state.requests_to("enqueue")]
        assert [(e["event_action"], e["dedup_key"]) for e in sent] == [
            ("trigger", dedup),
            ("acknowledge", dedup),
            ("resolve", dedup),
        ]
        events = await w.runtime.store.paging.of_alert(alert_id)
        assert [(e.key, e.state.value) for e in events] == [
            (f"pd:{alert_id}:trigger", "sent"),
            (f"pd:{alert_id}:acknowledge", "sent"),
            (f"pd:{alert_id}:resolve", "sent"),
        ]
        # the routing key shows in no Slack message and no log line
        assert KEY not in everything_in_slack(w)
    assert KEY not in caplog.text
    assert "PagerDuty trigger of alert" in caplog.text


async def test_pagerduty_down_never_holds_the_slack_alert_and_gets_the_page_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with paged_world(tmp_path) as (w, pagerduty):
        pagerduty.state.add_fault(Fault(route="enqueue", status=500, times=None))  # down until told otherwise
        alert, alert_id = await _failed_alert(w)  # posted on time all the same
        await w.until(lambda: len(pagerduty.state.requests_to("enqueue")) >= 2, what="PagerDuty tried twice")
        assert pagerduty.alerts == []
        assert "Paging PagerDuty" in _alert_now(w, alert)  # the alert says the page is on its way
        # then throttled once, then slower than the bot waits for, then back
        pagerduty.state.clear_faults()
        pagerduty.state.add_fault(Fault(route="enqueue", status=429, retry_after=0.3, times=1))
        pagerduty.state.add_fault(Fault(route="enqueue", kind="delay", delay=2.0, times=1))
        dedup = f"pipeline-bot/alert/{alert_id}"
        await w.until(lambda: any(a.dedup_key == dedup for a in pagerduty.alerts), timeout=20, what="the late trigger")
        await w.until(lambda: "Paged on PagerDuty" in _alert_now(w, alert), what="the page line")
        # the timed-out try reached PagerDuty after all: sent again under the same dedup key, it is one incident
        assert len(pagerduty.alerts) == 1 and set(pagerduty.alert(dedup).actions()) == {"trigger"}
        assert KEY not in everything_in_slack(w)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "PagerDuty trigger" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # an outage is one warning per event, not per try
    assert KEY not in caplog.text


async def test_an_event_pagerduty_refuses_is_logged_once_and_dropped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    other = "0123456789abcdef0123456789abcdef"
    async with paged_world(tmp_path, known_keys=(other,)) as (w, pagerduty):  # our key is not the service's
        alert, alert_id = await _failed_alert(w)
        await w.until(lambda: "PagerDuty refused the page" in _alert_now(w, alert), what="the refusal on the alert")
        await w.settle(1.0)
        assert len(pagerduty.state.requests_to("enqueue")) == 1  # not tried again
        assert pagerduty.alerts == []
        [event] = await w.runtime.store.paging.of_alert(alert_id)
        assert event.state.value == "dead" and "Invalid routing key" in event.last_error
        assert "Invalid routing key" in _alert_now(w, alert)
        assert KEY not in everything_in_slack(w)
    refused = [r for r in caplog.records if r.levelno >= logging.ERROR and "refused" in r.getMessage()]
    assert len(refused) == 1 and "Invalid routing key" in refused[0].getMessage()
    assert KEY not in caplog.text


async def test_a_muted_pipeline_pages_nobody_and_a_catalog_without_pagerduty_builds_no_sender(tmp_path: Path) -> None:
    (tmp_path / "muted").mkdir()
    (tmp_path / "plain").mkdir()
    async with paged_world(tmp_path / "muted") as (w, pagerduty):
        await w.command("mute orders 1h", user="U0ALICE")
        await w.command("run orders", user="U0BOB")
        await w.card_saying("queued")
        w.advance(40)
        await w.card_saying("failed")
        await w.settle(1.0)
        assert pagerduty.state.requests_to("enqueue") == []
        assert w.runtime.parts.pages is not None
    async with world(tmp_path / "plain") as w:
        assert w.runtime.parts.pages is None
        assert "pagerduty" not in {job.id for job in w.runtime.parts.scheduler.get_jobs()}


async def test_an_alert_resolved_while_pagerduty_is_down_is_triggered_then_resolved_in_order(tmp_path: Path) -> None:
    async with paged_world(tmp_path) as (w, pagerduty):
        pagerduty.state.add_fault(Fault(route="enqueue", status=503, times=None))
        alert, alert_id = await _failed_alert(w)
        w.emulators["rivery"].state.script(FAILING_RIVER, Outcome(result="succeed", queued_s=1, running_s=2))
        await w.slack.click(alert.channel, alert.ts, "run.retry", user="U0BOB")
        await w.card_saying("Retry of #1")
        w.advance(10)
        await w.until(lambda: "recovered" in _alert_now(w, alert), what="the Slack alert resolved, PagerDuty down")
        events = await w.runtime.store.paging.of_alert(alert_id)
        assert [(e.action, e.state.value) for e in events] == [("trigger", "pending"), ("resolve", "pending")]
        tried = {r.body["event_action"] for r in pagerduty.state.requests_to("enqueue")}
        assert tried == {"trigger"}  # the resolve waits behind its trigger
        pagerduty.state.clear_faults()
        dedup = f"pipeline-bot/alert/{alert_id}"
        await w.until(
            lambda: any(a.dedup_key == dedup and a.state == "resolved" for a in pagerduty.alerts),
            timeout=20,
            what="the trigger, then the resolve",
        )
        assert pagerduty.alert(dedup).actions() == ["trigger", "resolve"]
        assert pagerduty.dropped == []


async def test_an_alert_reopened_after_its_incident_was_resolved_pages_again_and_resolves_again(
    tmp_path: Path,
) -> None:
    """A failure within the suppression interval after a recovery reopens the Slack alert (its story goes on):
    PagerDuty, whose incident was resolved, gets a trigger again (a new incident on the same dedup key), and the
    next recovery resolves that one too."""
    async with paged_world(tmp_path) as (w, pagerduty):
        alert, alert_id = await _failed_alert(w)
        dedup = f"pipeline-bot/alert/{alert_id}"
        rivery = w.emulators["rivery"].state
        rivery.script(FAILING_RIVER, Outcome(result="succeed", queued_s=1, running_s=2))
        await w.slack.click(alert.channel, alert.ts, "run.retry", user="U0BOB")
        await w.card_saying("Retry of #1")
        w.advance(10)
        await w.until(lambda: pagerduty.alert(dedup).state == "resolved", what="the first incident resolved")

        rivery.script(FAILING_RIVER, Outcome(result="fail", queued_s=1, running_s=2, message="Table missing again"))
        await w.command("run orders", user="U0BOB")
        await w.card_saying("queued (run #3)")
        w.advance(10)
        await w.card_saying("Table missing again")
        await w.settle(1.0)
        reopened = await w.runtime.store.alerting.get(alert_id)
        assert reopened is not None and reopened.recovered_at is None and reopened.runs == (1, 3), reopened
        await w.until(
            lambda: len([a for a in pagerduty.alerts if a.dedup_key == dedup]) == 2, timeout=10,
            what="a second incident for the reopened alert",
        )
        assert pagerduty.alert(dedup).state == "triggered"

        rivery.script(FAILING_RIVER, Outcome(result="succeed", queued_s=1, running_s=2))
        await w.command("run orders", user="U0BOB")
        await w.card_saying("queued (run #4)")
        w.advance(10)
        await w.until(lambda: pagerduty.alert(dedup).state == "resolved", timeout=10, what="the second resolved")
        assert [a.state for a in pagerduty.alerts if a.dedup_key == dedup] == ["resolved", "resolved"]
