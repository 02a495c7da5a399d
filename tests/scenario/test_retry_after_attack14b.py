"""Fourteenth independent pass (b): a provider's ``Retry-After`` that is no number of seconds.

``parse_retry_after`` took whatever ``float()`` takes: ``nan``, ``inf``, ``1e+20``. A person's start refused busy
(503, 429) then waited ``timedelta(seconds=nan)`` (``ValueError``) or ``1e20`` (``OverflowError``): ``/pipeline run``
answered "something went wrong" with an ERROR traceback, and the run waited for nothing. Now such a header counts as
no header (the bot's own wait), and a number is taken only as the digits RFC 9110 writes it with."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.emulators._core import Fault, Outcome
from tests.scenario.harness import FLOW, world
from tests.scenario.surface import shown

OK = Outcome(queued_s=0, running_s=1)


@pytest.mark.parametrize("retry_after", [float("nan"), float("inf"), 1e20], ids=["nan", "inf", "1e20"])
async def test_a_busy_start_whose_retry_after_is_no_number_waits_its_turn(
    tmp_path: Path, retry_after: float, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with world(tmp_path) as w:
        invision = w.emulators["invision"].state
        invision.script(FLOW, [OK])
        invision.add_fault(Fault(route="trigger", status=503, retry_after=retry_after, times=1))
        answer = await w.command("run budget")
        assert answer.ok
        card = await w.card_saying("waiting for")  # the wait of a start refused busy, as with a real Retry-After
        assert "starts at" in shown(card), card.text
        replies = [shown(e) for e in w.slack.ephemerals("C0GENERAL", "U0ALICE")]
        assert not [r for r in replies if "went wrong" in r], replies
        await w.settle(1.0)
        # waiting the bot's own minute (on the real clock, as any busy wait), not given up, nothing raised
        assert len(invision.requests_to("trigger")) == 1
        assert [c.text for c in w.cards()] == [card.text]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
