"""The poll tick's pace as the running bot has it."""

from __future__ import annotations

from pathlib import Path

from tests.scenario.harness import world


async def test_a_tick_waits_for_its_polls_less_than_the_period_of_ticks(tmp_path: Path) -> None:
    """A tick that waited a whole period for its polls made the scheduler skip the next tick (a job never overlaps
    itself, ``max_instances=1``): at scale the bot looked for due runs every 2 s instead of every second, and its
    polls were up to 2 s late (issue 16's lag). Slow polls go on as tasks of their own."""
    async with world(tmp_path, poll_tick_seconds=1.0) as w:
        poller = w.runtime.parts.poller
        assert poller.tick_wait <= w.settings.poll_tick_seconds.total_seconds() / 2
