"""A workflow run whose workflow a deploy removed from the catalog: its last step ran, or an approval waited."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.errors import InvalidRequest
from bot.service.permissions import Actor
from tests.scenario.harness import world
from tests.scenario.surface import shown
from tests.scenario.test_workflow_gone_attack21b import _notes, _restart_then_run_on, _workflow_card
from tests.scenario.test_workflows import QUICK, advance_until, card, messages


async def test_a_workflow_whose_steps_all_succeeded_after_it_left_the_catalog_succeeds(tmp_path: Path) -> None:
    """Every step it began succeeded and none was left: it was stopped "failed" all the same, a ❌ note in its thread
    ("… it cannot be resumed"), a success told as a failure."""
    def edit(raw: dict[str, Any]) -> None:
        raw["workflows"] = {"nightly": {"steps": {"only": {"pipeline": "leads-ods"}}}}

    async with world(tmp_path, catalog_edit=edit) as w:
        assert (await w.command("run nightly")).ok
        await w.card_saying("Workflow nightly running")
        await _restart_then_run_on(w, lambda raw: None)  # the deploy's catalog has no workflows
        await w.until(lambda: "Workflow nightly succeeded" in _workflow_card(w), 10,
                      what="the workflow card succeeded, not " + _workflow_card(w))
        assert "❌" not in _notes(w) and "left the bot's catalog" not in _notes(w), _notes(w)


def _gated(raw: dict[str, Any]) -> None:
    raw["workflows"] = {"gated": {"channel": "C0ALERTS", "steps": {
        "ingest": {"pipeline": "budget", "on_success": "approve"},
        "approve": {"approval": {"approvers": ["U0ALICE"], "timeout": "2h", "question": "Publish?"},
                    "on_success": "publish"},
        "publish": {"pipeline": "sales-dashboard"}}}}


async def test_an_approval_of_a_workflow_gone_from_the_catalog_stops_the_run_when_clicked(tmp_path: Path) -> None:
    """It answered "There is no workflow *gated* in the catalog." and the run stayed "running", its Approve and
    Reject on the card, until the approval's timeout (hours, days)."""
    async with world(tmp_path, catalog_edit=_gated) as w:
        for e in w.emulators.values():
            e.state.default = QUICK
        await w.command("run gated", user="U0ALICE")
        await advance_until(w, lambda: "wf.approve" in card(w, "Workflow gated"), "the approval buttons")
        await w.restart(lambda raw: None)  # the deploy's catalog has no workflows
        [message] = [m for m in messages(w) if "Workflow gated" in m.text]
        approve = next(a for a in message.action_ids if a.startswith("wf.approve"))
        await w.slack.click(message.channel, message.ts, approve, user="U0ALICE")
        await w.until(lambda: bool(w.slack.responses("U0ALICE")), 5, what="the click's answer")
        answer = w.slack.responses("U0ALICE")[-1].text
        assert "left the bot's catalog" in answer and "run the workflow again" in answer, answer
        await w.until(lambda: "Workflow gated failed" in card(w, "Workflow gated"), 5, what="the run stopped")
        assert "wf.approve" not in card(w, "Workflow gated")
        await w.until(lambda: any("its steps *approve*, *publish* cannot start" in shown(m) for m in w.thread(message)),
                      5, what="the note saying why")
        with pytest.raises(InvalidRequest, match="waits for no decision"):  # a replayed click: nothing more is done
            await w.runtime.parts.workflows.decide(Actor("U0ALICE"), 1, "approve", True)


async def test_a_deploy_that_reorders_a_workflows_steps_lets_its_run_go_on(tmp_path: Path) -> None:
    """The steps compared as a set: the same steps written in another order (or a step's settings changed) are
    the same workflow, its run goes on."""

    def edit(raw: dict[str, Any]) -> None:
        raw["workflows"] = {"nightly": {"steps": {"first": {"pipeline": "leads-ods", "on_success": "second"},
                                                  "second": {"pipeline": "budget"}}}}

    def reordered(raw: dict[str, Any]) -> None:
        raw["workflows"] = {"nightly": {"steps": {"second": {"pipeline": "budget"},
                                                  "first": {"pipeline": "leads-ods", "on_success": "second"}}}}

    async with world(tmp_path, catalog_edit=edit) as w:
        assert (await w.command("run nightly")).ok
        await w.card_saying("Workflow nightly running")
        await _restart_then_run_on(w, reordered)
        await w.until(lambda: "Workflow nightly succeeded" in _workflow_card(w), 10,
                      what="the workflow went on, not " + _workflow_card(w))
        assert w.emulators["invision"].state.requests_to("trigger")
