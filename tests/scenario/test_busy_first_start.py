"""A FIRST start (a person's, a schedule's) that the provider is too busy to take (429 with Retry-After, 503:
nothing started) waits its turn, as retries and starts held by a cap do, instead of ending "did not start": the card
says it waits and until when, and it is sent again when due, at most ``BUSY_WAITS`` times.

Found by the sixth independent pass (its wait covered only the waiting starts), fixed with issue 11's lows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.emulators._core import Fault, Outcome
from bot.service.starting import BUSY_WAITS
from bot.tracking.schedules import scheduled_items
from tests.scenario.harness import FLOW, World, world
from tests.scenario.surface import shown

OK = Outcome(queued_s=0, running_s=1)


async def _until_triggers(w: World, n: int, *, steps: int = 40) -> None:
    invision = w.emulators["invision"].state
    for _ in range(steps):
        if len(invision.requests_to("trigger")) >= n:
            return
        w.advance(1)
        await w.settle(0.3)
    raise AssertionError(f"{len(invision.requests_to('trigger'))} triggers, not {n}")


async def test_a_persons_first_start_refused_busy_waits_its_turn_and_then_starts(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [OK])
        invision.add_fault(Fault(route="trigger", status=429, retry_after=3, times=1))
        assert (await w.command("run budget")).ok
        card = await w.card_saying("waiting for")  # told at once, in the card: it waits, and until when
        assert "starts at" in shown(card), card.text
        replies = [shown(e) for e in w.slack.ephemerals("C0GENERAL", "U0ALICE")]
        assert not [r for r in replies if "did not start" in r], replies
        assert len(invision.requests_to("trigger")) == 1

        await w.settle(1.0)  # not yet: the provider asked for 3 s (the bot's clock is the real one)
        assert len(invision.requests_to("trigger")) == 1
        await _until_triggers(w, 2)
        for _ in range(10):
            if any("budget succeeded" in c.text for c in w.cards()):
                break
            w.advance(1)
            await w.settle(0.3)
        assert any("budget succeeded" in c.text for c in w.cards()), [c.text for c in w.cards()]
        assert len(w.cards()) == 1  # one card, the one that waited


async def test_a_first_start_refused_busy_every_time_ends_after_its_waits(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [OK])
        invision.add_fault(Fault(route="trigger", status=503, retry_after=1, times=20))
        assert (await w.command("run budget")).ok
        await _until_triggers(w, 1 + BUSY_WAITS)
        for _ in range(10):
            w.advance(1)
            await w.settle(0.3)
        assert len(invision.requests_to("trigger")) == 1 + BUSY_WAITS  # bounded: the first, then its waits
        assert any("did not start" in shown(c) for c in w.cards()), [c.text for c in w.cards()]


async def test_a_schedules_start_refused_busy_waits_its_turn_instead_of_alerting_did_not_start(tmp_path: Path) -> None:
    def scheduled(raw: dict[str, Any]) -> None:
        raw["pipelines"]["budget"]["schedule"] = {"cron": "0 6 * * 1-5", "timezone": "Europe/Oslo"}
        raw["pipelines"]["budget"]["channel"] = "C0OPS"

    async with world(tmp_path, catalog_edit=scheduled) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [OK])
        invision.add_fault(Fault(route="trigger", status=503, retry_after=2, times=1))
        [budget] = [i for i in scheduled_items(w.runtime.catalog) if i.name == "budget"]
        fire = budget.next_fire(datetime.now(UTC))
        assert fire is not None
        w.runtime.schedules.now = lambda: fire
        assert await w.runtime.schedules.fire(budget) is True
        card = await w.card_saying("waiting for", channel="C0OPS")
        assert "starts at" in shown(card), card.text
        await _until_triggers(w, 2)
        for _ in range(10):
            if any("budget succeeded" in c.text for c in w.cards("C0OPS")):
                break
            w.advance(1)
            await w.settle(0.3)
        assert any("budget succeeded" in c.text for c in w.cards("C0OPS")), [c.text for c in w.cards("C0OPS")]
        assert not [m for m in w.slack.messages("C0ALERTS") if "did not start" in shown(m)]
