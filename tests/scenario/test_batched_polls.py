"""Batched polls: on a connection whose provider answers for many runs in one call, the tracker asks once per
scope and interval instead of once per run (the emulators' request logs count the calls), a run the batch does not
show still ends correctly through its own status call, and a batch that fails is each of its runs' failure."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bot.emulators._core import Fault
from tests.scenario.harness import World, world

RUNS = 12


def _no_watch(*names: str) -> Any:
    def edit(raw: dict[str, Any]) -> None:
        for name in names:
            raw["pipelines"][name]["watch"] = False  # passive watch lists too: only the tracker's calls counted

    return edit


async def _start(w: World, pipeline: str, n: int) -> None:
    for _ in range(n):
        await w.command(f"run {pipeline}")
    await w.until(lambda: len(w.cards()) >= n, 15, what=f"{n} cards")


def _batched_dk_calls(w: World) -> int:
    """DataKitchen order-status calls of the whole kitchen (no recipe filter: passive watch's carry ``r``)."""
    return len([q for q in w.emulators["datakitchen"].state.requests_to("list") if "r" not in q.query])


async def test_a_kitchens_runs_are_tracked_with_one_call_per_interval(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_no_watch("sales-dashboard", "iowa-pda")) as w:
        dk = w.emulators["datakitchen"].state
        await _start(w, "sales-dashboard", RUNS)
        w.advance(6)  # queued → running at the emulator
        await w.settle(0.6)
        status_before, batched_before = len(dk.requests_to("status")), _batched_dk_calls(w)
        window = 2.0
        await asyncio.sleep(window)
        intervals = window / w.settings.poll_interval_seconds.total_seconds()
        batched = _batched_dk_calls(w) - batched_before
        assert len(dk.requests_to("status")) == status_before  # no run asked on its own
        assert 0 < batched <= 0.1 * RUNS * intervals, f"{batched} calls for {RUNS} runs in {intervals:.0f} intervals"
        w.advance(40)  # every run ends: each end is read with its details, as a single poll reads it
        await w.until(lambda: sum("succeeded" in c.text for c in w.cards()) == RUNS, 20, what="every run succeeded")
        assert len(dk.requests_to("details")) >= RUNS


async def test_a_run_beyond_the_batch_ends_through_its_own_status_call(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_no_watch("sales-dashboard", "iowa-pda")) as w:
        tailer = w.tailer
        await _start(w, "iowa-pda", 2)
        for _ in range(60):  # newer runs of the configuration push ours out of get_last_status's 50
            w.advance(0.01)
            tailer.state.start_run("000099_iowa_liquor_prepare_pda_DEV", external=True)
        asked = len(tailer.state.requests)
        await w.settle(0.6)
        w.advance(40)
        await w.until(lambda: sum("succeeded" in c.text for c in w.cards()) == 2, 20, what="both runs succeeded")
        actions = [q.body.get("action") for q in list(tailer.state.requests)[asked:]
                   if q.route == "status" and isinstance(q.body, dict)]
        assert "get_last_status" in actions  # batched…
        assert "check_run_status" in actions  # …and each run the batch did not show asked on its own


async def test_a_failing_batch_leaves_its_runs_unknown_until_the_provider_answers(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_no_watch("sales-dashboard", "iowa-pda")) as w:
        dk = w.emulators["datakitchen"].state
        await _start(w, "sales-dashboard", 3)
        dk.add_fault(Fault(route="list", status=503, times=None))
        w.advance(6)
        await w.until(lambda: sum("status unknown since" in json.dumps(c.blocks) for c in w.cards()) == 3, 15,
                      what="three cards with the status unknown")
        assert not any("failed" in c.text for c in w.cards())
        dk.clear_faults()
        w.advance(40)
        await w.until(lambda: sum("succeeded" in c.text for c in w.cards()) == 3, 20, what="every run succeeded")


async def test_passive_watch_reads_the_trackers_batched_answer_instead_of_listing(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=_no_watch("sales-dashboard"), watch_interval_seconds=2.0) as w:
        tailer, poller, watcher = w.tailer, w.runtime.parts.poller, w.runtime.parts.watcher
        await _start(w, "iowa-pda", 2)
        await w.settle(0.6)

        def counts() -> tuple[int, int]:
            actions = [q.body.get("action") for q in list(tailer.state.requests) if isinstance(q.body, dict)]
            return actions.count("get_last_status"), poller.polls - actions.count("check_run_status")

        (listed_before, batches_before), found_before = counts(), watcher.found
        external = tailer.state.start_run("000099_iowa_liquor_prepare_pda_DEV", external=True)
        await w.until(lambda: watcher.found > found_before, 10, what="the watch finding the external run")
        await w.settle(2.5)  # at least one more watch cycle
        listed, batches = counts()
        # every get_last_status was one of the tracker's batches (one may be under way as counted): none the watch's
        assert listed - listed_before <= batches - batches_before + 1
        assert w.runtime.store is not None
        assert await w.runtime.store.runs.find("tailer", external.run_id) is not None
