"""A schedule's start given up "unknown whether it started", whose trigger then answers after all (fourteenth
independent pass).

Nobody asked for a schedule's start, so recovery's give-up alerts its owners (and pages, and escalates): the
pipeline may have missed its slot. The alert counts the run itself. When the trigger answers after all (its process
was alive: the database away longer than a lease, a stalled event loop), the run's tracking resumes. Before the fix,
its success never resolved that alert (a success resolves only failures that began *before* it, and a run never
began before itself): the alert stayed open for good, App Home listed it, escalation pinged the owners and then
``escalate_to`` for a run that had succeeded, and the PagerDuty incident was never resolved. A failure instead left
the alert saying "unknown whether it started" (the failure was taken for the same one told again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from bot.emulators._core import EmulatorState, Fault, ManualClock, Outcome
from bot.emulators.pagerduty import PagerDutyEmulator
from bot.emulators.slack import FakeSlack
from bot.store.alerting import AlertState
from bot.tracking.schedules import scheduled_items
from tests.scenario.harness import ENV, World, catalog_text, make_emulators, running_world

KEY = "e93facc04764012d7bfb002500d5d1a6"


def _scheduled(raw: dict[str, Any]) -> None:
    raw["defaults"]["pagerduty"] = {"routing_key": "${PD_ROUTING_KEY}"}
    raw["pipelines"]["budget"]["schedule"] = {"cron": "0 6 * * 1-5", "missed": "skip"}
    raw["pipelines"]["budget"]["channel"] = "C0OPS"


@asynccontextmanager
async def _scheduled_paged_world(tmp: Path) -> AsyncIterator[tuple[World, PagerDutyEmulator]]:
    """The scenario world, ``budget`` on a schedule, every pipeline paging the PagerDuty emulator."""
    clock = ManualClock()
    pagerduty = PagerDutyEmulator(EmulatorState(clock=clock), routing_keys=(KEY,))
    await pagerduty.start()
    try:
        async with running_world(
            tmp, clock, make_emulators(clock), FakeSlack(), catalog_text, catalog_edit=_scheduled,
            env={**ENV, "PD_ROUTING_KEY": KEY}, pagerduty_events_url=f"{pagerduty.url}/v2/enqueue",
            pagerduty_retry_seconds=0.2, pagerduty_timeout_seconds=1.0,
        ) as w:
            yield w, pagerduty
    finally:
        await pagerduty.stop()


async def _given_up_then_answered(w: World, result: Literal["succeed", "fail"]) -> int:
    """The 06:00 slot of ``budget`` fires; its trigger waits 2 s for InVision; meanwhile its process is taken for gone
    and recovery gives the start up (alerted). The trigger then answers; the run ends with ``result``. Its id."""
    invision = w.emulators["invision"]
    invision.state.default = Outcome(result=result, queued_s=1, running_s=3, message="Step 3 of 5 failed")
    invision.state.add_fault(Fault(route="trigger", kind="delay", delay=2, times=1))
    [budget] = [i for i in scheduled_items(w.runtime.catalog) if i.name == "budget"]
    slot = budget.next_fire(datetime.now(UTC))
    assert slot is not None
    w.runtime.schedules.now = lambda: slot
    fired = asyncio.create_task(w.runtime.schedules.fire(budget))
    await w.until(lambda: bool(invision.state.requests_to("trigger")), what="the slot's trigger")
    store = w.runtime.store
    assert store is not None
    await store.release_leases()  # as if its process had died: its start has no owner any more
    [given_up] = await w.runtime.recovery.recover_starting(timedelta(0))
    [alert] = await store.alerting.open_alerts()
    assert alert.runs == (given_up.id,) and "unknown whether it started" in alert.message
    assert await fired  # the trigger answers after all: tracking resumed
    ended = result.replace("succeed", "succeeded").replace("fail", "failed")
    for _ in range(100):
        run = await store.runs.get(given_up.id)
        if run is not None and run.state.value == ended:
            break
        w.advance(1)
        await w.settle(0.1)
    run = await store.runs.get(given_up.id)
    assert run is not None and run.state.value == ended
    return given_up.id


async def test_a_given_up_schedule_start_that_succeeds_after_all_resolves_its_alert_and_incident(
    tmp_path: Path,
) -> None:
    async with _scheduled_paged_world(tmp_path) as (w, pagerduty):
        run_id = await _given_up_then_answered(w, "succeed")
        store = w.runtime.store
        assert store is not None
        await w.until(lambda: bool(pagerduty.alerts), what="the give-up paged")
        [incident] = pagerduty.alerts
        for _ in range(50):  # the success is handled after it is recorded
            if not await store.alerting.open_alerts():
                break
            await w.settle(0.1)
        assert await store.alerting.open_alerts() == [], "the run succeeded: its alert stays open for good"
        [alert] = await store.alerting.alerts_between(datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))
        assert alert.state is AlertState.RECOVERED and alert.recovered_by_run == run_id
        await w.until(lambda: incident.state == "resolved", what="the incident resolved on PagerDuty")
        assert incident.routing_key == KEY


async def test_a_given_up_schedule_start_that_fails_after_all_tells_its_failure_in_the_alert(tmp_path: Path) -> None:
    async with _scheduled_paged_world(tmp_path) as (w, _):
        await _given_up_then_answered(w, "fail")
        store = w.runtime.store
        assert store is not None
        for _ in range(50):  # the failure is handled after it is recorded
            [alert] = await store.alerting.open_alerts()
            if "unknown whether it started" not in alert.message:
                break
            await w.settle(0.1)
        assert "unknown whether it started" not in alert.message, "the alert still says the start was given up"
        assert alert.count == 1  # the give-up and the failure are one run's: counted once
