"""A success resolved an alert, then the process stopped (or the database went away) before the alert's message was
rewritten (fourteenth independent pass). The change was not marked notified, so recovery told it again; but the
resolution was committed already, so the replay found nothing left to resolve and rewrote nothing: the alert's
message said "orders failed" for good (its Retry button, its owners) while the store and App Home said recovered.
The replay now rewrites the alerts the run's success resolved at an earlier telling."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.emulators._core import Outcome
from bot.store.alerting import Alert, AlertState
from tests.scenario.harness import FAILING_RIVER, World, world


async def _advance_until(w: World, done: object, what: str) -> None:
    for _ in range(80):
        if callable(done) and done():
            return
        w.advance(1)
        await w.settle(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_alert_resolved_just_before_a_stop_is_rewritten_recovered_by_the_replay(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert (await w.command("run orders")).ok
        await _advance_until(w, lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), "the alert")
        [alert_message] = [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
        assert alert_message.text == "orders failed"

        # the river works again; the next run succeeds, and the process stops right after resolving the alert
        w.emulators["rivery"].state.script(FAILING_RIVER, Outcome(queued_s=1, running_s=2))
        alerter = w.runtime.parts.alerter
        rewrite = alerter.rerender
        stopped: list[int] = []

        async def stop_once(alert: Alert) -> None:
            if not stopped:
                stopped.append(alert.id)
                raise asyncio.CancelledError  # the stop, between the resolution's commit and the rewrite
            await rewrite(alert)

        alerter.rerender = stop_once  # type: ignore[method-assign]
        assert (await w.command("run orders")).ok
        await _advance_until(w, lambda: bool(stopped), "the success handled")
        store = w.runtime.store
        alert = await store.alerting.get(stopped[0])
        assert alert is not None and alert.state is AlertState.RECOVERED

        # the next process: recovery tells the change that was never marked notified again
        assert await w.runtime.recovery.recover_unnotified(timedelta(0)) >= 1
        await w.until(
            lambda: w.slack.message(alert_message.channel, alert_message.ts).text == "orders failed, since recovered",
            what="the alert rewritten as recovered",
        )
