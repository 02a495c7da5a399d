"""Fifteenth independent pass (a) of issue 11: the cancel hold, attacked through the real bot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.catalog.load import parse_catalog
from bot.emulators._core import Fault, Outcome
from bot.emulators.slack.server import Message
from bot.runtime import Runtime
from bot.service.permissions import Actor
from bot.service.rights import Right
from bot.slack.blocks import ids
from bot.store.records import RunRecord
from tests.scenario.harness import DK_JOB, ENV, World, catalog_text, world
from tests.scenario.surface import ask, run_number, shown


def _retrying(raw: dict[str, Any]) -> None:
    raw["pipelines"]["orders"]["retry"] = {"attempts": 2, "backoff": "1s"}


def _owner_mentions(w: World) -> list[Message]:
    return [m for channel in list(w.slack.channels) for m in w.slack.messages(channel, top_level=False)
            if "<@U0BOB>" in shown(m)] + [m for m in w.slack.messages("C0ALERTS") if "<@U0BOB>" in shown(m)]


async def test_a_cancel_asked_of_an_attempt_that_failed_meanwhile_leaves_its_held_failure_announced(
    tmp_path: Path,
) -> None:
    """``orders`` (retry policy: 2 attempts) runs; its card says running; someone confirms Cancel. Before the
    request is recorded (the click's permission check), a poll records the attempt's failure: the policy schedules
    attempt 2 and holds the failure's alert for it. The cancel then reaches Rivery, whose answer is lost (the
    connection reset, then "not running any more"): the request stayed on the failed attempt. Attempt 2 is then
    canceled (the person wanted the run stopped): no attempt follows, and the failure held for it must be announced
    with its owners."""
    async with world(tmp_path, catalog_edit=_retrying) as w:
        rivery = w.emulators["rivery"]
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(6)
        card = await w.card_saying("orders is running")
        first = run_number(card)
        question = await ask(w, f"cancel {first}")

        runs = w.runtime.services.runs
        checked = runs.cancels.may_cancel  # the check the cancel itself makes (``RunCancels``)

        async def slow_check(actor: Actor, run: RunRecord) -> Right:  # the failure is recorded meanwhile
            right = await checked(actor, run)
            if run.id == first:
                w.clock.advance(31)  # the run fails at Rivery (30 s running); a poll records it
                for _ in range(200):
                    again = await w.runtime.store.runs.get(first)
                    if again is not None and again.final:
                        break
                    await w.settle(0.05)
            return right

        runs.cancels.may_cancel = slow_check  # type: ignore[method-assign]
        # the cancel's answer lost (the connection reset as it is answered: "not running any more")
        rivery.state.add_fault(Fault(route="cancel", kind="reset", times=1))
        asked = len(rivery.state.requests_to("cancel"))
        replies = len(w.slack.ephemerals("C0GENERAL", "U0ALICE"))
        await w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts)
        await w.until(lambda: len(w.slack.ephemerals("C0GENERAL", "U0ALICE")) > replies, timeout=5.0,
                      what="the click answered")
        await w.settle(1.0)
        assert "has already ended (failed)" in w.slack.ephemerals("C0GENERAL", "U0ALICE")[replies].text
        assert len(rivery.state.requests_to("cancel")) == asked, "a cancel was asked of an ended run"
        failed = await w.runtime.store.runs.get(first)
        assert failed is not None and failed.final and failed.state == "failed"
        assert failed.cancel_requested_by is None, "a cancel request was left on the failed attempt"
        retry = await w.runtime.store.runs.retry_of(first)
        assert retry is not None, "the policy scheduled no retry"
        assert not _owner_mentions(w), "announced before the retry ended"
        w.advance(2)
        await w.settle(1.0)
        w.advance(6)  # attempt 2 runs
        await w.settle(0.5)
        runs.cancels.may_cancel = checked  # type: ignore[method-assign]
        second = await ask(w, f"cancel {retry.id}")
        await w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=second.ts)
        await w.until(lambda: bool(_owner_mentions(w)), timeout=5.0,
                      what="attempt 1's failure, held for its retry, announced with its owners")
        ended = await w.runtime.store.runs.get(retry.id)
        assert ended is not None and ended.state == "canceled"
        alerts = await w.runtime.store.alerting.open_alerts()
        assert [a.runs for a in alerts] == [(first,)]


async def test_a_datakitchen_run_failing_after_a_stop_whose_answer_was_lost_is_announced_with_its_owners(
    tmp_path: Path,
) -> None:
    """DataKitchen shows a stopped order run as ``STOPPED_SERVING`` (canceled), never as failed. A stop whose answer
    is lost (502 at every attempt: DataKitchen never stopped the run) leaves the request unconfirmed for 10 minutes;
    the run then fails on its own (a node fails). That failure is the run's own, whatever was asked: it must be
    announced with its owners, not recorded "canceled at <@U0ALICE>'s request"."""
    async with world(tmp_path) as w:
        dk = w.emulators["datakitchen"]
        dk.state.script(DK_JOB, Outcome(result="fail", queued_s=5, running_s=30, message="Node load failed",
                                        failed_tasks=("load",)))
        await w.command("run sales-dashboard")
        await w.card_saying("sales-dashboard is queued")
        w.advance(6)
        card = await w.card_saying("sales-dashboard is running")
        question = await ask(w, f"cancel {run_number(card)}")
        dk.state.add_fault(Fault(route="stop", kind="status", status=502, times=None))
        replies = len(w.slack.ephemerals("C0GENERAL", "U0ALICE"))
        await w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts)
        await w.until(lambda: len(w.slack.ephemerals("C0GENERAL", "U0ALICE")) > replies, timeout=10.0,
                      what="the click answered")
        assert "Could not confirm the cancel" in w.slack.ephemerals("C0GENERAL", "U0ALICE")[replies].text
        w.advance(31)  # the stop never reached DataKitchen: the run fails on its own
        ended = await w.card_saying("sales-dashboard", timeout=10)
        await w.until(lambda: "is running" not in w.cards()[0].text, timeout=10, what="the run's end on its card")
        ended = w.cards()[0]
        assert ended.ts == card.ts
        assert "failed" in ended.text and "canceled" not in ended.text, ended.text
        await w.until(lambda: any("<!subteam^S0DATAENG>" in shown(m) for m in w.slack.messages("C0ALERTS")),
                      timeout=10, what="the failure announced with its owners")


async def test_a_failure_held_for_a_retry_is_announced_when_the_policy_was_removed_meanwhile(tmp_path: Path) -> None:
    """``orders`` fails (policy: 2 attempts): its alert is held for attempt 2. The operator removes the retry policy
    and restarts the bot while attempt 2 waits; attempt 2 runs and is canceled. No attempt follows: attempt 1's
    failure, never announced, must be now, with its owners. Before, ``held_failure`` asked today's catalog whether
    the policy retried it (no policy: "alerted when it failed") and nobody was ever told."""
    async with world(tmp_path, catalog_edit=_retrying) as w:
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(6)
        card = await w.card_saying("orders is running")
        first = run_number(card)
        w.advance(31)
        await w.card_saying("orders failed")
        await w.settle(1.0)
        retry = await w.runtime.store.runs.retry_of(first)
        assert retry is not None and not _owner_mentions(w)
        await w.runtime.stop()  # the operator removes the policy and restarts
        w.runtime = Runtime(w.settings, parse_catalog(yaml.safe_load(catalog_text(w.emulators)), ENV))
        await w.runtime.start()
        assert w.runtime.http is not None
        w.slack.app_url = f"{w.runtime.http.url}/slack/events"
        await w.settle(2.0)  # the retry's backoff (1 s) ends: attempt 2 starts
        w.advance(6)
        await w.settle(1.0)
        question = await ask(w, f"cancel {retry.id}")
        await w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts)
        await w.until(lambda: bool(_owner_mentions(w)), timeout=10.0,
                      what="attempt 1's failure, held for a retry no policy gives any more, announced")
        ended = await w.runtime.store.runs.get(retry.id)
        assert ended is not None and ended.state == "canceled"
        alerts = await w.runtime.store.alerting.open_alerts()
        assert [a.runs for a in alerts] == [(first,)]


async def test_a_failure_announced_then_retried_by_a_person_is_not_announced_again_when_its_retry_is_canceled(
    tmp_path: Path,
) -> None:
    """The other side of the rule above: ``orders`` has no policy; it fails and is announced; a person retries it and
    cancels the retry. The failure was told when it happened (an alert counts it): nothing is announced twice."""
    async with world(tmp_path) as w:
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(6)
        card = await w.card_saying("orders is running")
        first = run_number(card)
        w.advance(31)
        await w.card_saying("orders failed")
        await w.until(lambda: bool(_owner_mentions(w)), timeout=10.0, what="the failure announced")
        await w.settle(1.0)
        told = [m.ts for m in w.slack.messages("C0ALERTS")]
        retry = await w.runtime.services.runs.retry(Actor("U0BOB", "C0GENERAL"), first, channel="C0GENERAL")
        w.advance(6)
        await w.settle(1.0)
        question = await ask(w, f"cancel {retry.id}", user="U0BOB")
        await w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts, user="U0BOB")
        await w.until(lambda: "canceled" in w.cards()[-1].text, timeout=10.0, what="the retry canceled")
        await w.settle(1.5)
        assert [m.ts for m in w.slack.messages("C0ALERTS")] == told, "a failure already announced was announced again"
        alerts = await w.runtime.store.alerting.open_alerts()
        assert [(a.runs, a.count) for a in alerts] == [((first,), 1)]
