"""One confirmation, and cards that say plainly what is true (issue 14, items 5 and 6), through the signed endpoint.

Cancel asks once: the command's prompt is the confirmation (no second dialog on its button), and its answer
replaces it so it cannot be clicked twice; a card's Cancel button has Slack's one dialog and no prompt after it.
A mute never silently shortens a longer one: it says so, changes nothing, and offers the change as a button."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.emulators._core import Outcome
from bot.slack.blocks import ids
from tests.scenario.harness import World, world
from tests.scenario.surface import answered_in_place, ask, audit_of, reply_to, run_number, shown


async def _running_leads(w: World) -> int:
    await w.command("run leads-ods")
    await w.card_saying("leads-ods is queued")
    w.advance(6)
    return run_number(await w.card_saying("leads-ods is running"))


async def _muted_until(w: World, pipeline: str) -> datetime | None:
    assert w.runtime.store is not None
    found = (await w.runtime.store.mutes.active(now=w.runtime.now())).get(pipeline)
    return found[0] if found else None


async def test_cancel_asks_once_and_its_prompt_cannot_be_clicked_twice(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        leads = await _running_leads(w)
        question = await ask(w, f"cancel {leads}")
        assert question.action_ids == [ids.OP_CONFIRM, ids.OP_DISMISS]
        assert all("confirm" not in e for b in question.blocks for e in b.get("elements", []))  # no second dialog

        clicked = w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts)
        done = await answered_in_place(w, clicked, question)
        assert done.text == f"Asked Rivery to cancel run #{leads}; the card will show when it stops."
        assert done.action_ids == []
        assert [e.ts for e in w.slack.ephemerals("C0GENERAL", "U0ALICE")].count(question.ts) == 1
        with pytest.raises(LookupError):  # the prompt Slack shows has no button left to click
            await w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts)
        await w.settle(0.5)
        assert len(w.emulators["rivery"].state.requests_to("cancel")) == 1
        assert [e.outcome for e in await audit_of(w, "U0ALICE") if e.action == "cancel"] == ["ok"]


async def test_cancel_is_not_asked_when_it_cannot_happen(tmp_path: Path) -> None:
    """InVision offers no cancel: the command says so at once, with no prompt left to click; an ended run too."""
    async with world(tmp_path) as w:
        await w.command("run budget")
        budget = run_number(await w.card_saying("budget is queued"))
        refused = await ask(w, f"cancel {budget}")
        assert refused.action_ids == []
        assert "InVision offers no cancel" in refused.text
        leads = await _running_leads(w)
        w.advance(31)
        await w.card_saying("leads-ods succeeded")
        ended = await ask(w, f"cancel {leads}")
        assert ended.action_ids == []
        assert f"Run #{leads} has already ended" in ended.text


async def test_a_cards_cancel_button_has_one_dialog_and_no_prompt_after_it(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        leads = await _running_leads(w)
        card = await w.card_saying("leads-ods is running")
        button = next(
            e for b in card.blocks if b["type"] == "actions" for e in b["elements"] if e["action_id"] == ids.RUN_CANCEL
        )
        assert button["confirm"]["confirm"]["text"] == "Cancel run"  # Slack's own dialog: the one confirmation
        _, answer = await reply_to(w, w.slack.click("C0GENERAL", card.ts, ids.RUN_CANCEL))
        assert answer.text == f"Asked Rivery to cancel run #{leads}; the card will show when it stops."
        assert answer.action_ids == []  # an answer, not a second "are you sure"
        assert len(w.emulators["rivery"].state.requests_to("cancel")) == 1


async def test_a_mute_never_silently_shortens_a_longer_one(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        first = await ask(w, "mute orders 1d")
        assert first.text.startswith("🔕 *orders* is muted until <!date^")
        day = await _muted_until(w, "orders")
        assert day is not None

        shorter = await ask(w, "mute orders 1h")
        assert shorter.text.startswith("🔕 *orders* is already muted until <!date^")
        assert "longer than the 1 hour asked: nothing changed." in shorter.text
        assert await _muted_until(w, "orders") == day  # nothing changed by itself
        assert shorter.action_ids == [ids.MUTE_SET, ids.mute_set_action_id(1)]
        labels = [e["text"]["text"] for b in shorter.blocks for e in b.get("elements", []) if "action_id" in e]
        assert labels == ["Mute for 1 hour from now instead", "Extend by 1 hour"]

        # the explicit change: shorter, from now; the prompt is replaced and cannot be clicked twice
        clicked = w.slack.click_ephemeral("C0GENERAL", ids.MUTE_SET, ts=shorter.ts)
        changed = await answered_in_place(w, clicked, shorter)
        assert "is muted until" in changed.text and "(shortened from <!date^" in changed.text
        assert changed.action_ids == []
        hour = await _muted_until(w, "orders")
        assert hour is not None and hour - w.runtime.now() <= timedelta(hours=1)
        with pytest.raises(LookupError):
            await w.slack.click_ephemeral("C0GENERAL", ids.MUTE_SET, ts=shorter.ts)

        # a longer mute extends, and says so
        longer = await ask(w, "mute orders 4h")
        assert "(extended from <!date^" in longer.text and not longer.action_ids
        mutes = [(e.outcome, e.detail.split(" ")[0]) for e in await audit_of(w, "U0ALICE") if e.action == "mute"]
        assert mutes == [("ok", "until"), ("already", "kept"), ("ok", "until"), ("ok", "until")]


async def test_extend_from_the_offer_adds_the_period_to_the_mute_in_force(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await ask(w, "mute orders 1d")
        day = await _muted_until(w, "orders")
        assert day is not None
        offer = await ask(w, "mute orders 4h")
        clicked = w.slack.click_ephemeral("C0GENERAL", ids.mute_set_action_id(1), ts=offer.ts)
        extended = await answered_in_place(w, clicked, offer)
        assert "(extended from <!date^" in extended.text
        until = await _muted_until(w, "orders")
        assert until is not None and timedelta(hours=4) - timedelta(seconds=5) <= until - day <= timedelta(hours=4)


async def test_a_cards_mute_menu_keeps_a_longer_mute_too(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(40)
        failed = await w.card_saying("orders failed")
        await ask(w, "mute orders 1w")
        week = await _muted_until(w, "orders")
        _, answer = await reply_to(
            w, w.slack.click("C0GENERAL", failed.ts, ids.RUN_MUTE, value=ids.mute_value(run_number(failed), 3600))
        )
        assert "is already muted until" in answer.text and "1 hour" in answer.text
        assert await _muted_until(w, "orders") == week
        value = json.loads(
            next(e["value"] for b in answer.blocks for e in b.get("elements", []) if e.get("action_id") == ids.MUTE_SET)
        )
        assert value == {"pipeline": "orders", "seconds": 3600, "run": run_number(failed)}


async def test_a_stuck_runs_card_says_so_in_its_header(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.runtime.stop()
        pipelines = dict(w.runtime.catalog.pipelines)
        pipelines["budget"] = replace(pipelines["budget"], expected_duration=timedelta(seconds=1))
        w.runtime.catalog = replace(w.runtime.catalog, pipelines=pipelines)
        await w.restart()
        w.emulators["invision"].state.default = Outcome(result="hang", queued_s=0)
        await w.command("run budget", user="U0BOB")
        card = await w.card_saying("budget is running")
        await w.until(lambda: any("may be stuck" in m.text for m in w.thread(card)), 10, what="the stuck warning")
        stuck = await w.card_saying("⏳ budget may be stuck")
        assert stuck.ts == card.ts  # the same card, its header edited
        assert stuck.blocks[0]["text"]["text"] == "⏳ budget may be stuck"
        assert "Running longer than expected since <!date^" in shown(stuck)
