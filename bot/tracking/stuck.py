"""Stuck runs: a run past its expected duration gets one warning, with its owners mentioned, and its card's
header says it may be stuck (``bot.service.notify`` reads the warning's record) until the run ends.

The threshold is the pipeline's ``expected_duration``, else learned from its own recent successful
runs: well above their 95th percentile (``factor`` × p95), once there are enough of them to trust.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.catalog.catalog import Catalog
from bot.catalog.model import Pipeline
from bot.service.events import StuckRun
from bot.service.history import percentile
from bot.service.notify import Notifier
from bot.store import keys
from bot.store.records import RunRecord, StoredState, run_duration
from bot.store.store import Store

__all__ = ["StuckDetector", "learned_threshold"]

Now = Callable[[], datetime]


def learned_threshold(durations: list[timedelta], *, factor: float = 1.5, minimum_samples: int = 5) -> timedelta | None:
    """``factor`` × p95 of past successful durations, or None with too little history to judge."""
    if len(durations) < minimum_samples:
        return None
    p95 = percentile(durations, 95)
    return p95 * factor if p95 is not None else None


class StuckDetector:
    def __init__(self, store: Store, catalog: Catalog, notifier: Notifier, *, now: Now, history: int = 20) -> None:
        self.store = store
        self.catalog = catalog
        self.notifier = notifier
        self.now = now
        self.history = history
        self.warned = 0

    async def threshold(self, pipeline: Pipeline) -> tuple[timedelta, str] | None:
        if pipeline.expected_duration is not None:
            return pipeline.expected_duration, "its expected duration"
        past = [
            d
            for r in await self.store.runs.recent(pipeline.name, self.history * 2)
            if r.final and r.state is StoredState.SUCCEEDED and (d := r.duration(r.updated_at)) is not None
        ][: self.history]
        learned = learned_threshold(past)
        return (learned, f"1.5 × the 95th percentile of its last {len(past)} successful runs") if learned else None

    async def tick(self) -> int:
        now = self.now()
        warned = 0
        thresholds: dict[str, tuple[timedelta, str] | None] = {}  # once per pipeline per tick
        for run_id, name, created, started in await self.store.runs.ages(limit=5000):
            pipeline = self.catalog.pipelines.get(name or "")
            if pipeline is None:
                continue
            elapsed = run_duration(created, started, None, final=False, now=now)
            if pipeline.name not in thresholds:
                thresholds[pipeline.name] = await self.threshold(pipeline)
            found = thresholds[pipeline.name]
            if elapsed is None or found is None or elapsed <= found[0]:
                continue
            run = await self.store.runs.get(run_id)  # the whole run, for the warning; it may have ended since
            if run is None or run.final or run.provider_run_id is None or run.unknown_since is not None:
                continue
            warned += await self._warn(run, pipeline, elapsed, *found)
        self.warned += warned
        return warned

    async def _warn(self, run: RunRecord, pipeline: Pipeline, elapsed: timedelta, limit: timedelta, why: str) -> int:
        muted = pipeline.name in await self.store.mutes.active(now=self.now())
        stuck = StuckRun(run=run, elapsed=elapsed, limit=limit, why=why, owners=() if muted else pipeline.owners)
        key = keys.run_stuck(run.id)
        if self.notifier.has_card(run):
            sent = await self.notifier.reporter.run_stuck(key, stuck, channel=None)
            fresh = await self.store.runs.get(run.id) if sent else None  # it may have ended since the tick read it
            if fresh is not None and not fresh.final:  # the warning is recorded: the header says "may be stuck" too
                await self.notifier.refresh_card(fresh)
        else:  # a run started outside Slack has no card: warn in its channel
            channel = self.notifier.channel_for(run)
            if channel is None:
                return 0
            sent = await self.notifier.reporter.run_stuck(key, stuck, channel=channel)
        return int(sent)
