"""Issue 17, first independent pass: the Workflow Builder step against what Slack enforces."""

from __future__ import annotations

from pathlib import Path

from bot.emulators.slack.functions import WORKFLOW_TOKEN_SECONDS
from tests.scenario.harness import world
from tests.scenario.test_workflow_step import STEP, declare_outputs, ended


async def test_a_step_that_waits_longer_than_its_workflow_token_still_completes(tmp_path: Path) -> None:
    """The event's ``bot_access_token`` lasts 15 minutes (slackapi/bolt-python#1075), a run may take hours: the
    completion goes with the app's bot token, which ``functions.completeSuccess`` accepts at any time."""
    async with world(tmp_path) as w:
        declare_outputs(w)
        step = await w.slack.execute_function(STEP, {"pipeline": "leads-ods", "parameters": "load_date=2026-11-01"},
                                              user="U0ALICE")
        await w.card_saying("queued", channel="C0ALERTS")
        step.issued_at -= WORKFLOW_TOKEN_SECONDS + 60  # the run outlived the event's token
        w.advance(40)
        await w.card_saying("succeeded", channel="C0ALERTS")
        await ended(w, step)
        assert step.state == "completed" and step.attempts == ["success"]
        [done] = w.slack.calls_to("functions.completeSuccess")
        assert done.ok
