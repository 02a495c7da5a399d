"""Twenty-third pass (d): ``Notifier.watch_follows`` weighs the watch's list limit (its pipeline's 50 newest runs at
the provider) by the runs the store holds of the pipeline. Runs that never reached the provider (a start refused, a
retry or a capped start still waiting, one canceled while it waited) are in no provider's list, yet counted: a run the
watch still follows was taken for one it no longer lists, Stop following offered; stopped, its end listed later is
dropped (an ended run stays ended) and its failure told nobody."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.models import RunState
from bot.store.records import NewRun, RunOrigin
from tests.scenario.harness import world
from tests.scenario.surface import ask
from tests.scenario.test_stop_following_attack23c import _started_then, _tailer_renamed


async def test_runs_that_never_reached_the_provider_do_not_push_a_followed_run_out_of_the_watchs_list(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await _started_then(w, _tailer_renamed)
        store = w.runtime.store
        run = await store.runs.get(1)
        assert run is not None
        now = datetime.fromtimestamp(w.clock.now(), UTC)
        for n in range(50):  # starts the provider refused: ended "did not start", no run id at Tailer
            refused = await store.runs.create(
                NewRun(provider="tailer", connection="tailer-eu", job=dict(run.job), parameters={},
                       origin=RunOrigin.SLACK, pipeline="iowa-pda", channel="C0GENERAL", started_by="U0ALICE"),
                now=now, next_poll_at=None,
            )
            await store.runs.finish(refused.id, RunState.UNKNOWN, f"the run did not start: 400 ({n})", now=now)
        answer = await ask(w, "cancel 1")
        assert "Stop following it?" not in answer.text, answer.text  # the watch still lists it: followed
        assert "follows it through the watch" in answer.text, answer.text
