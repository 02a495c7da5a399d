"""Twenty-third pass (e): ``Notifier.watch_follows`` weighed the watch's 50-run limit by the runs recorded after the
run (their ids), but a provider lists its newest runs by when they started there. A run that waited for its start (a
capped start queued, a policy's retry's delay) is recorded long before it starts: the runs the watch recorded
meanwhile have later ids yet started before it, and its list holds it above them. Counted as newer, the run the watch
still follows was offered Stop following; stopped, its failure listed later was dropped (an ended run stays ended)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from bot.store.records import NewRun, RunOrigin
from bot.store.tables import runs
from tests.scenario.harness import world
from tests.scenario.surface import ask
from tests.scenario.test_stop_following_attack23c import _started_then, _tailer_renamed


async def test_runs_recorded_later_but_started_earlier_do_not_push_a_followed_run_out_of_the_list(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await _started_then(w, _tailer_renamed)
        store = w.runtime.store
        run = await store.runs.get(1)
        assert run is not None and run.started_at is not None, run
        now = datetime.fromtimestamp(w.clock.now(), UTC)
        for n in range(50):  # scheduled runs the watch recorded while run 1 waited: they started before it did
            other = await store.runs.create(
                NewRun(provider="tailer", connection="tailer-eu", job=dict(run.job), parameters={},
                       origin=RunOrigin.WATCH, pipeline="iowa-pda", channel="C0OPS", provider_run_id=f"earlier-{n}"),
                now=now, next_poll_at=None,
            )
            async with store.engine.begin() as conn:
                started = run.started_at - timedelta(minutes=60 - n)
                await conn.execute(update(runs).where(runs.c.id == other.id).values(started_at=started))
        answer = await ask(w, "cancel 1")
        assert "Stop following it?" not in answer.text, answer.text  # the list's newest: followed
        assert "follows it through the watch" in answer.text, answer.text
