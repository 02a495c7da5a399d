"""Workflows across providers, retry policies, approvals and resume, through the real app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from tests.scenario.harness import RIVER, RIVERY_UNLIMITED, TAILER_CONFIG, World, unlimited_rivery, world

QUICK = Outcome(queued_s=1, running_s=2)


def daily(raw: dict[str, Any]) -> None:
    raw["workflows"] = {
        "daily-sales": {
            "parameters": {"execution_date": {"type": "date", "required": True}},
            "channel": "C0ALERTS",
            "owners": ["U0BOB"],
            "steps": {
                "ingest": {"pipeline": "leads-ods", "parameters": {"load_date": "{execution_date}"},
                           "on_success": "transform"},
                "transform": {"pipeline": "iowa-pda", "parameters": {"execution_date": "{execution_date}"},
                              "on_success": "publish"},
                "publish": {"pipeline": "sales-dashboard", "parameters": {"source_date": "{execution_date}"}},
            },
        },
        "gated": {
            "channel": "C0ALERTS",
            "steps": {
                "ingest": {"pipeline": "budget", "on_success": "approve"},
                "approve": {"approval": {"approvers": ["U0ALICE"], "timeout": "3s", "question": "Publish?"},
                            "on_success": "publish"},
                "publish": {"pipeline": "sales-dashboard"},
            },
        },
    }
    raw["pipelines"]["orders"]["retry"] = {"attempts": 2, "backoff": "1s"}
    raw["pipelines"]["leads-ods"]["retry"] = {"attempts": 3, "backoff": "1s"}
    raw["connections"]["rivery"].update(RIVERY_UNLIMITED)  # retries and steps run a river more than twice a minute


def messages(w: World) -> list[Any]:
    return [*w.slack.messages("C0GENERAL"), *w.slack.messages("C0ALERTS")]


def card(w: World, words: str) -> str:
    return json.dumps([[m.text, m.blocks] for m in messages(w) if words in m.text])


async def advance_until(w: World, predicate: Any, what: str, *, step: float = 3, limit: int = 40) -> None:
    for _ in range(limit):
        if predicate():
            return
        w.advance(step)
        await w.settle(0.3)
    await w.until(predicate, 5, what=what)


async def test_a_three_step_workflow_across_rivery_tailer_and_datakitchen_succeeds(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        await w.command("run daily-sales execution_date=2026-11-20", user="U0ALICE")
        await w.until(lambda: "daily-sales" in card(w, "Workflow"), what="the workflow card")
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the workflow to succeed")
        text = card(w, "Workflow")
        for step in ("ingest", "transform", "publish"):
            assert f"*{step}*" in text
        assert text.count("succeeded") >= 3
        # each step's own card ended right, in the channel the workflow was started from
        await w.until(
            lambda: len([c for c in w.cards("C0GENERAL") if "succeeded" in c.text and "Workflow" not in c.text]) == 3,
            what="three step cards ending succeeded",
        )
        # the workflow's parameter reached every provider as declared
        assert w.emulators["rivery"].state.requests_to("trigger")[0].body["variables"] == {"load_date": "2026-11-20"}
        assert w.emulators["tailer"].state.requests_to("trigger")[0].body["execution_date"] == "2026-11-20"
        [create] = w.emulators["datakitchen"].state.requests_to("trigger")
        assert create.body["parameters"] == {"source_date": "2026-11-20"}


async def test_retries_alert_only_when_attempts_are_used_up_and_resume_skips_what_succeeded(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=daily) as w:
        unlimited_rivery(w.emulators)
        for e in w.emulators.values():
            e.state.default = QUICK
        rivery = w.emulators["rivery"]
        rivery.state.script(RIVER, [Outcome(result="fail", queued_s=1, running_s=1, message="flaky"), QUICK])
        await w.command("run leads-ods")
        await advance_until(w, lambda: any("succeeded" in c.text for c in w.cards()), "the second attempt to succeed")
        [first, second] = sorted(w.cards(), key=lambda m: m.ts)
        assert "failed" in first.text and "succeeded" in second.text
        assert "2 of 3" in json.dumps(second.blocks)
        await w.settle(1.0)
        assert not [m for m in w.slack.messages("C0ALERTS") if "leads-ods" in m.text]  # recovered: no alert
        assert any("Succeeded on attempt 2" in m.text for m in w.thread(second))

        # a pipeline that fails every attempt alerts exactly once, after the last
        await w.command("run orders")
        await advance_until(w, lambda: len([c for c in w.cards() if "orders" in c.text and "failed" in c.text]) == 2,
                            "both attempts of orders to fail")
        await w.until(lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), what="the alert")
        await w.settle(1.0)
        assert len([m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]) == 1

        # a workflow whose first step fails once (its pipeline retries) goes on without an alert; its middle step
        # fails every attempt and stops it; Retry resumes from that step only
        tailer = w.emulators["tailer"]
        tailer.state.script(TAILER_CONFIG, [Outcome(result="fail", queued_s=1, running_s=1), QUICK])
        rivery.state.script(RIVER, [Outcome(result="fail", queued_s=1, running_s=1, message="flaky again"), QUICK])
        before = len(rivery.state.requests_to("trigger"))
        await w.command("run daily-sales execution_date=2026-11-21", user="U0ALICE")
        await advance_until(w, lambda: "daily-sales failed" in card(w, "Workflow"), "the workflow to stop")
        assert "Retry from the failed steps" in card(w, "Workflow")
        ingest_runs = len(rivery.state.requests_to("trigger"))
        assert ingest_runs == before + 2  # the ingest step: its failed attempt, then the retry that succeeded
        assert not [m for m in w.slack.messages("C0ALERTS") if "leads-ods" in m.text]  # a step's retry: no alert
        [message] = [m for m in messages(w) if "Workflow daily-sales" in m.text]
        await w.slack.click(message.channel, message.ts, "wf.retry", user="U0ALICE")
        await advance_until(w, lambda: "daily-sales succeeded" in card(w, "Workflow"), "the resumed workflow")
        assert len(rivery.state.requests_to("trigger")) == ingest_runs  # ingest was not run again


async def test_an_approval_waits_for_an_allowed_person_and_rejection_or_timeout_ends_it(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=daily) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        await w.command("run gated", user="U0ALICE")
        await advance_until(w, lambda: "wf.approve" in card(w, "Workflow gated"), "the approval buttons")
        [message] = [m for m in messages(w) if "Workflow gated" in m.text]
        approve = next(a for a in message.action_ids if a.startswith("wf.approve"))
        await w.slack.click(message.channel, message.ts, approve, user="U0BOB")  # not an approver
        await w.until(lambda: any("Only" in r.text for r in w.slack.responses("U0BOB")), what="the refusal")
        assert "waiting" in card(w, "Workflow gated")
        await w.slack.click(message.channel, message.ts, approve, user="U0ALICE")
        await advance_until(w, lambda: "gated succeeded" in card(w, "Workflow gated"), "the approved workflow")
        assert "by <@U0ALICE>" in card(w, "Workflow gated")

        # rejected: the workflow ends, saying so
        await w.command("run gated", user="U0ALICE")
        await advance_until(w, lambda: card(w, "run #2").count("wf.reject") > 0, "the second approval")
        [second] = [m for m in messages(w) if "run #2" in m.text and "gated" in m.text]
        reject = next(a for a in second.action_ids if a.startswith("wf.reject"))
        await w.slack.click(second.channel, second.ts, reject, user="U0ALICE")
        await w.until(lambda: "gated failed" in card(w, "run #2") and "rejected" in card(w, "run #2"),
                      what="the rejected workflow")

        # nobody decides: it times out
        await w.command("run gated", user="U0ALICE")
        await advance_until(w, lambda: "timed out" in card(w, "run #3"), "the timed-out approval", step=2)
        assert "gated failed" in card(w, "run #3")
