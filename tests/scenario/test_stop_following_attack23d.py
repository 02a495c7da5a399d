"""Twenty-third pass (d): ``Notifier.watch_follows`` weighs the watch's list limit (its pipeline's 50 newest runs at
the provider) by the runs the store holds of the pipeline. Runs that never reached the provider (a start refused, a
retry or a capped start still waiting, one canceled while it waited) are in no provider's list, yet counted: a run the
watch still follows was taken for one it no longer lists, Stop following offered; stopped, its end listed later is
dropped (an ended run stays ended) and its failure told nobody."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def _renamed_job_id_written_out(raw: dict[str, Any]) -> None:
    """The rename, and the table-to-table job's ``job_id`` written out as the bot derives it: the same job."""
    _tailer_renamed(raw)
    raw["pipelines"]["iowa-pda"]["job_id"] = "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV"


async def test_a_job_written_out_differently_but_the_same_is_still_followed(tmp_path: Path) -> None:
    """``watch_follows`` compared the run's job with the pipeline's field by field: the same Tailer job (its
    ``job_id`` written out as derived) or DataKitchen recipe (a parameter's type declared) was taken for another,
    so Stop following was offered for a run the watch lists and follows; stopped, its failure listed later was
    dropped."""
    async with world(tmp_path) as w:
        await _started_then(w, _renamed_job_id_written_out)
        answer = await ask(w, "cancel 1")
        assert "Stop following it?" not in answer.text, answer.text
        assert "follows it through the watch" in answer.text, answer.text
        for _ in range(12):  # and it is followed: its failure at Tailer is recorded
            w.advance(6)
            await w.settle(0.3)
        ended = await w.runtime.store.runs.get(1)
        assert ended is not None and ended.state == "failed", ended


def test_a_datakitchen_order_with_a_parameter_type_declared_since_is_the_same_order() -> None:
    from bot.providers.datakitchen.config import Job as DkJob
    from bot.providers.tailer.config import Job as TailerJob

    ran = DkJob(kitchen="production", recipe="sales", variation="daily")
    assert ran.lists_as(ran.with_parameter_types({"limit": "int"}))
    assert not ran.lists_as(DkJob(kitchen="production", recipe="sales", variation="weekly"))
    tailer = TailerJob(account="000099", environment="DEV", configuration_type="table-to-table", configuration_id="c1")
    assert tailer.lists_as(tailer.model_copy(update={"job_id": "gbq-to-gbq|c1_DEV"}))
    assert not tailer.lists_as(tailer.model_copy(update={"job_id": "gbq-to-gbq|c2_DEV"}))
    assert not tailer.lists_as(ran)
