"""InVision as its document describes it, through the whole bot: a start answered without a run id is a run
that may have started (shown unknown, with what to check), and a status read answered with its one documented
error, a bare 500, counts as an outage like any other: the "cannot reach" alert once it lasts."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scenario.harness import world


async def test_a_start_answered_without_a_run_id_shows_a_run_that_may_have_started(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        invision = w.emulators["invision"]
        invision.configure({"omit_run_id": True})
        await w.command("run budget")
        card = await w.card_saying("unknown state")
        shown = json.dumps(w.slack.message(card.channel, card.ts).blocks)
        assert "may have started" in shown and "Check the InVision console" in shown
        assert "did not start" not in shown
        await w.until(lambda: any("may have started" in r.text for r in w.slack.responses("U0ALICE")),
                      what="the reply to the person")
        assert not any("did not start" in r.text for r in w.slack.responses("U0ALICE"))
        assert len(invision.state.runs) == 1


async def test_status_reads_answered_500_past_the_down_window_raise_the_cannot_reach_alert(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run budget")
        card = await w.card_saying("queued")
        invision = w.emulators["invision"]
        run_id = next(iter(invision.state.runs))
        lost = invision.state.runs.pop(run_id)  # InVision no longer knows the run: every status read is a bare 500
        await w.until(lambda: any("Cannot reach" in m.text for m in w.slack.messages("C0ALERTS")), 15,
                      what="the cannot-reach alert")
        alert = next(m for m in w.slack.messages("C0ALERTS") if "Cannot reach" in m.text)
        assert "InVision" in alert.text and "HTTP 500" in alert.text
        assert "failed" not in w.slack.message(card.channel, card.ts).text

        invision.state.runs[run_id] = lost  # it answers again
        w.advance(60)
        await w.card_saying("succeeded", timeout=15)
        await w.until(lambda: any("is back" in m.text for m in w.slack.messages("C0ALERTS")), 15,
                      what="the back notice")
