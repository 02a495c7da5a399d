"""`/pipeline schedules` lists what the catalog schedules, soonest first, and a schedule's slot starts its run
as the bot, with the card in the pipeline's own channel, once per slot however often the trigger fires.
(Firing across processes and restarts: ``test_schedules_replicas.py``.)"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.tracking.schedules import scheduled_items
from tests.scenario.harness import world
from tests.scenario.surface import ask, shown


def schedule_two(raw: dict[str, Any]) -> None:
    raw["pipelines"]["budget"]["schedule"] = {"cron": "0 6 * * 1-5", "timezone": "Europe/Oslo", "missed": "run_once"}
    raw["pipelines"]["leads-ods"]["schedule"] = {"cron": "* * * * *", "missed": "skip"}
    raw["pipelines"]["budget"]["channel"] = "C0OPS"


async def test_schedules_lists_the_next_runs_and_a_slot_starts_one_run_in_the_pipelines_channel(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, catalog_edit=schedule_two) as w:
        reply = await ask(w, "schedules")
        text = shown(reply)
        assert "*Scheduled runs*" in reply.text
        # soonest first: every minute comes before 06:00 Oslo time on the next weekday
        assert text.index("*leads-ods*") < text.index("*budget*")
        assert "`0 6 * * 1-5` Europe/Oslo" in text and "missed slots: run once" in text
        assert "`* * * * *` UTC" in text and "missed slots: skip" in text
        [budget] = [i for i in scheduled_items(w.runtime.catalog) if i.name == "budget"]
        fire = budget.next_fire(datetime.now(UTC))
        assert fire is not None and fire.astimezone(UTC).hour in (4, 5)  # 06:00 in Oslo: 05:00 or 04:00 UTC
        assert fire.weekday() < 5
        assert f"<!date^{int(fire.timestamp())}^" in text  # shown in each reader's own time zone

        # the slot comes (the cron trigger calls the runner at 06:00 Oslo): one run, started by the bot, in C0OPS
        w.runtime.schedules.now = lambda: fire
        assert await w.runtime.schedules.fire(budget) is True
        assert await w.runtime.schedules.fire(budget) is False  # the same slot again: already claimed
        card = await w.card_saying("budget", channel="C0OPS")
        assert "the bot, on its schedule" in shown(card)
        assert len(w.emulators["invision"].state.requests_to("trigger")) == 1
        assert not w.cards("C0GENERAL")
