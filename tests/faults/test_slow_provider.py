"""A provider that trickles its answers (a byte a little faster than the read timeout: each read succeeds, the
answer never ends) is a provider that does not answer: its runs show "status unknown", its connection gets the
"cannot reach" alert, and no run is reported failed. Meanwhile every other connection is followed at its usual
pace: one slow provider holds back neither the polls nor the passive watch of the others.

The bounds below are shorter than one trickled call can last (each of its four attempts ends at the connection's
``timeout_seconds``): a tick or watch cycle waiting for that call would miss them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.emulators._core import Fault, Outcome
from tests.faults import QUEUED_S, RUNNING_S, cards, channels, fault_world, wait
from tests.scenario.harness import TAILER_CONFIG

TIMEOUT = 2.0
TRICKLE = Fault(route="status", kind="trickle", delay=0.75 * TIMEOUT, times=None)
PROMPTLY = 5.0  # one trickled status read lasts 4 × TIMEOUT and its backoffs, 9 s or more


async def test_a_trickling_provider_shows_unknown_and_holds_back_no_other_connection(tmp_path: Path) -> None:
    chans = channels(1)
    async with fault_world(tmp_path, chans, timeout=TIMEOUT, watch=False) as w:
        invision = w.emulators["invision"]
        invision.state.add_fault(TRICKLE)
        assert (await w.command("run leads-ods", channel=chans[0])).ok  # Rivery: answers as usual
        assert (await w.command("run budget", channel=chans[0])).ok  # InVision: trickles every status answer
        await wait(lambda: len(cards(w.slack, chans)) == 2, 15, "both cards", w.slack)
        await wait(lambda: bool(invision.state.requests_to("status")), 15, "a status read of InVision", w.slack)

        w.advance(QUEUED_S + RUNNING_S + 1)  # both runs ended at their providers
        started = asyncio.get_running_loop().time()
        await w.card_saying("leads-ods succeeded", channel=chans[0], timeout=PROMPTLY)
        assert asyncio.get_running_loop().time() - started < PROMPTLY

        # the trickling provider is a provider that does not answer: an outage, never a failure
        await w.card_saying("status unknown since", channel=chans[0], timeout=60)
        await w.until(lambda: any("Cannot reach" in m.text for m in w.slack.messages("C0ALERTS")), 60,
                      what="the cannot-reach alert")
        budget = next(m for m in cards(w.slack, chans) if "budget" in m.text)
        assert "failed" not in w.slack.message(budget.channel, budget.ts).text
        assert not w.thread(budget)  # no failure details

        invision.state.clear_faults()  # it answers again: the run's real outcome shows
        await w.card_saying("budget succeeded", channel=chans[0], timeout=60)
        assert not [m for m in cards(w.slack, chans) if "failed" in m.text]
        assert not [m for m in w.slack.messages("C0ALERTS") if "budget" in m.text and "Cannot reach" not in m.text]


async def test_a_trickling_list_call_holds_back_no_other_pipelines_watch(tmp_path: Path) -> None:
    chans = channels(1)
    async with fault_world(tmp_path, chans, timeout=TIMEOUT) as w:  # iowa-pda (Tailer), sales-dashboard (DK) watched
        datakitchen, tailer = w.emulators["datakitchen"], w.emulators["tailer"]
        w.advance(120)  # the emulators' clock is past the moment watching begins
        await wait(lambda: bool(datakitchen.state.requests_to("list")), 15, "a first watch cycle", w.slack)
        await w.settle(0.5)
        datakitchen.state.add_fault(Fault(route="list", kind="trickle", delay=0.75 * TIMEOUT, times=None))
        listed = len(datakitchen.state.requests_to("list"))
        await wait(lambda: len(datakitchen.state.requests_to("list")) > listed, 15, "a trickled list call", w.slack)

        tailer.external_run(TAILER_CONFIG, {}, Outcome(result="fail", queued_s=0, running_s=1, message="boom"))
        w.advance(3)
        await w.until(lambda: any("iowa-pda" in m.text for m in w.slack.messages("C0OPS")), PROMPTLY,
                      what="the alert for the failed outside run, found by the watch")
