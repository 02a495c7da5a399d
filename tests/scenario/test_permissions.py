"""Who may run and change: refused by command, and re-checked on the server when a button is clicked, even a
button that was shown to someone else. Every refusal names who may, is ephemeral, and is audited. (What owners
and starters may do besides: ``test_owners.py``.)"""

from __future__ import annotations

from pathlib import Path

from bot.emulators._core import Outcome
from bot.slack.blocks import ids
from tests.scenario.harness import DK_JOB, World, world
from tests.scenario.surface import add_stranger, answered_in_place, ask, audit_of, click_as, reply_to, run_number

CHANGES = ("enable", "disable", "archive", "reset")


async def _leads_running_and_sales_failed(w: World) -> tuple[int, int]:
    """leads-ods running (cancellable), sales-dashboard failed (Retry, Mute): both started by alice."""
    w.emulators["datakitchen"].state.script(DK_JOB, Outcome(result="fail", queued_s=1, running_s=2,
                                                            message="node load failed"))
    await w.command("run leads-ods")
    await w.command("run sales-dashboard")
    await w.card_saying("leads-ods is queued")
    await w.card_saying("sales-dashboard is queued")
    w.advance(6)
    leads = await w.card_saying("leads-ods is running")
    sales = await w.card_saying("sales-dashboard failed")
    return run_number(leads), run_number(sales)


async def test_a_user_without_rights_is_refused_by_command(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        dave = add_stranger(w)
        leads, _ = await _leads_running_and_sales_failed(w)
        triggers = len(w.emulators["datakitchen"].state.requests_to("trigger"))

        refusal = await ask(w, "run sales-dashboard", user=dave)
        assert refusal.text.startswith("⚠️ You may not run *sales-dashboard*. Who may: <@U0ALICE>")
        assert "or an admin" in refusal.text and "allow_run" in refusal.text

        refusal = await ask(w, f"cancel {leads}", user=dave)
        assert refusal.text.startswith(f"⚠️ You may not cancel run #{leads} of *leads-ods*: that takes being "
                                       "`allow_change` (<@U0ALICE>), who started the run (<@U0ALICE>)"), refusal.text
        assert not refusal.action_ids  # no confirmation to click
        for op in CHANGES:
            refusal = await ask(w, f"{op} iowa-pda", user=dave)
            assert refusal.text.startswith(f"⚠️ You may not {op} *iowa-pda*. Who may: <@U0ALICE>"), refusal.text
            assert not refusal.action_ids
        for op in ("mute", "unmute"):
            refusal = await ask(w, f"{op} leads-ods", user=dave)
            assert refusal.text.startswith(f"⚠️ You may not {op} *leads-ods*: that takes being `allow_change` "
                                           "(<@U0ALICE>), an owner (<@U0BOB>, <!subteam^S0DATAENG>)"), refusal.text

        # nothing happened at any provider, nothing was muted, nothing posted
        assert len(w.emulators["datakitchen"].state.requests_to("trigger")) == triggers
        assert not w.emulators["rivery"].state.requests_to("cancel")
        assert not w.emulators["tailer"].state.requests_to("configuration")
        assert not w.emulators["tailer"].state.requests_to("workflow")
        assert w.runtime.store is not None and not await w.runtime.store.mutes.active(now=w.runtime.now())
        assert not [m for m in w.slack.messages("C0GENERAL") if "<@U0DAVE>" in str(m.blocks)]

        audited = [(e.target, e.outcome) for e in await audit_of(w, dave)]
        assert audited == [("sales-dashboard", "refused"), (f"#{leads}", "refused"),
                           *[("iowa-pda", "refused")] * len(CHANGES), ("leads-ods", "refused"),
                           ("leads-ods", "refused")]
        actions = [e.action for e in await audit_of(w, dave)]
        assert actions[:6] == ["run", "cancel", *CHANGES]


async def test_a_confirmation_shown_to_alice_and_clicked_by_someone_else_is_refused(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        dave = add_stranger(w)
        leads, _ = await _leads_running_and_sales_failed(w)
        questions = {"cancel": await ask(w, f"cancel {leads}")}
        for op in CHANGES:
            questions[op] = await ask(w, f"{op} iowa-pda")
        assert all(q.action_ids == [ids.OP_CONFIRM, ids.OP_DISMISS] for q in questions.values())

        for op, question in questions.items():
            _, refusal = await reply_to(w, click_as(w, question, ids.OP_CONFIRM, user=dave), user=dave)
            if op == "cancel":
                expected = f"⚠️ You may not cancel run #{leads} of *leads-ods*: that takes being `allow_change` (<@U0ALICE>)"
            else:
                expected = f"⚠️ You may not {op} *iowa-pda*. Who may: <@U0ALICE>"
            assert refusal.text.startswith(expected), refusal.text
        assert not w.emulators["rivery"].state.requests_to("cancel")
        assert not w.emulators["tailer"].state.requests_to("configuration")
        assert not w.emulators["tailer"].state.requests_to("workflow")
        assert not w.tailer.configurations and not w.tailer.resets
        audited = [(e.target, e.outcome) for e in await audit_of(w, dave)]
        assert audited == [(f"#{leads}", "refused"), *[("iowa-pda", "refused")] * len(CHANGES)]

        # the same buttons work for the person they were shown to: the refusals were about dave
        clicked = w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=questions["disable"].ts)
        done = await answered_in_place(w, clicked, questions["disable"])
        assert done.text == "✅ Disabled *iowa-pda* on Tailer."
        clicked = w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=questions["cancel"].ts)
        await answered_in_place(w, clicked, questions["cancel"])
        assert len(w.emulators["rivery"].state.requests_to("cancel")) == 1


async def test_card_buttons_are_reauthorized_when_clicked(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        dave = add_stranger(w)
        leads, sales = await _leads_running_and_sales_failed(w)
        leads_card = await w.card_saying("leads-ods is running")
        sales_card = await w.card_saying("sales-dashboard failed")
        assert {ids.RUN_RETRY, ids.RUN_MUTE} <= set(sales_card.action_ids)
        triggers = len(w.emulators["datakitchen"].state.requests_to("trigger"))

        _, refusal = await reply_to(w, w.slack.click("C0GENERAL", leads_card.ts, ids.RUN_CANCEL, user=dave), user=dave)
        assert refusal.text.startswith(f"⚠️ You may not cancel run #{leads} of *leads-ods*: that takes being "
                                       "`allow_change` (<@U0ALICE>)"), refusal.text
        _, refusal = await reply_to(w, w.slack.click("C0GENERAL", sales_card.ts, ids.RUN_RETRY, user=dave), user=dave)
        assert refusal.text.startswith("⚠️ You may not retry *sales-dashboard*: that takes being `allow_change` "
                                       "(<@U0ALICE>), an owner (<!subteam^S0DATAENG>), `allow_run` (<@U0ALICE>), "
                                       "or an admin (<@U0CAROL>)"), refusal.text
        _, refusal = await reply_to(
            w, w.slack.click("C0GENERAL", sales_card.ts, ids.RUN_MUTE, user=dave, value=ids.mute_value(sales, 3600)),
            user=dave)
        assert refusal.text.startswith("⚠️ You may not mute *sales-dashboard*: that takes being `allow_change` "
                                       "(<@U0ALICE>), an owner (<!subteam^S0DATAENG>)"), refusal.text

        assert not w.emulators["rivery"].state.requests_to("cancel")
        assert len(w.emulators["datakitchen"].state.requests_to("trigger")) == triggers
        assert w.runtime.store is not None and not await w.runtime.store.mutes.active(now=w.runtime.now())
        assert len(w.cards()) == 2
        audited = [(e.target, e.outcome) for e in await audit_of(w, dave)]
        assert audited == [(f"#{leads}", "refused"), (f"#{sales}", "refused"), ("sales-dashboard", "refused")]

        # the list's Run button opens the modal for anyone; submitting it is where the right to run is checked
        listing = await ask(w, "list datakitchen", user=dave)
        await w.slack.click_ephemeral("C0GENERAL", ids.list_run_action_id(0), user=dave, ts=listing.ts)
        await w.until(lambda: bool(w.slack.open_modals(dave)), what="dave's modal")
        modal = w.slack.open_modals(dave)[-1]
        # (picked again: the fake leaves an untouched initial_option out of the submitted state)
        picked = {ids.PIPELINE_BLOCK: {ids.PIPELINE_SELECT: "sales-dashboard"}}
        _, refusal = await reply_to(w, w.slack.submit(modal.id, picked), user=dave)
        assert refusal.text.startswith("⚠️ You may not run *sales-dashboard*. Who may: <@U0ALICE>")
        assert len(w.emulators["datakitchen"].state.requests_to("trigger")) == triggers
        assert [e.outcome for e in await audit_of(w, dave)][-1] == "refused"

        # alice may: her Retry starts a new run of sales-dashboard
        await w.slack.click("C0GENERAL", sales_card.ts, ids.RUN_RETRY, user="U0ALICE")
        await w.until(lambda: len(w.cards()) == 3, what="the retry's card")
        assert len(w.emulators["datakitchen"].state.requests_to("trigger")) == triggers + 1
        assert leads != sales


async def test_an_owner_may_mute_for_a_day_but_not_run_nor_change_what_the_catalog_keeps_from_them(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        refusal = await ask(w, "run sales-dashboard", user="U0BOB")  # an owner (S0DATAENG), not in allow_run
        assert refusal.text.startswith("⚠️ You may not run *sales-dashboard*")
        for op in CHANGES:
            assert (await ask(w, f"{op} iowa-pda", user="U0BOB")).text.startswith(f"⚠️ You may not {op}")
        refusal = await ask(w, "mute leads-ods 2d", user="U0BOB")
        assert refusal.text.startswith("⚠️ Owners may mute *leads-ods* for up to 24 h. A longer mute takes "
                                       "`allow_change` (<@U0ALICE>) or an admin (<@U0CAROL>)."), refusal.text
        assert "is muted until" in (await ask(w, "mute leads-ods 1d", user="U0BOB")).text
        assert not w.emulators["datakitchen"].state.requests_to("trigger")
        audited = [(e.action, e.outcome, e.right) for e in await audit_of(w, "U0BOB")]
        assert audited == [("run", "refused", None), *[(op, "refused", None) for op in CHANGES],
                           ("mute", "refused", None), ("mute", "ok", "owner")]
