"""Every button and menu the bot registers, clicked by a workspace member with no rights at all, and the values the
client sends back rewritten: nothing happens at any provider, nothing changes in the bot's state beyond what that
button may do for anyone, and the person gets an answer, never an error. A guard fails when the bot starts sending
an action id this sweep does not know, so a new button cannot ship without being swept.

Already covered elsewhere, and only swept here: refusals' wording and audit (``tests/scenario/test_permissions.py``),
tampered card values, confirmation values and modal metadata (``tests/scenario/test_security.py``)."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from bot.emulators.slack import payloads
from bot.emulators.slack.server import Ephemeral, Message
from bot.slack.blocks import ids
from bot.slack.blocks.workflow import WF_APPROVE, WF_REJECT, WF_RETRY, step_value
from tests.scenario.harness import DK_JOB, FAILING_RIVER, RIVER, World
from tests.scenario.surface import OUR_FAULT, add_stranger, ask, audit_of, click_as, everything_sent, run_number
from tests.security import security_world

#: every action id the bot registers a listener for (``:<n>`` suffixes removed), and what a click needs
#: (``bot.service.rights``: owners are the pipeline's ``owners``, people and user groups' members)
SWEPT = {
    ids.RUN_REFRESH: "anyone",  # asks for the status now: nothing changes at the provider
    ids.RUN_CANCEL: "starter or change",  # whoever started the run, or allow_change
    ids.RUN_CONSOLE: "anyone",  # a link: Slack opens it, the bot only acks
    ids.RUN_RETRY: "owner or run",  # an owner, or allow_run / allow_change
    ids.RUN_ACK: "owner or change",  # "I'm on it" stops the alert asking: the people it pages, or allow_change
    ids.RUN_MUTE: "owner (24 h) or change",  # owners up to 24 h; allow_change longer
    ids.LIST_RUN: "anyone",  # opens the modal; submitting it is where the right to run is checked
    ids.OP_CONFIRM: "change",
    ids.OP_DISMISS: "anyone",  # deletes the confirmation it is on
    ids.MUTE_SET: "owner (24 h) or change",  # "already muted until …": mute for the period asked instead, or extend
    ids.PIPELINE_SELECT: "anyone",  # redraws the modal
    ids.PARAM_ACTION: "anyone",  # typing in the modal
    WF_APPROVE: "approver",
    WF_REJECT: "approver",
    WF_RETRY: "run",
    ids.SUB_REMOVE: "subscriber",  # the Home tab's Unsubscribe: whoever made it, or may change what it covers
    ids.HOME_REFRESH: "anyone",  # redraws the clicker's own Home tab; its value is not read
    ids.HOME_UNMUTE: "owner or change",  # the Home tab's Unmute: as `/pipeline unmute` (whoever may mute)
    # opens the failure's log, as its thread shows it (redacted): nothing changes. Members of the run's channel
    # read it (dave is one), others are refused: tests/scenario/test_triage_fix17.py
    ids.RUN_LOG: "anyone",
    ids.LOG_EARLIER: "anyone",  # pages the Full log modal of the one who opened it
    ids.LOG_LATER: "anyone",
    ids.RUN_RESUME: "owner or run",  # as Retry: resume from the failed step is a retry
}
#: answered on the clicker's Home tab (a click there has no response_url), not in an ephemeral
ON_HOME = {ids.SUB_REMOVE, ids.HOME_REFRESH, ids.HOME_UNMUTE}
_SUFFIX = re.compile(r":\d+$")


def _action_ids(sent: str) -> set[str]:
    return {_SUFFIX.sub("", a) for a in re.findall(r'"action_id": "([^"]+)"', sent)}


def _element(blocks: list[dict[str, Any]], action_id: str) -> str:
    """The full action id (with its ``:<n>``) of the first element whose id starts with ``action_id``."""
    for _, element in payloads.interactive_elements(blocks):
        if _SUFFIX.sub("", element["action_id"]) == action_id:
            return str(element["action_id"])
    raise LookupError(f"no {action_id} in {[e['action_id'] for _, e in payloads.interactive_elements(blocks)]}")


def _state(w: World) -> dict[str, Any]:
    """Everything a click without rights must leave as it was."""
    with sqlite3.connect(w.tmp / "bot.db") as db:
        rows = {
            "runs": db.execute("select id, state, cancel_requested_by, retry_of from runs order by id").fetchall(),
            "mutes": db.execute("select * from mutes").fetchall(),
            "steps": db.execute("select * from workflow_steps order by rowid").fetchall(),
            "flows": db.execute("select id, state from workflow_runs order by id").fetchall(),
            "subscriptions": db.execute("select * from subscriptions order by id").fetchall(),
        }
    calls = {name: {route: len(e.state.requests_to(route)) for route in
                    ("trigger", "v1_trigger", "cancel", "v1_cancel", "configuration", "workflow", "stop", "pause",
                              "resume")}
             for name, e in w.emulators.items()}
    return {**rows, "provider_writes": calls}


def _first_option(message: Message, action_id: str) -> str:
    """The value of the first option of a menu as the message shows it now (a grouped alert lists the newest run first)."""
    for _, element in payloads.interactive_elements(message.blocks):
        if _SUFFIX.sub("", element["action_id"]) == action_id:
            return str(element["options"][0]["value"])
    raise LookupError(f"no {action_id} menu")


def _says(w: World, user: str, words: str) -> bool:
    return words in json.dumps(_home_blocks(w, user))


def _home_blocks(w: World, user: str) -> list[dict[str, Any]]:
    view = w.slack.home(user)
    return view.blocks if view else []


async def _workflow_card(w: World, words: str) -> Message:
    found: list[Message] = []

    def seen() -> bool:
        found[:] = [m for c in ("C0GENERAL", "C0ALERTS") for m in w.slack.messages(c)
                    if words in m.text or words in json.dumps(m.blocks)]
        return bool(found)

    await w.until(seen, 15, what=f"a message saying {words!r}")
    return found[-1]


def _evidence(w: World, card: Message) -> list[Message]:
    return [m for m in w.slack.messages(card.channel, thread_ts=card.ts) if ids.RUN_LOG in m.action_ids]


async def test_every_button_clicked_without_rights_changes_nothing(tmp_path: Path) -> None:
    async with security_world(tmp_path) as w:
        dave = add_stranger(w)
        # a long log: its Full log modal has pages to turn
        w.emulators["datakitchen"].state.script(DK_JOB, Outcome(result="fail", queued_s=1, running_s=2, log_lines=120))
        # leads-ods: the first run keeps running (card with Cancel), the second is the workflow's step
        w.emulators["rivery"].state.script(RIVER, [Outcome(queued_s=1, running_s=10_000), Outcome(queued_s=1, running_s=2)])
        w.emulators["rivery"].state.script(FAILING_RIVER, Outcome(result="fail", queued_s=1, running_s=2))
        await w.command("run leads-ods")
        await w.command("run sales-dashboard")  # alice only: dave may not retry it
        await w.card_saying("leads-ods is queued")
        await w.card_saying("sales-dashboard is queued")
        w.advance(5)
        running = await w.card_saying("leads-ods is running")
        failed = await w.card_saying("sales-dashboard failed")
        await w.until(lambda: any(ids.RUN_ACK in str(m.blocks) for m in w.slack.messages("C0ALERTS")),
                      what="the alert")
        alert = next(m for m in w.slack.messages("C0ALERTS") if ids.RUN_ACK in str(m.blocks))
        await w.command("run nightly")
        await w.command("run broken")
        rivery = w.emulators["rivery"].state
        await w.until(lambda: len(rivery.requests_to("trigger")) == 3, what="the workflows' first steps started")
        await w.settle(0.5)
        w.advance(5)
        approval = await _workflow_card(w, WF_APPROVE)
        broken = await _workflow_card(w, WF_RETRY)
        confirm = await ask(w, "disable iowa-pda")
        listing = await ask(w, "list")
        # alice's subscription, and dave's own "notify me": his Home tab has a button to turn it off
        await ask(w, "subscribe orders #data-ops")
        await ask(w, "notify me", user=dave)
        await w.slack.open_home(dave)
        await w.until(lambda: ids.SUB_REMOVE in json.dumps(_home_blocks(w, dave)), what="dave's Home tab")
        with sqlite3.connect(w.tmp / "bot.db") as db:
            [(alices,)] = db.execute("select id from subscriptions where created_by = 'U0ALICE'").fetchall()
        await ask(w, "mute iowa-pda 1w")
        offer = await ask(w, "mute iowa-pda 1h")  # already muted for longer: the change is offered as buttons
        # alice's Home tab offers her Unmute and Acknowledge: dave's clicks on them are forged below
        await w.slack.open_home("U0ALICE")
        await w.until(lambda: ids.HOME_UNMUTE in json.dumps(_home_blocks(w, "U0ALICE"))
                      and ids.RUN_ACK in json.dumps(_home_blocks(w, "U0ALICE")), what="alice's Home tab")

        before = _state(w)
        answered: list[str] = []

        async def on_message(message: Message, action_id: str, value: Any = None) -> None:
            full = _element(message.blocks, action_id)
            before_n = len(w.slack.ephemerals(message.channel, dave))
            response = await w.slack.click(message.channel, message.ts, full, user=dave, value=value)
            assert response.ok and response.within_deadline, (action_id, response.status)
            if SWEPT[action_id] != "anyone":
                await w.until(lambda: len(w.slack.ephemerals(message.channel, dave)) > before_n, 5,
                              what=f"an answer to {action_id}")
            answered.append(action_id)

        async def on_ephemeral(ephemeral: Ephemeral, action_id: str, value: Any = None) -> None:
            full = _element(ephemeral.blocks, action_id)
            before_n = len(w.slack.ephemerals(ephemeral.channel, dave)) + len(w.slack.responses(dave))
            response = await click_as(w, ephemeral, full, user=dave, value=value)
            assert response.ok and response.within_deadline, (action_id, response.status)
            if SWEPT[action_id] != "anyone":
                await w.until(lambda: len(w.slack.ephemerals(ephemeral.channel, dave)) + len(w.slack.responses(dave))
                              > before_n, 5, what=f"an answer to {action_id}")
            answered.append(action_id)

        await on_message(running, ids.RUN_REFRESH)
        await on_message(running, ids.RUN_CANCEL)
        await on_message(running, ids.RUN_CONSOLE)
        await on_message(failed, ids.RUN_RETRY)
        await on_message(failed, ids.RUN_MUTE, value=ids.mute_value(run_number(failed), 3600))
        await on_message(alert, ids.RUN_RETRY)
        await on_message(alert, ids.RUN_ACK)
        # the alert may have grouped another failure by now (the broken workflow's step): mute what it offers
        await on_message(alert, ids.RUN_MUTE, value=_first_option(alert, ids.RUN_MUTE))
        await on_message(approval, WF_APPROVE)
        await on_message(approval, WF_REJECT)
        await on_message(broken, WF_RETRY)
        await on_ephemeral(confirm, ids.OP_CONFIRM)
        await on_ephemeral(confirm, ids.OP_DISMISS)
        await on_ephemeral(offer, ids.MUTE_SET)
        await on_ephemeral(listing, ids.LIST_RUN)
        # the modal dave opened from the list: picking and typing are his; submitting is checked
        await w.until(lambda: bool(w.slack.open_modals(dave)), what="dave's modal")
        modal = w.slack.open_modals(dave)[-1]
        await w.slack.click_view(modal.id, ids.PIPELINE_SELECT, value="sales-dashboard")
        await w.until(lambda: ids.param_block_id("source_date") in json.dumps(w.slack.view(modal.id).blocks),
                      what="the redrawn modal")
        answered += [ids.PIPELINE_SELECT, ids.PARAM_ACTION]
        # dave's Turn off, its value rewritten to alice's subscription: refused, and said on his Home tab (a click
        # there has no response_url)
        home = w.slack.home(dave)
        assert home is not None
        response = await w.slack.click_view(home.id, _element(home.blocks, ids.SUB_REMOVE), user=dave, value=str(alices))
        assert response.ok and response.within_deadline
        await w.until(lambda: "may not" in json.dumps(_home_blocks(w, dave)), 5, what="the refusal on the Home tab")
        answered.append(ids.SUB_REMOVE)
        # his Refresh redraws his own tab; alice's Unmute and Acknowledge, clicked as dave: refused on his tab
        home = w.slack.home(dave)
        assert home is not None
        response = await w.slack.click_view(home.id, _element(home.blocks, ids.HOME_REFRESH), user=dave)
        assert response.ok and response.within_deadline
        await w.until(lambda: "may not" not in json.dumps(_home_blocks(w, dave)), 5, what="the redrawn Home tab")
        answered.append(ids.HOME_REFRESH)
        alices_home = w.slack.home("U0ALICE")
        assert alices_home is not None
        for action_id, refused in ((ids.HOME_UNMUTE, "may not unmute"), (ids.RUN_ACK, "may not acknowledge")):
            full = _element(alices_home.blocks, action_id)
            response = await w.slack.click_view(alices_home.id, full, user=dave)
            assert response.ok and response.within_deadline
            await w.until(functools.partial(_says, w, dave, refused), 5, what=f"{refused} on dave's tab")
        answered.append(ids.HOME_UNMUTE)
        assert "may not" not in json.dumps(_home_blocks(w, "U0ALICE")), "dave's answer drawn on alice's tab"
        before_n = len(w.slack.ephemerals("C0GENERAL", dave))
        submitted = await w.slack.submit(modal.id, {ids.PIPELINE_BLOCK: {ids.PIPELINE_SELECT: "sales-dashboard"},
                                                    ids.param_block_id("source_date"): {ids.PARAM_ACTION: "2024-01-31"}})
        assert submitted.ok
        await w.until(lambda: len(w.slack.ephemerals("C0GENERAL", dave)) > before_n, what="the refusal of the modal")
        # the failure's evidence in its thread: Resume is a retry (refused), Full log opens a modal that pages
        await w.until(lambda: bool(_evidence(w, failed)), what="the failure's evidence")
        evidence = _evidence(w, failed)[0]
        await on_message(evidence, ids.RUN_RESUME)
        await on_message(evidence, ids.RUN_LOG)
        await w.until(lambda: any(v.callback_id == ids.LOG_MODAL for v in w.slack.open_modals(dave)), what="the log")
        log_modal = next(v for v in w.slack.open_modals(dave) if v.callback_id == ids.LOG_MODAL)
        await w.until(lambda: ids.LOG_EARLIER in json.dumps(w.slack.view(log_modal.id).blocks), what="its last page")
        await w.slack.click_view(log_modal.id, ids.LOG_EARLIER, user=dave)
        await w.until(lambda: ids.LOG_LATER in json.dumps(w.slack.view(log_modal.id).blocks), what="the earlier page")
        await w.slack.click_view(log_modal.id, ids.LOG_LATER, user=dave)
        answered += [ids.LOG_EARLIER, ids.LOG_LATER]
        await w.settle(1.0)

        after = _state(w)
        assert after["provider_writes"] == before["provider_writes"], "a click without rights reached a provider"
        assert after["mutes"] == before["mutes"] and after["flows"] == before["flows"]
        assert after["steps"] == before["steps"], "a workflow step was decided or resumed"
        assert [r for r in after["runs"] if r not in before["runs"]] == [], "a run was started, retried or canceled"
        replies = [e.text for e in w.slack.ephemerals(user=dave)] + [r.text for r in w.slack.responses(dave)]
        assert not [r for r in replies if any(bad in r for bad in OUR_FAULT)], replies
        refusals = [r for r in replies if r.startswith("⚠️") and ("may not" in r or "Only" in r)]
        # the Home tab's button is answered on the Home tab (checked above), not in an ephemeral
        assert len(refusals) >= sum(1 for a in answered if SWEPT[a] != "anyone" and a not in ON_HOME), replies
        daves = await audit_of(w, dave)
        assert {e.outcome for e in daves if e.action != "log"} == {"refused"}
        # reading is no change: he is in the run's channel, so the Full log is his to read, recorded as such
        assert [(e.outcome, e.detail) for e in daves if e.action == "log"] == [("ok", "member of C0GENERAL")]

        # every action id the bot sent anywhere in this test was swept
        sent = _action_ids(everything_sent(w))
        assert sent <= set(SWEPT), f"buttons nobody swept: {sorted(sent - set(SWEPT))}"
        assert set(answered) == set(SWEPT), f"not clicked: {sorted(set(SWEPT) - set(answered))}"


async def test_rewritten_values_of_the_buttons_not_covered_elsewhere_get_an_answer(tmp_path: Path) -> None:
    async with security_world(tmp_path) as w:
        w.emulators["rivery"].state.script(RIVER, Outcome(queued_s=1, running_s=2))
        await w.command("run nightly")
        await w.until(lambda: len(w.emulators["rivery"].state.requests_to("trigger")) == 1, what="the first step")
        await w.settle(0.5)
        w.advance(5)
        approval = await _workflow_card(w, WF_APPROVE)
        listing = await ask(w, "list")
        flows_before = _state(w)["steps"]

        async def answer(message: Message, action_id: str, value: Any) -> str:
            before_n = len(w.slack.ephemerals(message.channel, "U0ALICE"))
            response = await w.slack.click(message.channel, message.ts, _element(message.blocks, action_id),
                                           value=value)
            assert response.ok and response.within_deadline
            await w.until(lambda: len(w.slack.ephemerals(message.channel, "U0ALICE")) > before_n, 5,
                          what=f"an answer to {value!r}")
            return w.slack.ephemerals(message.channel, "U0ALICE")[-1].text

        invalid = "That button's value is not valid"
        for value in ("", "x", "1", "1|", "|approve", "abc|approve", "1|" + "s" * 65, "-1|approve", "1 | approve",
                      json.dumps({"run": 1}), "<!channel>|approve"):
            said = await answer(approval, WF_APPROVE, value)
            assert invalid in said or said.startswith("⚠️"), (value, said)
            assert "<!channel>" not in said
        for value in (step_value(424242, "approve"), step_value(1, "no-such-step"), step_value(1, "load")):
            said = await answer(approval, WF_REJECT, value)
            assert said.startswith("⚠️"), (value, said)
        assert _state(w)["steps"] == flows_before, "a rewritten value decided a step"

        # the list's Run button with a rewritten pipeline name: a modal with nothing (or nothing harmful) chosen
        for value in ("no-such-pipeline", "<!channel>", "x" * 3000):
            response = await click_as(w, listing, ids.list_run_action_id(0), user="U0ALICE", value=value)
            assert response.ok and response.within_deadline
        await w.settle(0.5)
        sent = everything_sent(w)
        assert "<!channel>" not in sent
        replies = [e.text for e in w.slack.ephemerals(user="U0ALICE")] + [r.text for r in w.slack.responses("U0ALICE")]
        assert not [r for r in replies if any(bad in r for bad in OUR_FAULT)], replies
