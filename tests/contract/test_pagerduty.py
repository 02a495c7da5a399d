"""PagerDuty Events API v2: the client against the emulator over real HTTP, and the emulator's validation as
PagerDuty documents it (docs/PROVIDERS.md, "PagerDuty Events API v2")."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.delivery.pagerduty import MAX_SUMMARY, Link, PagerDutyEvents, build_event, retryable
from bot.emulators._core import EmulatorState, Fault, ManualClock
from bot.emulators.pagerduty import PagerDutyEmulator, validate_event
from bot.errors import ProviderRejected, ProviderResponseError, ProviderUnavailable
from bot.ops.redact import Redactor
from bot.providers._http import RetryPolicy
from tests.contract.conftest import SleepRecorder

KEY = "e93facc04764012d7bfb002500d5d1a6"  # 32 characters, as PagerDuty's example key
ROUTING = SecretStr(KEY)


@pytest.fixture
async def emulator() -> AsyncIterator[PagerDutyEmulator]:
    server = PagerDutyEmulator(EmulatorState(clock=ManualClock()))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def events(emulator: PagerDutyEmulator) -> AsyncIterator[PagerDutyEvents]:
    client = PagerDutyEvents(f"{emulator.url}/v2/enqueue", timeout_seconds=2.0)
    yield client
    await client.aclose()


async def _post(emulator: PagerDutyEmulator, body: Any) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        if isinstance(body, bytes):
            return await http.post(f"{emulator.url}/v2/enqueue", content=body)
        return await http.post(f"{emulator.url}/v2/enqueue", json=body)


def _trigger(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": KEY, "event_action": "trigger", "dedup_key": "alert-1",
        "payload": {"summary": "orders-eu failed", "source": "rivery/orders-eu", "severity": "error"},
    }
    for name, value in changes.items():
        if name.startswith("payload_"):
            event["payload"][name.removeprefix("payload_")] = value
        else:
            event[name] = value
    return {k: v for k, v in event.items() if v is not None}


# -- the client against the emulator -----------------------------------------------------------------------------


async def test_an_alert_lives_trigger_acknowledge_resolve(emulator: PagerDutyEmulator, events: PagerDutyEvents) -> None:
    accepted = await events.trigger(
        ROUTING, "pipeline-bot/alert/7", "orders-eu on Rivery failed: Table not found", "rivery/orders-eu",
        "critical", {"run": "#2", "failed_tasks": ["load"]}, [Link("https://slack.example/archives/C1/p1", "Slack")],
    )
    assert accepted.dedup_key == "pipeline-bot/alert/7" and accepted.message == "Event processed"
    alert = emulator.alert("pipeline-bot/alert/7", KEY)
    assert (alert.state, alert.severity, alert.source) == ("triggered", "critical", "rivery/orders-eu")
    sent = alert.history[0][2]
    assert sent["links"] == [{"href": "https://slack.example/archives/C1/p1", "text": "Slack"}]
    assert sent["payload"]["custom_details"] == {"run": "#2", "failed_tasks": ["load"]}
    assert sent["client"] == "pipeline-bot"

    assert (await events.acknowledge(ROUTING, "pipeline-bot/alert/7")).dedup_key == "pipeline-bot/alert/7"
    assert alert.state == "acknowledged"
    await events.resolve(ROUTING, "pipeline-bot/alert/7")
    assert emulator.alert("pipeline-bot/alert/7").state == "resolved"
    assert alert.actions() == ["trigger", "acknowledge", "resolve"]
    assert [r.body["event_action"] for r in emulator.state.requests_to("enqueue")] == [
        "trigger", "acknowledge", "resolve"]
    assert set(emulator.state.requests_to("enqueue")[2].body) == {"routing_key", "event_action", "dedup_key"}


async def test_a_trigger_after_resolve_opens_a_new_alert_and_a_late_resolve_is_dropped(
    emulator: PagerDutyEmulator, events: PagerDutyEvents
) -> None:
    await events.trigger(ROUTING, "a-1", "failed", "src")
    await events.resolve(ROUTING, "a-1")
    await events.resolve(ROUTING, "a-1")  # nothing open: accepted (202) and dropped, as PagerDuty documents
    await events.trigger(ROUTING, "a-1", "failed again", "src")
    assert [a.state for a in emulator.alerts] == ["resolved", "triggered"]
    assert len(emulator.dropped) == 1 and emulator.alert("a-1").summary == "failed again"


async def test_an_invalid_event_is_a_refusal_with_pagerdutys_words(
    emulator: PagerDutyEmulator, events: PagerDutyEvents
) -> None:
    with pytest.raises(ProviderRejected) as caught:
        await events.trigger(SecretStr("too-short-key-abc"), "a-1", "failed", "src")
    message = str(caught.value)
    assert caught.value.status_code == 400 and not retryable(caught.value)
    assert "Event object is invalid" in message and "Length of 'routing_key' is incorrect" in message
    assert "routing_key" in message and "will not help" in message
    assert "too-short-key-abc" not in message  # the key is a secret even when wrong
    assert emulator.alerts == []


@pytest.mark.parametrize("status", [429, 500, 502, 503])
async def test_throttling_and_server_errors_are_retryable(
    emulator: PagerDutyEmulator, events: PagerDutyEvents, status: int
) -> None:
    emulator.state.add_fault(Fault(route="enqueue", status=status, retry_after=30 if status == 429 else None))
    with pytest.raises(ProviderUnavailable) as caught:
        await events.trigger(ROUTING, "a-1", "failed", "src")
    assert caught.value.status_code == status and retryable(caught.value)
    assert caught.value.retry_after == (30 if status == 429 else None)
    assert KEY not in str(caught.value)
    await events.trigger(ROUTING, "a-1", "failed", "src")  # the fault fired once: the next try goes through
    assert emulator.alert("a-1").state == "triggered"


async def test_the_documented_throttle_answers_429(emulator: PagerDutyEmulator, events: PagerDutyEvents) -> None:
    emulator.configure({"events_per_minute": 2, "retry_after": 5})
    await events.trigger(ROUTING, "a-1", "failed", "src")
    await events.acknowledge(ROUTING, "a-1")
    with pytest.raises(ProviderUnavailable) as caught:
        await events.resolve(ROUTING, "a-1")
    assert (caught.value.status_code, caught.value.retry_after) == (429, 5.0)
    assert isinstance(emulator.state.clock, ManualClock)
    emulator.state.clock.advance(61)
    await events.resolve(ROUTING, "a-1")
    assert emulator.alert("a-1").state == "resolved"


async def test_retries_when_asked_wait_for_retry_after(emulator: PagerDutyEmulator) -> None:
    sleeps = SleepRecorder()
    client = PagerDutyEvents(f"{emulator.url}/v2/enqueue", timeout_seconds=2.0,
                             retry=RetryPolicy(attempts=3), sleep=sleeps)
    emulator.state.add_fault(Fault(route="enqueue", status=429, retry_after=7, times=2))
    try:
        await client.trigger(ROUTING, "a-1", "failed", "src")
    finally:
        await client.aclose()
    assert sleeps.delays == [7.0, 7.0] and emulator.alert("a-1").state == "triggered"


async def test_a_slow_pagerduty_is_a_bounded_retryable_timeout(emulator: PagerDutyEmulator) -> None:
    client = PagerDutyEvents(f"{emulator.url}/v2/enqueue", timeout_seconds=0.3)
    emulator.state.add_fault(Fault(route="enqueue", kind="delay", delay=2.0))
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await client.trigger(ROUTING, "a-1", "failed", "src")
    finally:
        await client.aclose()
    assert "did not answer in time" in str(caught.value) and retryable(caught.value)


async def test_a_malformed_answer_is_worth_another_try(emulator: PagerDutyEmulator, events: PagerDutyEvents) -> None:
    emulator.state.add_fault(Fault(route="enqueue", kind="malformed"))
    with pytest.raises(ProviderResponseError) as caught:
        await events.trigger(ROUTING, "a-1", "failed", "src")
    assert retryable(caught.value)


async def test_nothing_unreachable_hangs() -> None:
    client = PagerDutyEvents("http://127.0.0.1:9/v2/enqueue", timeout_seconds=1.0)
    try:
        with pytest.raises(ProviderUnavailable):
            await client.acknowledge(ROUTING, "a-1")
    finally:
        await client.aclose()


async def test_no_secret_reaches_pagerduty_or_the_log(
    emulator: PagerDutyEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    process = Redactor(["db-password-123"])
    client = PagerDutyEvents(f"{emulator.url}/v2/enqueue", timeout_seconds=2.0, redactor=process)
    caplog.set_level(logging.DEBUG)
    try:
        await client.trigger(ROUTING, "a-1", "login failed with db-password-123", "src",
                             custom_details={"message": f"key {KEY} and db-password-123"})
    finally:
        await client.aclose()
    payload = emulator.alert("a-1").history[0][2]["payload"]
    assert payload["summary"] == "login failed with ***"
    assert payload["custom_details"] == {"message": "key *** and ***"}
    assert KEY not in caplog.text


# -- the event body ------------------------------------------------------------------------------------------------


def test_the_summary_is_cut_to_pagerdutys_limit_after_redaction() -> None:
    secret = "s3cret-token-value"
    long = "x" * (MAX_SUMMARY - 10) + secret + "y" * 20  # cut first, a piece of the secret would be left
    event = build_event("trigger", "a-1", summary=long, source="src", redact=Redactor([secret]).redact)
    summary = event["payload"]["summary"]
    assert len(summary) == MAX_SUMMARY and summary.endswith("y…") and "***" in summary and "s3cr" not in summary
    assert "routing_key" not in event
    assert validate_event({"routing_key": KEY, **event}) == []


def test_acknowledge_and_resolve_carry_only_the_dedup_key() -> None:
    assert build_event("resolve", "a-1", summary="ignored") == {"event_action": "resolve", "dedup_key": "a-1"}


@pytest.mark.parametrize(
    ("changes", "problem"),
    [({"dedup_key": "x" * 256}, "dedup_key must be"), ({"dedup_key": " "}, "dedup_key must be"),
     ({"summary": ""}, "needs a summary"), ({"source": ""}, "and a source"), ({"severity": "fatal"}, "severity")],
)
def test_an_event_pagerduty_would_refuse_is_not_built(changes: dict[str, Any], problem: str) -> None:
    args: dict[str, Any] = {"dedup_key": "a-1", "summary": "s", "source": "src", "severity": "error", **changes}
    dedup = args.pop("dedup_key")
    with pytest.raises(ValueError, match=problem):
        build_event("trigger", dedup, **args)


# -- the emulator's validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (_trigger(routing_key=None), "'routing_key' is missing"),
        (_trigger(routing_key=42), "'routing_key' must be a string"),
        (_trigger(routing_key="abc"), "Length of 'routing_key' is incorrect (should be 32 characters)"),
        (_trigger(event_action="page"), "'event_action' must be one of trigger, acknowledge, resolve"),
        (_trigger(payload_summary=None), "'payload.summary' is missing"),
        (_trigger(payload_summary="x" * 1025), "'payload.summary' is too long (1025 characters, at most 1024)"),
        (_trigger(payload_source=None), "'payload.source' is missing"),
        (_trigger(payload_severity="fatal"), "'payload.severity' must be one of critical, error, warning, info"),
        (_trigger(payload_custom_details="text"), "'payload.custom_details' must be an object"),
        (_trigger(payload_timestamp=5), "'payload.timestamp' must be a string"),
        (_trigger(payload=None), "'payload' is missing"),
        (_trigger(links=[{"text": "no href"}]), "'links[0].href' is missing"),
        (_trigger(images="x"), "'images' must be an array of objects"),
        (_trigger(dedup_key="k" * 256), "'dedup_key' is too long"),
        ({"routing_key": KEY, "event_action": "acknowledge"}, "'dedup_key' is missing"),
        ({"routing_key": KEY, "event_action": "resolve", "dedup_key": 7}, "'dedup_key' must be a string"),
    ],
)
async def test_the_emulator_refuses_what_pagerduty_refuses(
    emulator: PagerDutyEmulator, event: dict[str, Any], error: str
) -> None:
    answer = await _post(emulator, event)
    assert answer.status_code == 400
    body = answer.json()
    assert (body["status"], body["message"]) == ("invalid event", "Event object is invalid")
    assert any(error in e for e in body["errors"]), body["errors"]
    assert emulator.alerts == [] and emulator.dropped == []


async def test_the_emulator_answers_202_with_a_dedup_key_of_its_own(emulator: PagerDutyEmulator) -> None:
    answer = await _post(emulator, _trigger(dedup_key=None))
    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "success" and body["message"] == "Event processed" and body["dedup_key"]
    assert emulator.alert(body["dedup_key"]).state == "triggered"


async def test_the_emulator_refuses_what_is_not_an_event(emulator: PagerDutyEmulator) -> None:
    answer = await _post(emulator, b"[1, 2")
    assert answer.status_code == 400 and answer.json()["errors"] == ["JSON parse error"]
    too_big = await _post(emulator, _trigger(payload_custom_details={"blob": "x" * (512 * 1024)}))
    assert too_big.status_code == 400 and "limited to" in too_big.json()["errors"][0]


async def test_the_emulator_knows_its_services_when_told(emulator: PagerDutyEmulator) -> None:
    emulator.configure({"routing_keys": ["0" * 32]})
    answer = await _post(emulator, _trigger())
    assert answer.status_code == 400 and answer.json()["errors"] == ["Invalid routing key"]
    assert (await _post(emulator, _trigger(routing_key="0" * 32))).status_code == 202


async def test_a_trigger_on_an_acknowledged_alert_leaves_it_acknowledged(emulator: PagerDutyEmulator) -> None:
    await _post(emulator, _trigger())
    await _post(emulator, {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "alert-1"})
    await _post(emulator, _trigger())
    alert = emulator.alert("alert-1")
    assert alert.state == "acknowledged" and alert.actions() == ["trigger", "acknowledge", "trigger"]
    async with httpx.AsyncClient() as http:
        listed = (await http.get(f"{emulator.url}/_emulator/alerts")).json()
    assert [(a["dedup_key"], a["state"], len(a["history"])) for a in listed] == [("alert-1", "acknowledged", 3)]


async def test_events_of_another_routing_key_do_not_touch_the_alert(emulator: PagerDutyEmulator) -> None:
    """PagerDuty: acknowledge or resolve events sent via another routing key than the trigger's are dropped."""
    await _post(emulator, _trigger())
    await _post(emulator, {"routing_key": "1" * 32, "event_action": "resolve", "dedup_key": "alert-1"})
    assert emulator.alert("alert-1").state == "triggered" and len(emulator.dropped) == 1
