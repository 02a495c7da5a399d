"""Twenty-first pass (a): the Retry a run canceled at the provider offers on its card (twentieth pass)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.emulators._core import Fault, Outcome
from bot.slack.blocks import ids
from bot.store import keys
from tests.scenario.harness import DK_JOB as DK_KEY
from tests.scenario.harness import RIVER, RIVERY_UNLIMITED, World, unlimited_rivery, world
from tests.scenario.surface import answered_in_place, ask, reply_to, run_number, shown
from tests.scenario.test_canceled_waiting_fix27 import _dk_retried_later


def _rivery_unlimited(raw: dict[str, Any]) -> None:
    raw["connections"]["rivery"].update(RIVERY_UNLIMITED)


async def test_retry_of_an_order_canceled_at_datakitchen_that_waits_its_turn_starts_a_new_order(
    tmp_path: Path,
) -> None:
    """A DataKitchen run with a retry policy (resume by default), canceled while it ran (its order run stopped), then
    Retry on its card, DataKitchen too busy for the trigger at the click (503): the retry waits its turn and
    ``WaitingStarts`` sends it. It took the canceled run for an attempt to resume: DataKitchen resumes only failed
    order runs, so the retry ended "did not start"."""
    async with world(tmp_path, catalog_edit=_dk_retried_later) as w:
        dk = w.emulators["datakitchen"]
        dk.state.script(DK_KEY, Outcome(result="succeed", queued_s=1, running_s=60, tasks=("extract", "transform")))
        assert (await w.command("run sales-dashboard source_date=2026-11-03")).ok
        card = await w.card_saying("sales-dashboard is queued")
        w.advance(2)
        await w.card_saying("sales-dashboard is running", timeout=15)
        question = await ask(w, f"cancel {run_number(card)}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        await w.card_saying("sales-dashboard was canceled", timeout=15)
        store = w.runtime.parts.store
        [canceled] = await store.runs.recent("sales-dashboard", 5)
        assert canceled.provider_run_id is not None

        dk.state.add_fault(Fault(route="trigger", status=503, retry_after=1, times=1))  # too busy, once
        await w.slack.click("C0GENERAL", card.ts, ids.RUN_RETRY, user="U0ALICE")
        await w.until(lambda: len(dk.state.requests_to("trigger")) + len(dk.state.requests_to("resume")) >= 3,
                      timeout=20, what="the retry sent again once its wait was over")
        await w.settle(0.5)
        assert not dk.state.requests_to("resume"), "the canceled order run resumed"
        [again] = [r for r in await store.runs.recent("sales-dashboard", 5) if r.id != canceled.id]
        assert again.retry_of == canceled.id
        assert again.provider_run_id is not None and again.provider_run_id != canceled.provider_run_id, again
        assert "did not start" not in json.dumps([shown(c) for c in w.cards()])


async def test_the_failures_alert_refusal_names_the_retry_of_its_canceled_retry(tmp_path: Path) -> None:
    """A failure, its retry canceled at Rivery, that retry retried from its card (twentieth pass): Retry on the
    failure's alert said "That run #2 was canceled: Retry on its card runs it again", but that card offers no Retry
    any more ("retried as #3"), whose Retry is refused in turn: a dead end naming the wrong card."""
    async with world(tmp_path, catalog_edit=_rivery_unlimited) as w:
        unlimited_rivery(w.emulators)  # three runs of one river in a minute
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(6)
        await w.card_saying("orders is running")
        w.advance(31)
        failed = await w.card_saying("orders failed", timeout=15)
        await w.slack.click("C0GENERAL", failed.ts, ids.RUN_RETRY, user="U0BOB")
        store = w.runtime.parts.store
        await w.until(lambda: any("Retrying as #" in e.text for e in w.slack.ephemerals("C0GENERAL", "U0BOB")),
                      what="Retry's answer")
        _, retry = sorted(await store.runs.recent("orders", 5), key=lambda r: r.id)
        await w.card_saying(f"orders is queued (run #{retry.id})")
        w.advance(6)
        await w.card_saying("orders is running", timeout=15)
        question = await ask(w, f"cancel {retry.id}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        canceled = await w.card_saying("orders was canceled", timeout=15)
        await w.slack.click("C0GENERAL", canceled.ts, ids.RUN_RETRY, user="U0ALICE")
        await w.until(lambda: any("Retrying as #" in e.text for e in w.slack.ephemerals("C0GENERAL", "U0ALICE")),
                      what="the canceled retry's Retry answered")
        third = max((await store.runs.recent("orders", 5)), key=lambda r: r.id)
        assert third.retry_of == retry.id
        await w.until(lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), what="the failure's alert")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_RETRY, user="U0BOB")
        await w.until(lambda: bool(w.slack.ephemerals("C0ALERTS", "U0BOB")), what="the alert's Retry answered")
        [refusal] = w.slack.ephemerals("C0ALERTS", "U0BOB")
        assert "Retry on its card runs it again" not in refusal.text, refusal.text
        assert f"run again by <@U0ALICE> as run #{third.id}" in refusal.text, refusal.text

        await w.card_saying(f"orders is queued (run #{third.id})")  # canceled too: its card is where Retry works
        w.advance(6)
        await w.until(lambda: any(f"run #{third.id}" in m.text and "running" in m.text for m in w.cards()),
                      what="the third run at Rivery")
        question = await ask(w, f"cancel {third.id}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        await w.until(lambda: any(f"run #{third.id}" in m.text and "canceled" in m.text for m in w.cards()),
                      timeout=15, what="the third run canceled")
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_RETRY, user="U0BOB")
        await w.until(lambda: len(w.slack.ephemerals("C0ALERTS", "U0BOB")) == 2, what="the alert's Retry answered")
        again = w.slack.ephemerals("C0ALERTS", "U0BOB")[1]
        assert again.text.endswith(f"as run #{third.id}, canceled too: Retry on its card runs it again."), again.text


QUICK = Outcome(queued_s=1, running_s=3)


async def _retry_told(w: World, card_ts: str) -> int:
    """Retry on the card ``card_ts`` by an owner, the retry run to its success; the retry's number once its end was
    handled whole (the note of its success, if any, written before)."""
    store = w.runtime.parts.store
    await w.slack.click("C0GENERAL", card_ts, ids.RUN_RETRY, user="U0BOB")
    await w.card_saying("(run #2)")
    for _ in range(40):
        second = await store.runs.get(2)
        if second is not None and second.final and second.notified_state == second.state:
            assert second.state == "succeeded", second
            return second.id
        w.advance(1)
        await w.settle(0.2)
    raise AssertionError("the retry did not succeed")


async def test_the_retry_of_a_canceled_run_does_not_say_it_succeeded_after_unalerted_failures(tmp_path: Path) -> None:
    """Retry of a run a person canceled at Rivery (nothing failed), succeeding: its thread said "Succeeded on attempt
    2: no alert was sent", the note of a policy's retry whose failure was held."""
    async with world(tmp_path) as w:
        w.emulators["rivery"].state.script(RIVER, [Outcome(queued_s=1, running_s=60), QUICK])
        await w.command("run leads-ods")
        card = await w.card_saying("leads-ods is queued")
        w.advance(2)
        await w.card_saying("leads-ods is running", timeout=15)
        question = await ask(w, f"cancel {run_number(card)}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        await w.card_saying("leads-ods was canceled", timeout=15)
        second = await _retry_told(w, card.ts)
        assert await w.runtime.parts.store.outbox.written_at(keys.run_reply(second, "recovered")) is None


async def test_a_persons_retry_of_an_alerted_failure_does_not_say_no_alert_was_sent(tmp_path: Path) -> None:
    """A failure alerted (no retry policy), Retry by an owner succeeding: its thread said "no alert was sent" while
    #data-alerts showed the failure's alert, now "since recovered"."""
    async with world(tmp_path) as w:
        w.emulators["rivery"].state.script(RIVER, [Outcome(result="fail", queued_s=1, running_s=2, message="x"), QUICK])
        await w.command("run leads-ods")
        card = await w.card_saying("leads-ods is queued")
        w.advance(4)
        await w.card_saying("leads-ods failed", timeout=15)
        await w.until(lambda: any("leads-ods" in m.text for m in w.slack.messages("C0ALERTS")), what="the alert")
        second = await _retry_told(w, card.ts)
        assert await w.runtime.parts.store.outbox.written_at(keys.run_reply(second, "recovered")) is None
        await w.until(lambda: any("since recovered" in m.text for m in w.slack.messages("C0ALERTS")),
                      what="the alert recovered")


def _pipeline_gone(raw: dict[str, Any]) -> None:
    del raw["pipelines"]["leads-ods"]


async def test_retry_of_a_canceled_run_whose_pipeline_left_the_catalog_says_what_works(tmp_path: Path) -> None:
    """A run canceled at Rivery, then the bot restarted on a catalog without its pipeline: Retry on its card said
    "*leads-ods* is no longer in the catalog." and nothing of what works."""
    async with world(tmp_path) as w:
        await w.command("run leads-ods load_date=2026-11-03")
        card = await w.card_saying("leads-ods is queued")
        w.advance(6)
        await w.card_saying("leads-ods is running", timeout=15)
        question = await ask(w, f"cancel {run_number(card)}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        await w.card_saying("leads-ods was canceled", timeout=15)
        await w.restart(_pipeline_gone)
        _, refusal = await reply_to(w, w.slack.click("C0GENERAL", card.ts, ids.RUN_RETRY, user="U0BOB"), user="U0BOB")
        assert "is no longer in the bot's catalog" in refusal.text, refusal.text
        assert "put it back in pipelines.yml" in refusal.text and "provider's console" in refusal.text, refusal.text
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == 1


async def test_retry_of_an_admins_canceled_adhoc_run_refused_in_plain_words(tmp_path: Path) -> None:
    """An admin's `run rivery:<id>` canceled at Rivery: its card offers Retry, an admin's alone (no pipeline, no
    owners). Anyone else read "that takes being or an admin (…). Ask one of them, or ask an admin to change the
    pipeline's `owners` / `allow_*` in the catalog": no pipeline to change."""
    async with world(tmp_path) as w:
        w.emulators["rivery"].state.script(RIVER, [Outcome(queued_s=1, running_s=60), QUICK])
        await w.command(f"run rivery:{RIVER}", user="U0CAROL")
        card = await w.card_saying("is queued")
        w.advance(2)
        await w.card_saying("is running", timeout=15)
        question = await ask(w, f"cancel {run_number(card)}", user="U0CAROL")
        await answered_in_place(
            w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts, user="U0CAROL"), question)
        await w.card_saying("was canceled", timeout=15)
        _, refusal = await reply_to(w, w.slack.click("C0GENERAL", card.ts, ids.RUN_RETRY, user="U0BOB"), user="U0BOB")
        assert refusal.text.startswith(f"⚠️ You may not retry *rivery:{RIVER}*: that takes being an admin (<@U0CAROL>)."), \
            refusal.text
        assert "pipeline's" not in refusal.text, refusal.text
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == 1
        await w.slack.click("C0GENERAL", card.ts, ids.RUN_RETRY, user="U0CAROL")  # an admin's
        await w.until(lambda: len(w.emulators["rivery"].state.requests_to("trigger")) == 2, what="the admin's retry")


def _orders_retried(raw: dict[str, Any]) -> None:
    _rivery_unlimited(raw)
    raw["pipelines"]["orders"]["retry"] = {"attempts": 2, "backoff": "1s"}


async def test_retry_of_a_policy_retry_canceled_at_the_provider_is_told_on_the_failures_alert(tmp_path: Path) -> None:
    """A failure held for its policy's retry, that retry canceled at Rivery (the failure alerted then), and Retry on
    the canceled retry's card: the failure's alert never said who retried it as which run (its timeline went from
    "failed (#1)" to "failed again (#3)"): the retry's event looked past retries canceled before they started only,
    and the policy's retry, made before the alert existed, was told on none."""
    async with world(tmp_path, catalog_edit=_orders_retried) as w:
        unlimited_rivery(w.emulators)
        await w.command("run orders")
        await w.card_saying("orders is queued")
        for _ in range(60):
            if any("(run #2)" in c.text and "running" in c.text for c in w.cards()):
                break
            w.advance(1)
            await w.settle(0.1)
        policys = await w.card_saying("orders is running (run #2)")
        question = await ask(w, "cancel 2")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        await w.card_saying("orders was canceled", timeout=15)
        await w.until(lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), what="the failure's alert")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
        await w.slack.click("C0GENERAL", policys.ts, ids.RUN_RETRY, user="U0ALICE")
        await w.card_saying("(run #3)")
        await w.until(lambda: "retried by <@U0ALICE> as" in shown(w.slack.message("C0ALERTS", alert.ts)),
                      what="the alert telling the retry")
