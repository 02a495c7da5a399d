"""Twentieth pass: a run canceled once it reached the provider (a person stopped it, or stopped a retry) offered
no Retry anywhere: its card had none (it "did not fail"), and a failure whose retry it was said "retried as #n"
without Retry, so the only way to run it again was `/pipeline run` from scratch, its parameters typed again. The
canceled run's card offers Retry: same job and parameters, the rights checked at the click as for any Retry, one
retry per run as the database keeps it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.slack.blocks import ids
from tests.scenario.harness import world
from tests.scenario.surface import add_stranger, answered_in_place, ask, reply_to, run_number


def _run_by_alice(raw: dict[str, Any]) -> None:
    raw["pipelines"]["leads-ods"]["allow_run"] = ["U0ALICE"]  # not anyone: a stranger's click is refused


async def test_a_run_canceled_at_the_provider_is_retried_from_its_card(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_run_by_alice) as w:
        rivery = w.emulators["rivery"]
        await w.command("run leads-ods load_date=2026-11-03")
        await w.card_saying("leads-ods is queued")
        w.advance(6)
        card = await w.card_saying("leads-ods is running")
        question = await ask(w, f"cancel {run_number(card)}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        ended = await w.card_saying("leads-ods was canceled", timeout=15)
        assert ended.ts == card.ts
        store = w.runtime.parts.store
        [canceled] = await store.runs.recent("leads-ods", 5)
        assert canceled.provider_run_id is not None
        assert ids.RUN_RETRY in json.dumps(ended.blocks), "a canceled run's card offers no Retry"

        dave = add_stranger(w)  # the rights are asked at the click, as for any Retry
        _, refusal = await reply_to(w, w.slack.click("C0GENERAL", card.ts, ids.RUN_RETRY, user=dave), user=dave)
        assert refusal.text.startswith("⚠️ You may not retry *leads-ods*"), refusal.text
        assert len(rivery.state.requests_to("trigger")) == 1

        await w.slack.click("C0GENERAL", card.ts, ids.RUN_RETRY, user="U0BOB")  # an owner
        await w.until(lambda: any("Retrying as #" in e.text for e in w.slack.ephemerals("C0GENERAL", "U0BOB")),
                      what="Retry's answer")
        [again] = [r for r in await store.runs.recent("leads-ods", 5) if r.id != canceled.id]
        assert again.retry_of == canceled.id
        assert again.parameters == canceled.parameters
        await w.until(lambda: len(rivery.state.requests_to("trigger")) == 2, what="the retry's trigger")
        await w.until(lambda: f"#{again.id}" in json.dumps(w.slack.message("C0GENERAL", card.ts).blocks),
                      what="the canceled card saying its retry")
        assert ids.RUN_RETRY not in json.dumps(w.slack.message("C0GENERAL", card.ts).blocks)  # one retry per run



async def test_a_failures_retry_canceled_at_the_provider_is_retried_from_the_retrys_card(tmp_path: Path) -> None:
    """The nineteenth pass's case: the failure's card says "retried as #2" with no Retry (the retry reached the
    provider, then was canceled): the canceled retry's card is where the failure is run again."""
    async with world(tmp_path) as w:
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(6)
        await w.card_saying("orders is running")
        w.clock.advance(31)
        failed = await w.card_saying("orders failed", timeout=15)
        await w.slack.click("C0GENERAL", failed.ts, ids.RUN_RETRY, user="U0BOB")
        await w.until(lambda: any("Retrying as #" in e.text for e in w.slack.ephemerals("C0GENERAL", "U0BOB")),
                      what="Retry's answer")
        store = w.runtime.parts.store
        first, retry = sorted(await store.runs.recent("orders", 5), key=lambda r: r.id)
        await w.card_saying(f"orders is queued (run #{retry.id})")  # triggered: its first poll is 5 s on
        w.advance(6)
        await w.card_saying("orders is running", timeout=15)  # the retry, at Rivery
        question = await ask(w, f"cancel {retry.id}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        canceled = await w.card_saying("orders was canceled", timeout=15)
        assert ids.RUN_RETRY not in json.dumps(w.slack.message("C0GENERAL", failed.ts).blocks)  # "retried as #2"
        await w.slack.click("C0GENERAL", canceled.ts, ids.RUN_RETRY, user="U0BOB")
        await w.until(lambda: len(w.slack.ephemerals("C0GENERAL", "U0BOB")) >= 2, what="the second Retry's answer")
        runs = sorted(await store.runs.recent("orders", 5), key=lambda r: r.id)
        assert [r.retry_of for r in runs] == [None, first.id, retry.id]
        await w.card_saying(f"(run #{runs[2].id})")
        # the failure's alert (posted once its retry was canceled) still offers Retry, refused: it says what works
        await w.until(lambda: any("orders" in m.text for m in w.slack.messages("C0ALERTS")), what="the failure's alert")
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_RETRY, user="U0BOB")
        await w.until(lambda: bool(w.slack.ephemerals("C0ALERTS", "U0BOB")), what="the alert's Retry answered")
        [refusal] = w.slack.ephemerals("C0ALERTS", "U0BOB")
        assert refusal.text.startswith(f"⚠️ Run #{first.id} was already retried by <@U0BOB> as run #{retry.id}"), \
            refusal.text
        # before: nothing; then "Retry on its card runs it again", that card retried already (twenty-first pass (a))
        assert f"run #{retry.id} was canceled, and run again by <@U0BOB> as run #{runs[2].id}: see its card" in \
            refusal.text, refusal.text

