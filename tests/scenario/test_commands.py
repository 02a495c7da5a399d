"""Every command of the table, typed into the fake Slack and answered by the real bot over HTTP."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.emulators.slack.server import Message
from bot.providers.base import Capability
from bot.slack.blocks import ids
from bot.slack.commands.grammar import COMMANDS
from bot.slack.commands.help import _NEEDS, examples
from bot.slack.text import code
from tests.scenario.harness import DK_JOB, RIVER, TAILER_CONFIG, World, world
from tests.scenario.surface import answered_in_place, ask, audit_of, reply_to, run_number, shown


async def test_help_lists_every_command_and_details_each(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for text in ("help", "", "?"):
            reply = await ask(w, text)
            assert reply.source == "ack"  # no round trip: it travels in the ack
            for spec in COMMANDS:
                assert code(f"/pipeline {spec.usage}") in reply.text, (text, spec.name)
            assert code("/pipeline help <command>") in reply.text

        services = w.runtime.services
        for spec in COMMANDS:
            reply = await ask(w, f"help {spec.name}")
            assert code(f"/pipeline {spec.usage}") in reply.text
            shown = examples(spec, services.catalog, lambda p, c: services.pool.client(p.connection).can(Capability(c)))
            assert len(shown) >= len(spec.examples) - 1  # only an example of what the catalog lacks is left out
            for example in shown:
                assert code(f"/pipeline {example}") in reply.text, (spec.name, example)
            assert _NEEDS[spec.needs] in reply.text, spec.name  # who may use it, as the table says
        run_help = (await ask(w, "help run")).text  # the catalog's own names, each taking what its example gives
        assert code("/pipeline run iowa-pda execution_date=2024-01-31") in run_help
        assert "leads-ods execution_date" not in run_help  # this catalog's leads-ods takes load_date
        assert "rivery:&lt;river id&gt;" in (await ask(w, "help run")).text
        assert "allow_change" in (await ask(w, "help disable")).text
        assert "`/pipeline ls`" in (await ask(w, "help list")).text  # aliases are documented


async def test_list_shows_the_catalog_and_its_run_buttons_open_the_modal(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        reply = await ask(w, "list")
        assert reply.text == "5 pipelines"
        for name, provider in [("leads-ods", "Rivery"), ("orders", "Rivery"), ("iowa-pda", "Tailer"),
                               ("budget", "InVision"), ("sales-dashboard", "DataKitchen")]:
            assert f"*{name}* · " in shown(reply) and provider in shown(reply), name
        assert reply.action_ids == [ids.list_run_action_id(i) for i in range(5)]

        rivery = await ask(w, "list rivery")
        assert rivery.text == "2 pipelines" and "*leads-ods*" in shown(rivery) and "*orders*" in shown(rivery)
        assert "iowa-pda" not in shown(rivery)
        assert "sales-dashboard" in shown(await ask(w, "ls DataKitchen"))  # alias, provider in any case
        nothing = await ask(w, "list finance")
        assert "No pipeline matches finance" in nothing.text and "provider" in nothing.text

        # Run on the list → the modal, with that pipeline chosen and its parameters asked for
        tailer = await ask(w, "list tailer")
        response = await w.slack.click_ephemeral("C0GENERAL", ids.list_run_action_id(0), ts=tailer.ts)
        assert response.ok and response.within_deadline
        await w.until(lambda: bool(w.slack.open_modals("U0ALICE")), what="the run modal")
        [modal] = w.slack.open_modals("U0ALICE")
        assert modal.callback_id == ids.RUN_MODAL
        select = next(b for b in modal.blocks if b.get("block_id") == ids.PIPELINE_BLOCK)["element"]
        assert select["initial_option"]["value"] == "iowa-pda"
        assert ids.param_block_id("execution_date") in [b.get("block_id") for b in modal.blocks]


async def test_run_passes_parameters_to_each_provider_and_posts_a_card(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for text in ("run leads-ods load_date=2026-11-01", "run iowa-pda execution_date=2026-10-31",
                     "run sales-dashboard source_date=2026-10-30", "run budget"):
            response = await w.command(text)
            assert response.ok and response.within_deadline
            assert response.text == ""  # the answer is the card in the channel, not an ephemeral

        leads = await w.card_saying("leads-ods is queued")
        assert "load_date=2026-11-01" in shown(leads) and "<@U0ALICE>" in shown(leads)
        [trigger] = w.emulators["rivery"].state.requests_to("trigger")
        assert trigger.body == {"river_id": RIVER, "variables": {"load_date": "2026-11-01"}}

        await w.card_saying("iowa-pda")
        [launch] = w.emulators["tailer"].state.requests_to("trigger")
        assert launch.body["configuration_id"] == TAILER_CONFIG
        assert launch.body["execution_date"] == "2026-10-31"

        await w.card_saying("sales-dashboard")
        [order] = w.emulators["datakitchen"].state.requests_to("trigger")
        assert order.path.endswith(DK_JOB) and order.body["parameters"]["source_date"] == "2026-10-30"

        await w.card_saying("budget")
        assert len(w.emulators["invision"].state.requests_to("trigger")) == 1
        assert not w.slack.ephemerals(user="U0ALICE")  # nothing went wrong, nothing to say privately
        assert len(w.cards()) == 4

        runs = [e for e in await audit_of(w, "U0ALICE") if e.action == "run"]
        assert {(e.target, e.outcome) for e in runs} == {
            ("leads-ods", "ok"), ("iowa-pda", "ok"), ("sales-dashboard", "ok"), ("budget", "ok")}
        assert any("load_date=2026-11-01" in e.detail for e in runs)


async def test_bare_run_opens_the_modal_and_its_submission_starts_the_run(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        response = await w.command("run")
        assert response.ok and response.within_deadline
        await w.until(lambda: any(c.ok for c in w.slack.calls_to("views.open")), what="views.open")
        [modal] = w.slack.open_modals("U0ALICE")
        assert modal.action_ids == [ids.PIPELINE_SELECT]  # nothing chosen yet: no parameters
        assert json.loads(modal.private_metadata)["channel"] == "C0GENERAL"

        # submitting without a choice keeps the modal open with the error next to the select
        refused = await w.slack.submit(modal.id, {})
        assert refused.body["response_action"] == "errors" and ids.PIPELINE_BLOCK in refused.body["errors"]
        assert not w.slack.view(modal.id).closed

        response = await w.slack.click_view(modal.id, ids.PIPELINE_SELECT, value="leads-ods")
        assert response.ok and response.within_deadline
        await w.until(lambda: ids.PARAM_ACTION in w.slack.view(modal.id).action_ids, what="the parameter input")
        assert any(c.ok for c in w.slack.calls_to("views.update"))

        submitted = await w.slack.submit(modal.id, {ids.param_block_id("load_date"): {ids.PARAM_ACTION: "2026-10-31"}})
        assert submitted.ok and submitted.within_deadline
        assert w.slack.view(modal.id).closed
        card = await w.card_saying("leads-ods is queued")
        assert card.channel == "C0GENERAL" and "load_date=2026-10-31" in shown(card)
        [trigger] = w.emulators["rivery"].state.requests_to("trigger")
        assert trigger.body["variables"] == {"load_date": "2026-10-31"}


async def test_status_last_and_stats(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert (await ask(w, "status")).text == "No runs in flight."

        await w.command("run leads-ods load_date=2026-11-01")
        card = await w.card_saying("leads-ods is queued")
        number = run_number(card)
        in_flight = await ask(w, "status")
        assert in_flight.text == "1 runs in flight" and f"*leads-ods* #{number}" in shown(in_flight)

        posted = len(w.slack.messages("C0GENERAL"))
        one = await ask(w, f"status #{number}")
        assert one.source == "response_url"  # ephemeral, to the person who asked
        assert one.blocks[0]["type"] == "header" and f"(run #{number})" in one.text
        assert "load_date=2026-11-01" in shown(one)
        assert len(w.slack.messages("C0GENERAL")) == posted  # nothing new in the channel

        # Tailer lists runs: a run started by its scheduler, unknown to the bot, shows up
        tailer = w.tailer
        outside = tailer.external_run(TAILER_CONFIG, {"execution_date": "2026-10-01"})
        w.advance(40)
        last = await ask(w, "last iowa-pda 5")
        assert last.text.startswith("Last 1 runs of iowa-pda, newest first")
        assert w.runtime.store is not None
        seen = await w.runtime.store.runs.find(w.runtime.catalog.pipelines["iowa-pda"].connection, outside)
        # a run the bot saw by watching (it may have, by the time it answered) is its #n; else Tailer's id names it
        named = [f"run `{outside}` · succeeded"] + ([f"#{seen.id} · succeeded"] if seen else [])
        assert any(n in shown(last) for n in named), shown(last)
        assert any(r.body.get("action") == "get_last_status" for r in tailer.state.requests_to("status"))

        # InVision cannot list runs: the bot's own history answers
        assert (await ask(w, "last budget")).text.startswith("No runs of budget")
        await w.command("run budget")
        await w.card_saying("budget")
        w.advance(40)
        budget = await w.card_saying("budget succeeded")
        history = await ask(w, "last budget")
        [budget_run] = w.emulators["invision"].state.runs.values()
        assert history.text == "Last 1 runs of budget, newest first: ✅"
        assert f"✅ #{run_number(budget)} · succeeded" in shown(history)  # the bot's #n, not the provider's id
        assert budget_run.run_id not in shown(history)

        await w.card_saying("leads-ods succeeded")
        everything = await ask(w, "stats")
        assert w.runtime.store is not None
        known = await w.runtime.store.runs.between(w.runtime.now() - timedelta(days=7), w.runtime.now())
        assert len(known) >= 2  # leads-ods and budget, and runs the bot saw by watching
        assert everything.text.startswith(f"Stats for all pipelines (last 7 days): {len(known)} runs, failure rate 0.0%")
        one_pipeline = await ask(w, "stats leads-ods 30d")
        assert one_pipeline.text.startswith("Stats for leads-ods (last 30 days): 1 runs")
        assert "(last 12 hours)" in (await ask(w, "stats 12h")).text


async def test_status_of_a_retried_muted_run_shows_what_its_card_shows(tmp_path: Path) -> None:
    """``status N`` and the card in the channel are built by one builder: the retry link, the mute and the
    attempt are on both, and so are the buttons (each re-checks on the server, wherever it is clicked)."""
    async with world(tmp_path) as w:
        await ask(w, "mute orders 4h")
        await w.command("run orders", user="U0BOB")
        await w.card_saying("orders is queued")
        w.advance(40)
        failed = await w.card_saying("orders failed")
        await w.slack.click(failed.channel, failed.ts, ids.RUN_RETRY, user="U0BOB")
        await w.card_saying("Retry of #")
        await w.until(lambda: "Retried as #" in shown(w.slack.message(failed.channel, failed.ts)),
                      what="the failed card linking to its retry")
        card = w.slack.message(failed.channel, failed.ts)
        assert "Alerts muted until" in shown(card)

        status = await ask(w, f"status #{run_number(card)}")
        assert "Retried as #" in shown(status) and "Alerts muted until" in shown(status)
        assert status.text == card.text and status.blocks == card.blocks


async def test_cancel_asks_to_confirm_then_cancels_at_the_provider(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run leads-ods")
        await w.command("run sales-dashboard")
        await w.card_saying("leads-ods is queued")
        await w.card_saying("sales-dashboard is queued")  # triggered: the provider's clock may move now
        w.advance(6)
        leads = await w.card_saying("leads-ods is running")
        sales = await w.card_saying("sales-dashboard is running")
        assert ids.RUN_CANCEL in leads.action_ids and ids.RUN_CANCEL in sales.action_ids

        # Dismiss throws the question away and does nothing
        question = await ask(w, f"cancel {run_number(leads)}")
        assert question.text == f"Cancel run #{run_number(leads)} of leads-ods?"
        assert question.action_ids == [ids.OP_CONFIRM, ids.OP_DISMISS]
        confirm = question.blocks[-1]["elements"][0]
        assert confirm["style"] == "danger" and "confirm" not in confirm  # the prompt is the one confirmation
        await w.slack.click_ephemeral("C0GENERAL", ids.OP_DISMISS, ts=question.ts)
        await w.until(lambda: question not in w.slack.ephemerals("C0GENERAL", "U0ALICE"), what="the dismissal")
        assert not w.emulators["rivery"].state.requests_to("cancel")

        # Rivery: confirm → the cancel route with the provider's run id
        question = await ask(w, f"cancel {run_number(leads)}")
        done = await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        assert done.text == f"Asked Rivery to cancel run #{run_number(leads)}; the card will show when it stops."
        assert not done.action_ids  # replaced: it cannot be clicked twice
        [cancel] = w.emulators["rivery"].state.requests_to("cancel")
        [rivery_run] = w.emulators["rivery"].state.runs.values()
        assert cancel.body == {"run_id": rivery_run.run_id}

        # DataKitchen: the order run is stopped and the card ends canceled
        question = await ask(w, f"cancel #{run_number(sales)}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        [stop] = w.emulators["datakitchen"].state.requests_to("stop")
        [dk_run] = w.emulators["datakitchen"].state.runs.values()
        assert stop.path.endswith(dk_run.run_id)
        w.advance(1)
        ended = await w.card_saying("sales-dashboard was canceled")
        assert ended.ts == sales.ts and ids.RUN_CANCEL not in ended.action_ids
        await w.until(lambda: bool(w.thread(sales)), what="the thread note")
        assert w.thread(sales)[0].text == "<@U0ALICE> asked to cancel this run."  # a mention, not "&lt;@…"

        cancels = [e for e in await audit_of(w, "U0ALICE") if e.action == "cancel"]
        assert [(e.target, e.outcome) for e in cancels] == [(f"#{run_number(leads)}", "ok"), (f"#{run_number(sales)}", "ok")]


async def test_rivery_run_canceled_from_slack_ends_canceled_without_paging_owners(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run leads-ods")
        await w.card_saying("leads-ods is queued")
        w.advance(6)
        card = await w.card_saying("leads-ods is running")
        question = await ask(w, f"cancel {run_number(card)}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        w.advance(1)
        ended = await w.card_saying("leads-ods was canceled")
        assert ended.ts == card.ts
        await w.settle(1.0)
        assert not _owner_mentions(w), "a cancel the bot asked for paged the owners as a failure"


async def test_enable_disable_archive_where_the_provider_can(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        rivery = w.emulators["rivery"]
        for op in ("enable", "disable", "archive"):
            refusal = await ask(w, f"{op} leads-ods")
            assert refusal.text == f"⚠️ Rivery cannot {op} a pipeline.", refusal.text
            assert not refusal.action_ids  # nothing to confirm
        assert "cannot enable" in (await ask(w, "enable budget")).text  # InVision has no such switch
        assert not [r for r in rivery.state.requests if r.route in ("v1_activate", "v1_disable")]

        tailer = w.tailer
        expected = {"disable": (False, False), "enable": (True, False), "archive": (False, True)}
        for op, (activated, archived) in expected.items():
            question = await ask(w, f"{op} iowa-pda")
            assert question.text == f"{op.capitalize()} iowa-pda on Tailer?"
            assert question.action_ids == [ids.OP_CONFIRM, ids.OP_DISMISS]
            assert len(tailer.state.requests_to("configuration")) == list(expected).index(op)  # not before the click
            done = await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts),
                                           question)
            past = {"disable": "Disabled", "enable": "Enabled", "archive": "Archived"}[op]
            assert done.text == f"✅ {past} *iowa-pda* on Tailer."
            assert tailer.configurations[TAILER_CONFIG] == {"activated": activated, "archived": archived}
            sent = tailer.state.requests_to("configuration")[-1].body
            assert (sent["action"], sent["activated"], sent["archived"]) == ("set_configuration_status", activated,
                                                                             archived)
        ops = [(e.action, e.target, e.outcome) for e in await audit_of(w, "U0ALICE")]
        assert ops == [("disable", "iowa-pda", "ok"), ("enable", "iowa-pda", "ok"), ("archive", "iowa-pda", "ok")]


async def test_datakitchen_typed_parameters_and_disable_enable_of_the_live_order_only(tmp_path: Path) -> None:
    """DataKitchen orders say their state under ``order-status``: disable pauses the live order only (not a
    finished one listed before it), enable unpauses it; ``int`` / ``bool`` parameters stay JSON values."""

    def typed(raw: dict[str, Any]) -> None:
        raw["pipelines"]["sales-dashboard"]["parameters"].update({"batch": {"type": "int"}, "full": {"type": "bool"}})

    async with world(tmp_path, catalog_edit=typed) as w:
        dk = w.emulators["datakitchen"]
        assert isinstance(dk, DataKitchenEmulator)
        dk.strict = True  # only what DataKitchen's own clients and documents show
        await w.command("run sales-dashboard source_date=2026-10-30 batch=500 full=true")
        await w.card_saying("sales-dashboard")
        [order] = dk.state.requests_to("trigger")
        assert order.body["parameters"] == {"source_date": "2026-10-30", "batch": 500, "full": True}
        live = next(iter(dk.orders))
        w.advance(1)
        done = dk.state.runs[dk.external_run(DK_JOB, {}, Outcome(queued_s=0, running_s=0))].extra["order_id"]

        question = await ask(w, "disable sales-dashboard")
        answer = await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts),
                                         question)
        assert answer.text == "✅ Disabled *sales-dashboard* on DataKitchen.", answer.text
        assert [r.path for r in dk.state.requests_to("pause")] == [f"/v2/order/pause/{live}"]
        assert dk.orders[live].paused and not dk.orders[done].paused

        question = await ask(w, "enable sales-dashboard")
        answer = await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts),
                                         question)
        assert answer.text == "✅ Enabled *sales-dashboard* on DataKitchen.", answer.text
        assert [r.path for r in dk.state.requests_to("unpause")] == [f"/v2/order/unpause/{live}"]
        assert not dk.orders[live].paused


async def test_reset_is_for_tailer_workflows_and_says_so(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert (await ask(w, "reset leads-ods")).text == "⚠️ Rivery cannot reset a pipeline."

        question = await ask(w, "reset iowa-pda")
        assert question.text == "Reset iowa-pda on Tailer?"
        _, refusal = await reply_to(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts))
        # what was wrong (not a workflow) and what would work (point the pipeline at the workflow)
        assert "Could not reset *iowa-pda*" in refusal.text
        assert "resets only workflow" in refusal.text and "is not one" in refusal.text
        assert "Point the pipeline at the workflow's configuration" in refusal.text
        assert not w.emulators["tailer"].state.requests_to("workflow")
        assert not w.tailer.resets
        [entry] = await audit_of(w, "U0ALICE")
        assert (entry.action, entry.target, entry.outcome) == ("reset", "iowa-pda", "failed")


async def test_mute_silences_owners_until_unmuted(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        muted = await ask(w, "mute orders 4h")
        assert muted.text.startswith("🔕 *orders* is muted until <!date^")
        await w.slack.open_home("U0ALICE")
        await w.until(lambda: w.slack.home("U0ALICE") is not None, what="the Home tab")
        home = w.slack.home("U0ALICE")
        assert home is not None and "🔕 *orders* until" in json.dumps(home.blocks, ensure_ascii=False)

        # a failure while muted: the details still go to the thread, mentioning nobody
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(40)
        failed = await w.card_saying("orders failed")
        assert "Alerts muted until" in shown(failed)
        await w.until(lambda: bool(w.thread(failed)), what="the failure details")
        [details] = w.thread(failed)
        assert "*orders* failed on Rivery" in shown(details) and "Table &lt;!channel&gt; not found" in shown(details)
        await w.settle(1.0)  # long enough for an alert to go out, were one due
        assert not _owner_mentions(w), "a muted pipeline's failure mentioned its owners"

        assert (await ask(w, "unmute orders")).text == "🔔 *orders* is no longer muted."
        assert (await ask(w, "unmute orders")).text == "🔔 *orders* was not muted."
        await w.slack.open_home("U0ALICE")
        await w.until(lambda: "*orders* until" not in json.dumps(getattr(w.slack.home("U0ALICE"), "blocks", [])),
                      what="the Home tab without the mute")

        assert [(e.action, e.outcome) for e in await audit_of(w, "U0ALICE") if "mute" in e.action] == [
            ("mute", "ok"), ("unmute", "ok"), ("unmute", "not muted")]


async def test_after_unmute_the_next_failure_mentions_the_owners_again(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await ask(w, "mute orders 4h")
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(40)
        failed = await w.card_saying("orders failed")
        await ask(w, "unmute orders")

        await w.command("run orders")
        await w.until(lambda: len(w.cards()) == 2, what="the second card")
        w.advance(40)
        await w.until(lambda: len([c for c in w.cards() if "orders failed" in c.text]) == 2, what="a second failure")
        second = next(c for c in w.cards() if "orders failed" in c.text and c.ts != failed.ts)
        await w.until(lambda: bool(w.thread(second)), what="the second failure's details")
        await w.until(lambda: any("cc <@U0BOB>" in shown(m) and f"#{run_number(second)}" in shown(m)
                                  for m in _owner_mentions(w)), what="an alert mentioning the owners")


def _owner_mentions(w: World) -> list[Message]:
    """Messages anywhere that mention an owner of orders (U0BOB) or a user group."""
    return [m for channel in list(w.slack.channels) for m in w.slack.messages(channel, top_level=False)
            if "<@U0BOB>" in shown(m) or "<!subteam^" in shown(m)]


async def test_watch_unwatch_and_schedules_always_answer(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for text in ("watch leads-ods", "watch leads-ods #data-alerts", "unwatch leads-ods", "schedules", "schedule"):
            reply = await ask(w, text)  # fails on silence, a crash reply or a stack trace
            assert reply.text.strip() and reply.blocks, text
        # what they answer is shown to the person alone, never in the channel
        assert not w.slack.messages("C0GENERAL")


async def test_an_ad_hoc_target_where_a_pipeline_is_expected_is_named_in_plain_words(tmp_path: Path) -> None:
    """``/pipeline last rivery:123`` answered "There is no pipeline AdHocTarget(...)": a repr in a person's reply."""
    async with world(tmp_path) as w:
        for text in ("last rivery:123", "stats rivery:123", "mute rivery:123 1h", "unmute rivery:123",
                     "watch rivery:123", "unwatch rivery:123", "disable rivery:123"):
            reply = await ask(w, text, user="U0CAROL")  # an admin: ad-hoc targets pass the permission check
            seen = shown(reply)
            assert "AdHocTarget" not in seen and "provider_or_connection" not in seen, (text, reply.text)
            assert "rivery:123" in seen or "Ad-hoc targets" in seen, (text, reply.text)  # named as typed
            # and said for what it is, the same for everyone: not "There is no pipeline rivery:123" (the grammar
            # took a job outside the catalog where only a pipeline of it can be meant)
            assert "is a job outside the catalog: only `/pipeline run` takes one" in seen, (text, reply.text)
            assert (await ask(w, text)).text == reply.text, text  # a person who is no admin hears the same
