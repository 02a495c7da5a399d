"""Twentieth pass: a run whose connection left the catalog (nineteenth pass). `/pipeline cancel` of it answered
"There is no connection named invision in the catalog any more." and nothing of what would work (the run can be
stopped only in the provider's console, or followed again once the connection is back); then the connection put
back: tracking resumes and the card heals (held)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.scenario.harness import world
from tests.scenario.surface import ask


def _gone(raw: dict[str, Any]) -> None:
    del raw["connections"]["invision"]
    del raw["pipelines"]["budget"]


async def test_the_connection_put_back_tracking_resumes_and_the_card_heals(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run budget")
        await w.card_saying("budget is queued")
        await w.restart(_gone)
        for _ in range(10):
            w.advance(30)
            await w.settle(0.2)
        await w.card_saying("is no longer in the bot's catalog")
        answer = await ask(w, "cancel 1")  # the card has no Cancel; the command says why and what works
        assert "its connection invision is no longer in the bot's catalog" in answer.text, answer.text
        assert "provider's console" in answer.text and "put the connection back" in answer.text, answer.text
        await w.restart(lambda raw: None)
        for _ in range(12):
            w.advance(30)
            await w.settle(0.2)
        card = await w.card_saying("budget succeeded", timeout=15)
        assert "no longer in the bot's catalog" not in str(card.blocks)
