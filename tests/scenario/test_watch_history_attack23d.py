"""Twenty-third pass (d): a run at a renamed connection whose pipeline is watched only from now on (the deploy that
turned its watch on, or ``/pipeline watch on``), the run ended at its provider before watching began. The first
list takes such an ended run for history, and the watch looked it up under the connection's old name
(``RunReads.find_moved``) only for news: the bot's own row was never ended. Stop following was refused ("the bot
follows it through the watch …, so its end will be told as any") for a day, the card said running, the failure was
told to nobody."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from tests.scenario.harness import world
from tests.scenario.surface import ask
from tests.scenario.test_stop_following_attack23c import _tailer_renamed

FAST_FAIL = Outcome(result="fail", queued_s=0, running_s=1, message="failed")


def _unwatched(raw: dict[str, Any]) -> None:
    raw["pipelines"]["iowa-pda"]["watch"] = False


def _renamed_unwatched(raw: dict[str, Any]) -> None:
    _tailer_renamed(raw)
    _unwatched(raw)


async def test_a_run_ended_before_its_pipelines_watch_began_is_ended_from_the_first_list(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_unwatched) as w:
        w.tailer.state.default = FAST_FAIL
        assert (await w.command("run iowa-pda execution_date=2026-11-03")).ok
        await w.card_saying("iowa-pda is")
        await w.restart(_renamed_unwatched)  # the connection renamed: nothing follows run #1
        w.advance(2)  # it fails at Tailer, unseen
        await w.settle(2)  # the bot's clock is real: watching begins after the failure
        run = await w.runtime.store.runs.get(1)
        assert run is not None and not run.final, run
        await w.restart(_tailer_renamed)  # its watch on: it begins now
        for _ in range(6):
            w.advance(5)
            await w.settle(0.3)
        answer = await ask(w, "cancel 1")
        assert "follows it through the watch" not in answer.text, answer.text
        run = await w.runtime.store.runs.get(1)
        assert run is not None and run.state == "failed", run  # before: running, for ever
