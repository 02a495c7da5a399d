"""Figures from runs: counts per state, failure rate, duration percentiles, a trend line. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bot.models import RunState, RunStatus
from bot.store.records import RunRecord, StoredState

__all__ = ["Summary", "percentile", "summarize", "trend"]

_TREND = {
    RunState.SUCCEEDED: "✅",
    RunState.FAILED: "❌",
    RunState.CANCELED: "⏹️",
    RunState.RUNNING: "▶️",
    RunState.QUEUED: "⏳",
    RunState.UNKNOWN: "❔",
}


@dataclass(frozen=True, slots=True)
class Summary:
    counts: dict[StoredState, int]
    failure_rate: float
    p50: timedelta | None
    p95: timedelta | None
    slowest: tuple[str, timedelta] | None


def percentile(values: Sequence[timedelta], q: float) -> timedelta | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summarize(runs: Sequence[RunRecord]) -> Summary:
    """Only runs that really started count (a trigger the provider refused is not a run)."""
    started = [r for r in runs if r.provider_run_id is not None]
    counts = Counter(r.state for r in started)
    done = counts[StoredState.SUCCEEDED] + counts[StoredState.FAILED]
    durations = [
        (r.name, d) for r in started if r.final and r.state is StoredState.SUCCEEDED and (d := r.duration(r.updated_at))
    ]
    slowest = max(durations, key=lambda nd: nd[1]) if durations else None
    values = [d for _, d in durations]
    return Summary(
        counts=dict(counts),
        failure_rate=counts[StoredState.FAILED] / done if done else 0.0,
        p50=percentile(values, 50),
        p95=percentile(values, 95),
        slowest=slowest,
    )


def trend(statuses: Sequence[RunStatus], *, newest_first: bool = False) -> str:
    """Newest-first statuses as emoji, oldest → newest (the digest's line), or newest first to read beside a
    newest-first list (``last``), so the list and its trend are in the same order."""
    ordered = statuses if newest_first else list(reversed(statuses))
    return "".join(_TREND.get(s.state, "❔") for s in ordered)
