"""A provider that stops answering never turns into a failed run: the card says "status unknown
since …", polling backs off and goes on, and the real outcome shows once the provider answers."""

from __future__ import annotations

import json
from pathlib import Path

from bot.emulators._core import Fault
from tests.scenario.harness import world


async def test_a_provider_outage_shows_unknown_then_the_real_outcome(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run budget")
        card = await w.card_saying("queued")
        invision = w.emulators["invision"]
        invision.state.add_fault(Fault(route="status", status=503, times=None))
        w.advance(6)
        await w.card_saying("status unknown since", timeout=15)
        polls_during_outage = len(invision.state.requests_to("status"))
        await w.settle(1.0)
        assert len(invision.state.requests_to("status")) > polls_during_outage  # it keeps asking
        assert "failed" not in w.slack.message(card.channel, card.ts).text
        assert not w.thread(card)  # no failure details, no alert

        invision.state.clear_faults()
        w.advance(40)
        done = await w.card_saying("succeeded", timeout=15)
        assert done.ts == card.ts
        assert "status unknown" not in json.dumps(w.slack.message(card.channel, card.ts).blocks)
        run = (await w.runtime.store.runs.in_flight()) if w.runtime.store else []
        assert run == []
