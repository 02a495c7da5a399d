"""Issue 17, first independent pass: the Workflow Builder step against what Slack enforces."""

from __future__ import annotations

from datetime import timedelta
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


async def test_a_step_claimed_by_a_bot_that_stopped_before_its_run_fails_saying_so(tmp_path: Path) -> None:
    """The bot claimed the execution (Bolt had acknowledged the event) and stopped before the run was recorded:
    Slack delivers nothing again, and a repeated event would start nothing (the claim). The step must not wait for
    ever."""
    async with world(tmp_path) as w:
        declare_outputs(w)
        step, _ = w.slack.functions.start(STEP, {"pipeline": "leads-ods"}, user="U0ALICE")  # its event is lost
        fresh, _ = w.slack.functions.start(STEP, {"pipeline": "leads-ods"}, user="U0ALICE")
        store, now = w.runtime.store.functions, w.runtime.now()
        assert await store.claim(step.id, user_id="U0ALICE", wait=True, now=now - timedelta(minutes=3))
        assert await store.claim(fresh.id, user_id="U0ALICE", wait=True, now=now)  # being begun: left alone
        await ended(w, step)
        assert step.state == "failed" and step.error is not None and "restarted" in step.error, step.error
        await w.settle()
        assert fresh.state == "running"
        assert not w.cards(channel="C0ALERTS")  # no run was started
        assert step.attempts == ["error"]


async def test_steps_past_the_providers_pace_wait_their_turn_instead_of_failing(tmp_path: Path) -> None:
    """Rivery starts a river twice a minute: a workflow used three times in a minute has nobody to "try again at
    09:01" as a person at ``/pipeline run`` does. Its run waits its turn, as the bot's own starts do."""
    async with world(tmp_path) as w:
        declare_outputs(w)
        steps = [await w.slack.execute_function(STEP, {"pipeline": "leads-ods", "wait": False,
                                                       "parameters": f"load_date=2026-11-0{i}"}, user="U0ALICE")
                 for i in (1, 2, 3)]
        for step in steps:
            await ended(w, step)
        assert [s.state for s in steps] == ["completed"] * 3, [s.error for s in steps]
        [third] = [c for c in w.cards(channel="C0ALERTS") if "(run #3)" in c.text]
        assert "2 runs of a river a minute" in str(third.blocks), third.blocks  # its card says why it waits

