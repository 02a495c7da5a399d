"""Issue 17, what the first independent pass left: who may read a Full log, a slow log in the evidence sweep,
Slack's markup and control characters in what the bot passes on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from tests.scenario.harness import RIVER, World, world
from tests.scenario.surface import audit_of
from tests.scenario.test_triage import DK_KEY
from tests.scenario.test_workflow_step import STEP, declare_outputs, ended


def _text(message: object) -> str:
    return json.dumps(getattr(message, "blocks", []), ensure_ascii=False) + getattr(message, "text", "")


def _in_private_ops(raw: dict[str, Any]) -> None:
    raw["pipelines"]["leads-ods"]["channel"] = "C0OPS"  # private: Alice and Bob
    raw["pipelines"]["leads-ods"]["owners"] = ["U0BOB"]


async def _failed_note(w: World, channel: str) -> Any:
    await w.command("run leads-ods load_date=2026-11-01", channel=channel)
    await w.card_saying("queued", channel=channel)
    w.advance(10)
    await w.until(lambda: "failed" in w.cards(channel)[-1].text, what="the card failed")
    card = w.cards(channel)[-1]
    await w.until(lambda: any("Details of run" in m.text for m in w.thread(card)), what="the details")
    [note] = [m for m in w.thread(card) if "Details of run" in m.text]
    return note


async def _full_log(w: World, note: Any, user: str) -> str:
    await w.slack.click(note.channel, note.ts, "run.log", user=user)
    await w.until(lambda: bool(w.slack.open_modals(user)), what="the Full log modal")
    [modal] = w.slack.open_modals(user)
    await w.until(lambda: "Reading the log" not in _text(w.slack.view(modal.id)), what="the modal's answer")
    shown = _text(w.slack.view(modal.id))
    await w.slack.close_view(modal.id)
    return shown


async def test_the_full_log_of_a_run_in_a_private_channel_is_refused_to_people_outside_it(tmp_path: Path) -> None:
    """A run whose card is in a private channel: its Full log button can reach anyone (``/pipeline status N``
    shows the card anywhere, a button's value is input). Its members read the log; someone outside who does not
    answer for the pipeline is refused, told where to read it, and the refusal is audited."""
    async with world(tmp_path, catalog_edit=_in_private_ops) as w:
        w.slack.state.add_user("U0DAN", "dan")  # joins the public channels, not #data-ops
        w.slack.state.add_user("U0EVE", "eve")
        w.slack.state.channels["C0OPS"].members.add("U0EVE")  # in #data-ops, no right on the pipeline
        w.emulators["rivery"].state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=5, log_lines=30,
                                                          failed_tasks=("load",), message="disk full"))
        note = await _failed_note(w, "C0OPS")
        run_id = int(note.text.split("Details of run #")[1].split()[0])
        shown = await _full_log(w, note, "U0DAN")
        assert "Lines" not in shown and "disk full" not in shown
        assert "<#C0OPS>" in shown and "read it there" in shown
        [refused] = [e for e in await audit_of(w, "U0DAN") if e.action == "log"]
        assert (refused.target, refused.outcome) == (f"#{run_id}", "refused")
        # a member who does not answer for the pipeline reads it; so does its owner
        assert "Lines" in await _full_log(w, note, "U0EVE")
        assert "Lines" in await _full_log(w, note, "U0BOB")
        let_through = [e for e in await audit_of(w) if e.action == "log" and e.outcome == "ok"]
        assert {(e.user_id, e.right) for e in let_through} == {("U0EVE", None), ("U0BOB", "owner")}


async def test_a_steps_error_shows_slacks_markup_as_words_and_the_providers_as_text(tmp_path: Path) -> None:
    """Workflow Builder shows a step's error as plain text: a refusal's mention (``<@U…>``) reads as the id, not
    as the raw markup; a provider's message that writes Slack markup (``<!channel>``) stays escaped."""
    async with world(tmp_path) as w:
        declare_outputs(w)
        refused = await w.slack.execute_function(STEP, {"pipeline": "sales-dashboard"}, user="U0BOB")
        await ended(w, refused)
        assert refused.error is not None and "You may not run sales-dashboard" in refused.error, refused.error
        assert "@U0ALICE" in refused.error and "<" not in refused.error, refused.error
        w.emulators["rivery"].state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=5,
                                                          message="<!channel> disk <@U0BOB> full"))
        step = await w.slack.execute_function(STEP, {"pipeline": "leads-ods", "wait": True}, user="U0ALICE")
        await w.card_saying("queued", channel="C0ALERTS")
        w.advance(10)
        await ended(w, step)
        assert step.error is not None and "disk" in step.error, step.error
        assert "<" not in step.error and "&lt;!channel&gt;" in step.error, step.error


async def test_control_characters_in_a_log_are_shown_not_passed_on(tmp_path: Path) -> None:
    """A script's coloured output (terminal escape sequences), a bell and a NUL in Rivery's log: none reaches
    Slack as it is; the colours are dropped, the others shown as their pictures, tabs as spaces."""
    async with world(tmp_path) as w:
        said = "\x1b[31mERROR\x1b[0m\tload\x07 stopped at\x00 row 7\x7f"
        w.emulators["rivery"].state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=5, log_lines=3,
                                                          failed_tasks=("load",), message=said))
        note = await _failed_note(w, "C0GENERAL")
        shown = [_text(note), await _full_log(w, note, "U0ALICE"), _text(w.cards()[-1])]
        for text in shown:
            assert "load␇ stopped at␀ row 7␡" in text and "[31m" not in text and "ERROR" in text, text
            # raw, or as JSON writes them into the blocks
            assert not any(c in text for c in ("\x1b", "\x07", "\x00", "\x7f", "\\u001b", "\\u0007", "\\u0000")), text
        # a log line's tab: spaces to the next 4th column (the card's message keeps it: Slack shows it as a space)
        assert "\\t" not in shown[0] and "\\t" not in shown[1]


def _dashboard_unwatched(raw: dict[str, Any]) -> None:
    raw["pipelines"]["sales-dashboard"]["watch"] = False


async def test_a_slow_rivery_log_holds_no_other_failures_evidence(tmp_path: Path) -> None:
    """Rivery prepares a run's log for minutes (the client waits as rivery-cli does): a DataKitchen failure that
    comes meanwhile has its evidence in its thread at once, and the Rivery log is asked for once, not again by
    each sweep that still finds that failure without its note."""
    async with world(tmp_path, catalog_edit=_dashboard_unwatched) as w:
        rivery = w.emulators["rivery"]
        rivery.configure({"log_polls": 1000})  # longer than the client waits: the read goes on for minutes
        rivery.state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=5, failed_tasks=("load",),
                                           message="disk full"))
        await w.command("run leads-ods load_date=2026-11-01")
        await w.card_saying("queued")
        w.advance(10)
        await w.until(lambda: "failed" in w.cards()[-1].text, what="the Rivery card failed")
        await w.until(lambda: len(rivery.state.requests_to("logs")) >= 3, what="the Rivery log being prepared")
        dk = w.emulators["datakitchen"]
        dk.state.script(DK_KEY, Outcome(result="fail", queued_s=1, running_s=5, tasks=("extract", "publish"),
                                        failed_tasks=("publish",), message="bad row"))
        await w.command("run sales-dashboard source_date=2026-11-03")
        await w.until(lambda: len(w.cards()) == 2, what="the DataKitchen card")
        w.advance(10)
        await w.until(lambda: "failed" in w.cards()[-1].text, what="the DataKitchen card failed")
        card = w.cards()[-1]
        await w.until(lambda: any("From DataKitchen" in _text(m) for m in w.thread(card)), what="its evidence",
                      timeout=15)
        started = [r for r in rivery.state.requests_to("logs") if "queryId" not in r.query]
        assert len(started) == 1, "one log query for the Rivery failure, whatever the sweeps since"
        assert not [m for m in w.thread(w.cards()[0]) if "Details of run" in m.text]  # still being prepared
