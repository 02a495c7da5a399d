"""Runs waiting their turn, claimed by the starter (``StartStore.claim_waiting``, up to 50 at once, triggered one after
another) when the bot is asked to stop (seventeenth pass a). Before, the starter went on sending triggers through the
grace period and was cut off there: every claimed run not yet sent was left ``starting``, and recovery gave it up as
"the bot stopped while starting this run: it is unknown whether it started" (a schedule's start: its owners alerted
that the pipeline failed; a retry: its attempt lost, the failure it retried announced). The bot knew none of them had
been sent. Now a stop takes no more of them: the runs not sent wait their turn again, and the next bot (or another
replica) starts each once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.emulators._core import Fault
from bot.store.records import NewRun, RunOrigin, StoredState
from tests.scenario.harness import FLOW, world

STARTS = 10


async def test_waiting_starts_claimed_when_the_bot_stops_wait_again_and_start_once_after(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        store = w.runtime.parts.store
        invision = w.emulators["invision"]
        invision.state.add_fault(Fault(route="trigger", kind="delay", delay=0.8, times=None))  # a slow trigger
        now = w.runtime.parts.now()
        made = []
        for _ in range(STARTS):  # a schedule's starts held by a cap, due together
            run = await store.runs.create(
                NewRun(provider="invision", connection="invision", job={"dataflow_id": FLOW}, parameters={},
                       origin=RunOrigin.SCHEDULE, pipeline="budget", channel="C0GENERAL",
                       start_at=now + timedelta(seconds=3)),  # all made before it
                now=now, next_poll_at=None,
            )
            made.append(run.id)
        await w.until(lambda: any(r.route == "trigger" for r in invision.state.requests), 10, "the first trigger")
        await w.runtime.stop()  # a deploy: the grace period (2 s) is shorter than the triggers left to send
        answered = [r for r in [await store.runs.get(i) for i in made] if r is not None and r.provider_run_id]
        assert len(answered) < STARTS, "every trigger was sent before the bot stopped: the test proves nothing"
        await w.restart()
        store = w.runtime.parts.store
        # the starts the stopped bot left behind are given up at once (not after recovery's 30 s)
        await w.runtime.parts.recovery.recover_starting(timedelta(seconds=0))
        await w.until(lambda: len(invision.state.runs) >= STARTS, 15, "every start sent")
        await w.settle(1.0)
        runs = [await store.runs.get(i) for i in made]
        ended = {r.id: (r.state, r.message) for r in runs if r is not None and r.provider_run_id is None}
        assert not ended, ended  # before: "the bot stopped while starting this run: it is unknown whether it started"
        assert all(r is not None and r.state is not StoredState.UNKNOWN for r in runs)
        assert len(invision.state.runs) == STARTS  # each sent once
        alerts = [m.text for m in w.slack.messages("C0ALERTS") if "budget" in m.text]
        assert not alerts, alerts  # before: "budget failed", its owners told of starts never sent
