"""Stop following, attacked: a run whose status was outside the model when its connection left the catalog (stored
``unknown``, not ended: the provider may still move on from it) was ended by "Stop following" with nothing acted
on: its state stayed the word it was, so the end read as no change, and neither the failure whose retry it was, nor
the thread, nor a workflow's step heard of it (and nothing would replay it after a restart)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bot.emulators import invision as invision_emulator
from bot.emulators._core import Fault, Outcome
from bot.emulators.slack.server import Message
from bot.slack.blocks import ids
from bot.store import keys
from tests.scenario.harness import DK_JOB as DK_KEY
from tests.scenario.harness import FLOW, RIVER, RIVERY_UNLIMITED, World, unlimited_rivery, world
from tests.scenario.surface import answered_in_place, ask, reply_to, shown
from tests.scenario.test_canceled_waiting_fix27 import _dk_retried_later

FAILS = Outcome(result="fail", queued_s=0, running_s=1, message="boom")
HANGS = Outcome(result="hang", queued_s=0, running_s=1)


def _retried(raw: dict[str, Any]) -> None:
    raw["pipelines"]["budget"]["retry"] = {"attempts": 2, "backoff": "1s"}


def _renamed(raw: dict[str, Any]) -> None:
    """A deploy that renamed the InVision connection: ``budget`` stays (its policy, its owners), its runs at the old
    connection cannot be followed any more."""
    _retried(raw)
    raw["connections"]["invision-eu"] = raw["connections"].pop("invision")
    raw["pipelines"]["budget"]["connection"] = "invision-eu"


def _alerts(w: World, words: str) -> list[str]:
    return [json.dumps([m.text, m.blocks]) for m in w.slack.messages("C0ALERTS") if words in m.text]


async def test_stop_following_a_retry_whose_status_was_outside_the_model_announces_the_held_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path, catalog_edit=_retried) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [FAILS, HANGS])
        assert (await w.command("run budget")).ok
        store = w.runtime.parts.store
        retry = None
        for _ in range(40):  # the first attempt fails after a second; its retry, held by the policy, a second later
            runs = await store.runs.recent("budget", 5)
            retry = next((r for r in runs if r.retry_of is not None and r.provider_run_id is not None), None)
            if retry is not None:
                break
            w.advance(1)
            await w.settle(0.3)
        assert retry is not None, "the policy's retry did not start"
        # InVision answers a status the bot does not know for the retry: recorded unknown, followed on
        monkeypatch.setitem(invision_emulator._STATUS, "running", "Reconciling")
        w.advance(2)

        async def odd() -> bool:
            run = await store.runs.get(retry.id)
            return run is not None and run.state == "unknown" and not run.final

        for _ in range(50):
            if await odd():
                break
            await w.settle(0.2)
        assert await odd(), await store.runs.get(retry.id)
        assert not _alerts(w, "budget")  # the failure's alert is held for its retry

        await w.restart(_renamed)
        card = await w.card_saying(f"run #{retry.id}")
        await w.until(lambda: ids.RUN_STOP_FOLLOWING in w.slack.message("C0GENERAL", card.ts).action_ids, 15,
                      what="Stop following on the retry's card")
        # two people at once (who started it, an admin): one ends it, the other is told it ended
        await asyncio.gather(w.slack.click("C0GENERAL", card.ts, ids.RUN_STOP_FOLLOWING, user="U0ALICE"),
                             w.slack.click("C0GENERAL", card.ts, ids.RUN_STOP_FOLLOWING, user="U0CAROL"))
        def answers() -> list[str]:
            return [e.text for u in ("U0ALICE", "U0CAROL") for e in w.slack.ephemerals("C0GENERAL", u)]

        await w.until(lambda: len(answers()) == 2, what="both clicks answered")
        assert sorted("Stopped following" in a for a in answers()) == [False, True], answers()
        assert any("already ended (unknown)" in a for a in answers()), answers()
        ended = await w.card_saying("budget is no longer followed")
        await w.until(lambda: any("stopped following this run" in m.text for m in w.thread(ended)), 10,
                      what="the thread's note")
        await w.until(lambda: bool(_alerts(w, "budget")), 10, what="the held failure's alert")
        assert "S0DATAENG" in " ".join(_alerts(w, "budget")), _alerts(w, "budget")  # with its owners
        await w.settle(1.0)
        assert len(_alerts(w, "budget")) == 1  # announced once
        # Retry on the stopped retry's card: told on the failure's alert, as past a canceled retry
        [alert] = [m for m in w.slack.messages("C0ALERTS") if "budget" in m.text]
        await w.slack.click("C0GENERAL", ended.ts, ids.RUN_RETRY, user="U0ALICE")
        await w.card_saying(f"(run #{retry.id + 1})")
        await w.until(lambda: "retried by <@U0ALICE> as" in shown(w.slack.message("C0ALERTS", alert.ts)), 10,
                      what="the alert telling the retry")
        record = await w.runtime.parts.store.runs.get(retry.id)  # the restarted bot's store
        assert record is not None and record.notified_state == record.state
        assert "is no longer followed" in shown(ended)


def _rivery_unlimited(raw: dict[str, Any]) -> None:
    raw["connections"]["rivery"].update(RIVERY_UNLIMITED)


def _rivery_renamed(raw: dict[str, Any]) -> None:
    """A deploy that renamed the Rivery connection: its pipelines stay, at ``rivery-eu`` (the same account)."""
    _rivery_unlimited(raw)
    raw["connections"]["rivery-eu"] = raw["connections"].pop("rivery")
    for name in ("leads-ods", "orders"):
        raw["pipelines"][name]["connection"] = "rivery-eu"


FAIL = Outcome(result="fail", queued_s=1, running_s=2, message="x")
LONG = Outcome(queued_s=1, running_s=600)
QUICK = Outcome(queued_s=1, running_s=3)


async def _stopped(w: World, run_id: int, user: str = "U0BOB") -> Message:
    """``/pipeline cancel`` on a run whose connection left the catalog, its prompt confirmed: the run's card."""
    question = await ask(w, f"cancel {run_id}", user=user)
    await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts, user=user),
                            question)
    return await w.card_saying(f"is no longer followed (run #{run_id})")


async def _succeeded(w: World, run_id: int) -> None:
    store = w.runtime.parts.store
    for _ in range(40):
        run = await store.runs.get(run_id)
        if run is not None and run.final and run.notified_state == run.state:
            assert run.state == "succeeded", run
            return
        w.advance(1)
        await w.settle(0.2)
    raise AssertionError(f"run #{run_id} did not succeed")


async def test_a_failure_whose_retry_is_no_longer_followed_is_retried_from_that_retrys_card(tmp_path: Path) -> None:
    """A failure alerted, retried by an owner; a deploy renamed the connection and the retry was stopped following.
    The failure's card said "retried as #2" (no Retry), its alert's Retry was refused "already retried as run #2",
    and the stopped run's card had no button: the failure could not be run again from Slack, though its pipeline
    was in the catalog at its new connection."""
    async with world(tmp_path, catalog_edit=_rivery_unlimited) as w:
        unlimited_rivery(w.emulators)
        w.emulators["rivery"].state.script(RIVER, [FAIL, LONG, QUICK])
        await w.command("run leads-ods")
        card = await w.card_saying("leads-ods is queued")
        w.advance(4)
        await w.card_saying("leads-ods failed", timeout=15)
        await w.until(lambda: bool(_alerts(w, "leads-ods")), what="the failure's alert")
        await w.slack.click("C0GENERAL", card.ts, ids.RUN_RETRY, user="U0BOB")
        await w.card_saying("leads-ods is queued (run #2)")
        w.advance(2)
        await w.card_saying("leads-ods is running (run #2)", timeout=15)
        await w.restart(_rivery_renamed)
        stopped = await _stopped(w, 2)

        [alert] = [m for m in w.slack.messages("C0ALERTS") if "leads-ods" in m.text]
        _, refusal = await reply_to(w, w.slack.click("C0ALERTS", alert.ts, ids.RUN_RETRY, user="U0BOB"),
                                    user="U0BOB", channel="C0ALERTS")
        assert "That run #2 is no longer followed" in refusal.text, refusal.text
        assert "Retry on its card runs it again" in refusal.text, refusal.text
        await w.until(lambda: ids.RUN_RETRY in w.slack.message("C0GENERAL", stopped.ts).action_ids,
                      what="Retry on the stopped run's card")
        await w.slack.click("C0GENERAL", stopped.ts, ids.RUN_RETRY, user="U0BOB")
        await w.card_saying("leads-ods is queued (run #3)")
        third = await w.runtime.parts.store.runs.get(3)
        assert third is not None and third.retry_of == 2 and third.connection == "rivery-eu"
        await _succeeded(w, 3)
        await w.until(lambda: any("since recovered" in m.text for m in w.slack.messages("C0ALERTS")),
                      what="the failure's alert recovered")


async def test_the_retry_of_a_run_no_longer_followed_does_not_say_no_alert_was_sent(tmp_path: Path) -> None:
    """Nothing failed: a person ended the first attempt when the bot could not follow it. Its retry's success said
    "Succeeded on attempt 2: no alert was sent", the note of a policy's retry whose failures were held."""
    async with world(tmp_path, catalog_edit=_rivery_unlimited) as w:
        unlimited_rivery(w.emulators)
        w.emulators["rivery"].state.script(RIVER, [LONG, QUICK])
        await w.command("run leads-ods")
        await w.card_saying("leads-ods is queued")
        w.advance(2)
        await w.card_saying("leads-ods is running", timeout=15)
        await w.restart(_rivery_renamed)
        stopped = await _stopped(w, 1, user="U0ALICE")
        await w.until(lambda: ids.RUN_RETRY in w.slack.message("C0GENERAL", stopped.ts).action_ids,
                      what="Retry on the stopped run's card")
        await w.slack.click("C0GENERAL", stopped.ts, ids.RUN_RETRY, user="U0BOB")
        await w.card_saying("leads-ods is queued (run #2)")
        await _succeeded(w, 2)
        assert await w.runtime.parts.store.outbox.written_at(keys.run_reply(2, "recovered")) is None


def _dk_renamed(raw: dict[str, Any]) -> None:
    _dk_retried_later(raw)
    raw["connections"]["datakitchen-eu"] = raw["connections"].pop("datakitchen")
    raw["pipelines"]["sales-dashboard"]["connection"] = "datakitchen-eu"


async def test_retry_of_an_order_no_longer_followed_that_waits_its_turn_starts_a_new_order(tmp_path: Path) -> None:
    """DataKitchen, a retry policy (resume by default): a run no longer followed, Retry on its card, DataKitchen too
    busy at the click (503), so ``WaitingStarts`` sends it: it took the run for a failed attempt to resume, though
    nothing says it failed (it may be running still), and DataKitchen resumes only failed order runs."""
    async with world(tmp_path, catalog_edit=_dk_retried_later) as w:
        dk = w.emulators["datakitchen"]
        dk.state.script(DK_KEY, Outcome(queued_s=1, running_s=600, tasks=("extract", "transform")))
        assert (await w.command("run sales-dashboard source_date=2026-11-03")).ok
        await w.card_saying("sales-dashboard is queued")
        w.advance(2)
        await w.card_saying("sales-dashboard is running", timeout=15)
        await w.restart(_dk_renamed)
        stopped = await _stopped(w, 1, user="U0ALICE")
        await w.until(lambda: ids.RUN_RETRY in w.slack.message("C0GENERAL", stopped.ts).action_ids,
                      what="Retry on the stopped run's card")
        dk.state.add_fault(Fault(route="trigger", status=503, retry_after=1, times=1))  # too busy, once
        await w.slack.click("C0GENERAL", stopped.ts, ids.RUN_RETRY, user="U0ALICE")
        await w.until(lambda: len(dk.state.requests_to("trigger")) + len(dk.state.requests_to("resume")) >= 3,
                      timeout=20, what="the retry sent again once its wait was over")
        await w.settle(0.5)
        assert not dk.state.requests_to("resume"), "the order run no longer followed was resumed"
        again = await w.runtime.parts.store.runs.get(2)
        assert again is not None and again.retry_of == 1 and again.provider_run_id is not None
        assert "did not start" not in json.dumps([shown(c) for c in w.cards()])


async def test_a_cancel_from_before_the_connection_left_says_stop_following_ends_the_run(tmp_path: Path) -> None:
    """The card's Cancel (or a `/pipeline cancel` prompt) shown before a deploy renamed the connection, clicked after:
    the refusal said to see the console or put the connection back, not that Stop following ends it here."""
    async with world(tmp_path, catalog_edit=_rivery_unlimited) as w:
        w.emulators["rivery"].state.script(RIVER, [LONG])
        await w.command("run leads-ods")
        await w.card_saying("leads-ods is queued")
        w.advance(2)
        card = await w.card_saying("leads-ods is running", timeout=15)
        assert ids.RUN_CANCEL in card.action_ids
        prompt = await ask(w, "cancel 1")
        await w.restart(_rivery_renamed)
        _, refused = await reply_to(w, w.slack.click("C0GENERAL", card.ts, ids.RUN_CANCEL, user="U0ALICE"))
        assert "Stop following on its card" in refused.text and "put the connection back" in refused.text, refused.text
        assert "its connection rivery is no longer in the bot's catalog" in refused.text, refused.text
        _, refused = await reply_to(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=prompt.ts))
        assert "Stop following on its card" in refused.text, refused.text
        run = await w.runtime.parts.store.runs.get(1)
        assert run is not None and not run.final
