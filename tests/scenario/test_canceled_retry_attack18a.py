"""Eighteenth pass (a): Retry on the alert of a failure whose policy retry was canceled before it started. The new
run retries the canceled one (the database's one retry per run), so the retry was noted on no alert: the failure's
alert, where it was clicked, never said who retried it as which run (its story has a line for every other Retry)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.emulators._core import Fault
from bot.slack.blocks import ids
from tests.scenario.harness import FLOW, world
from tests.scenario.test_canceled_waiting_fix27 import (
    FAILS,
    _cancel,
    _dk_retried_later,
    _retried_later,
    _retry_waiting,
    dk_failure_its_retry_canceled,
)


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
        # "as #3", or "as <permalink|#3>" once the retry's card is posted (which comes first is a race)
        told = re.compile(rf"retried by <@U0BOB> as (#{again.id}\b|<[^|>]+\|#{again.id}>)")
        await w.until(lambda: bool(told.search(json.dumps(w.slack.message("C0ALERTS", alert.ts).blocks))),
                      what="the alert telling the retry")  # before: its timeline said only "failed (#1)"


async def test_resume_past_a_canceled_retry_that_waits_its_turn_resumes_the_failed_order(tmp_path: Path) -> None:
    """Resume on a failure whose policy retry was canceled before it started, DataKitchen too busy for the resume at
    the click (503, Retry-After 1 s): the new run waits its turn, then ``WaitingStarts`` sends it. It took the run it
    retries (the canceled one, which never had an order) for the attempt to resume: no order to resume, so it
    started a new order of the whole recipe instead of resuming the failed one."""
    async with world(tmp_path, catalog_edit=_dk_retried_later) as w:
        dk = w.emulators["datakitchen"]
        store = w.runtime.parts.store
        first, waiting, note, order = await dk_failure_its_retry_canceled(w)

        dk.state.add_fault(Fault(route="resume", status=503, retry_after=1))  # too busy, once
        await w.slack.click(note.channel, note.ts, "run.resume", user="U0ALICE")
        await w.until(lambda: len(dk.state.requests_to("resume")) + len(dk.state.requests_to("trigger")) >= 3,
                      timeout=20, what="the resume sent again once its wait was over")
        await w.settle(0.5)
        assert len(dk.state.requests_to("trigger")) == 1, "a new order of the recipe"  # before: 2
        assert len(dk.state.requests_to("resume")) == 2
        [again] = [r for r in await store.runs.recent("sales-dashboard", 5) if r.id not in (first.id, waiting.id)]
        assert again.retry_of == waiting.id
        assert again.provider_run_id == order, again
        failed = await store.runs.get(first.id)
        # the failed attempt keeps a precise id of its own (its serving, as an automatic retry's resume leaves it)
        assert failed is not None and (failed.provider_run_id or "").startswith(f"{order}/"), failed
