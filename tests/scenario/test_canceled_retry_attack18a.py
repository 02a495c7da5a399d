"""Eighteenth pass (a): Retry on the alert of a failure whose policy retry was canceled before it started. The new
run retries the canceled one (the database's one retry per run), so the retry was noted on no alert: the failure's
alert, where it was clicked, never said who retried it as which run (its story has a line for every other Retry)."""

from __future__ import annotations

import json
from pathlib import Path

from bot.slack.blocks import ids
from tests.scenario.harness import FLOW, world
from tests.scenario.test_canceled_waiting_fix27 import FAILS, _cancel, _retried_later, _retry_waiting


async def test_retry_past_a_canceled_retry_is_told_on_the_failures_alert(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_retried_later) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [FAILS])
        assert (await w.command("run budget")).ok
        await w.settle(0.5)
        store = w.runtime.parts.store
        [first] = await store.runs.recent("budget", 5)
        waiting = await _retry_waiting(w, first.id)
        await _cancel(w, waiting.id)
        await w.until(lambda: any("budget" in m.text for m in w.slack.messages("C0ALERTS")),
                      what="the failure's alert, its retry canceled")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "budget" in m.text]

        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_RETRY, user="U0BOB")  # an owner
        await w.until(lambda: any("Retrying as #" in e.text for e in w.slack.ephemerals("C0ALERTS", "U0BOB")),
                      what="Retry's answer")
        [again] = [r for r in await store.runs.recent("budget", 5) if r.id not in (first.id, waiting.id)]
        assert again.retry_of == waiting.id
        told = f"retried by <@U0BOB> as #{again.id}"
        await w.until(lambda: told in json.dumps(w.slack.message("C0ALERTS", alert.ts).blocks),
                      what="the alert telling the retry")  # before: its timeline said only "failed (#1)"
