"""A cancel clicked while a poll of its run waits for Rivery's answer (twelfth independent pass). The poll read the
run before the click; Rivery's legacy API answers ``F`` for the canceled run. The card must end canceled and
nobody be paged: before the fix the poll recorded a failure from its stale copy of the run (the owners mentioned, an
alert for a run a person stopped on purpose)."""

from __future__ import annotations

from pathlib import Path

from bot.emulators._core import Fault
from bot.emulators.slack.server import Message
from bot.slack.blocks import ids
from tests.scenario.harness import World, world
from tests.scenario.surface import answered_in_place, ask, run_number, shown


def _owner_mentions(w: World) -> list[Message]:
    return [m for channel in list(w.slack.channels) for m in w.slack.messages(channel, top_level=False)
            if "<@U0BOB>" in shown(m) or "<!subteam^" in shown(m)]


async def test_a_cancel_clicked_while_a_poll_waits_for_rivery_ends_canceled_without_paging(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        rivery = w.emulators["rivery"]
        await w.command("run leads-ods")
        await w.card_saying("leads-ods is queued")
        w.advance(6)
        card = await w.card_saying("leads-ods is running")
        question = await ask(w, f"cancel {run_number(card)}")  # the prompt first: the poll is held only for the click

        asked = len(rivery.state.requests_to("status"))
        rivery.state.add_fault(Fault(route="status", kind="delay", delay=3, times=1))
        w.advance(1)  # the run falls due: a poll reads it (nobody asked to cancel yet) and waits for Rivery
        await w.until(lambda: len(rivery.state.requests_to("status")) > asked, what="a poll waiting for Rivery")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)

        ended = await w.card_saying("leads-ods was canceled", timeout=15)  # the held poll answers "F" after 3 s
        assert ended.ts == card.ts
        assert "failed" not in ended.text
        await w.settle(1.0)
        assert not _owner_mentions(w), "a cancel asked for was announced as a failure"


async def test_a_run_that_failed_before_a_cancel_rivery_refuses_is_announced_with_its_owners(tmp_path: Path) -> None:
    """The run fails at Rivery; the person, looking at a card still saying "running", confirms a cancel; Rivery is
    slow to answer it, and a poll reads ``F`` meanwhile; then Rivery refuses the cancel (not running any more).
    Before, the poll recorded the failure as "canceled at @U0ALICE's request" for good: no alert, the owners never
    told of a real failure (issue 11's fourteenth pass (a)). The failure is held while the cancel is asked, and
    announced, with its owners, once the cancel is refused."""
    async with world(tmp_path) as w:
        rivery = w.emulators["rivery"]
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(6)
        card = await w.card_saying("orders is running")
        question = await ask(w, f"cancel {run_number(card)}")
        rivery.state.add_fault(Fault(route="cancel", kind="delay", delay=2, times=1))
        w.clock.advance(31)  # the run fails at Rivery (30 s running); the card still says running
        await w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts)
        ended = await w.card_saying("orders failed", timeout=15)
        assert ended.ts == card.ts and "canceled" not in ended.text
        await w.settle(1.0)
        assert _owner_mentions(w), "a real failure was hidden as the cancel Rivery refused"
        alerts = await w.runtime.store.alerting.open_alerts()
        assert [a.runs for a in alerts] == [(int(run_number(card)),)]
