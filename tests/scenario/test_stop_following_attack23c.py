"""Stop following refused for a run "the watch follows" (``Notifier.watch_follows``), attacked: the refusal said
"the bot follows it through the watch …, so its end will be told as any" for runs the watch never lists, or
lists without recording them, so nothing followed them and nothing could end them from Slack."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.emulators._core import Outcome
from bot.errors import InvalidRequest, NotAllowed
from bot.service.permissions import Actor
from bot.store.records import NewRun, RunOrigin
from tests.scenario.harness import world
from tests.scenario.surface import ask, audit_of
from tests.scenario.test_stop_following_attack23a import gated_gone

LATE_FAIL = Outcome(result="fail", queued_s=1, running_s=60, message="late failed")
LONG = Outcome(queued_s=1, running_s=3600)


def _tailer_renamed(raw: dict[str, Any]) -> None:
    raw["connections"]["tailer-eu"] = raw["connections"].pop("tailer")
    raw["pipelines"]["iowa-pda"]["connection"] = "tailer-eu"


def _tailer_moved_to_another_configuration(raw: dict[str, Any]) -> None:
    """Not a rename: the pipeline now runs another Tailer configuration at another connection (the old one gone)."""
    _tailer_renamed(raw)
    raw["pipelines"]["iowa-pda"]["configuration_id"] = "000099_iowa_liquor_prepare_pda_v2"


async def _started_then(w: Any, edit: Any) -> None:
    w.advance(120)
    await w.settle(0.5)  # watching begins
    w.tailer.state.default = LATE_FAIL
    assert (await w.command("run iowa-pda execution_date=2026-11-03")).ok
    await w.card_saying("iowa-pda is")
    w.advance(2)
    await w.settle(1)
    await w.restart(edit)
    for _ in range(4):
        w.advance(5)
        await w.settle(0.3)


async def test_a_run_of_a_job_the_watch_does_not_list_may_be_stopped_following(tmp_path: Path) -> None:
    """The watch lists its pipeline's job at the new connection: a run of the job the pipeline had before is never
    in that list. Refused "the bot follows it through the watch", nothing followed it: a dead end for a day."""
    async with world(tmp_path) as w:
        await _started_then(w, _tailer_moved_to_another_configuration)
        answer = await ask(w, "cancel 1")
        assert "Stop following it?" in answer.text, answer.text


async def test_a_run_over_the_watch_lists_limit_may_be_stopped_following(tmp_path: Path) -> None:
    """The watch lists a pipeline's 50 newest runs: one with 50 runs of its pipeline recorded after it is not in
    that list, so nothing follows it."""
    async with world(tmp_path) as w:
        await _started_then(w, _tailer_renamed)
        answer = await ask(w, "cancel 1")
        assert "Stop following it?" not in answer.text, answer.text  # followed: the rename, held
        store = w.runtime.store
        run = await store.runs.get(1)
        assert run is not None
        now = datetime.fromtimestamp(w.clock.now(), UTC)
        for n in range(50):
            await store.runs.create(
                NewRun(provider="tailer", connection="tailer-eu", job=dict(run.job), parameters={},
                       origin=RunOrigin.WATCH, pipeline="iowa-pda", channel="C0OPS", provider_run_id=f"later-{n}"),
                now=now, next_poll_at=None,
            )
        answer = await ask(w, "cancel 1")
        assert "Stop following it?" in answer.text, answer.text


async def test_a_moved_run_is_followed_from_the_trackers_shared_list(tmp_path: Path) -> None:
    """Tailer's batched get_last_status (two runs of the configuration polled at the new connection) stands in for
    the watch's own list call; the watch then recorded only new runs, leaving the others to their own polls: those
    of a run at a renamed connection cannot reach it, so its failure waited for the other runs to end (for ever,
    while runs of the configuration overlap), Stop following refused meanwhile."""
    async with world(tmp_path, watch_interval_seconds=2.0) as w:
        await _started_then(w, _tailer_renamed)
        w.tailer.state.default = LONG
        assert (await w.command("run iowa-pda execution_date=2026-11-04")).ok
        assert (await w.command("run iowa-pda execution_date=2026-11-05")).ok
        await w.card_saying("iowa-pda is running", timeout=15)
        w.advance(70)  # run #1 fails at Tailer
        for _ in range(12):
            w.advance(1)
            await w.settle(0.5)
        ended = await w.runtime.store.runs.get(1)
        assert ended is not None and ended.state == "failed", ended
        others = [await w.runtime.store.runs.get(i) for i in (2, 3)]
        assert all(r is not None and not r.final for r in others)


def _tailer_renamed_with_a_star(raw: dict[str, Any]) -> None:
    raw["connections"]["tailer*eu"] = raw["connections"].pop("tailer")
    raw["pipelines"]["iowa-pda"]["connection"] = "tailer*eu"


async def test_the_refusal_names_a_connection_with_a_star_as_written(tmp_path: Path) -> None:
    """"… through the watch of *iowa-pda* at its connection *tailer*eu*": the bold broken."""
    async with world(tmp_path) as w:
        await _started_then(w, _tailer_renamed_with_a_star)
        answer = await ask(w, "cancel 1")
        assert "at its connection `tailer*eu`" in answer.text, answer.text


async def test_who_stopped_a_workflow_gone_at_its_approval_is_in_the_audit(tmp_path: Path) -> None:
    """The click that stopped the run was audited "refused", the same line as a stranger's that changed nothing."""
    async with gated_gone(tmp_path) as (w, stranger, engine):
        with pytest.raises(NotAllowed):
            await engine.decide(Actor(stranger), 1, "approve", True)
        with pytest.raises(InvalidRequest, match="cannot go on and stops"):
            await engine.decide(Actor("U0CAROL"), 1, "approve", True)  # an admin
        with pytest.raises(InvalidRequest, match="waits for no decision"):  # a replay
            await engine.decide(Actor("U0CAROL"), 1, "approve", True)
        stops = [(e.user_id, e.outcome) for e in await audit_of(w) if e.action == "stop workflow"]
        assert stops == [("U0CAROL", "ok")], await audit_of(w)
