"""What a failure's thread shows of the provider's own evidence, and how it compares with the last success: frozen
values the Slack side renders (``bot/slack/blocks/evidence.py``). Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import RunState, TaskStatus

__all__ = ["LOG_PAGE", "Comparison", "Evidence", "LogPage", "compare", "page_of", "relevant"]

#: lines of a Full log page: 50 lines of at most 300 characters fit a modal's blocks, each under 3,000 characters
LOG_PAGE = 50
#: the log lines a failure's thread shows
TAIL = 12
_TROUBLE = ("error", "fail", "exception", "traceback", "fatal")


@dataclass(frozen=True, slots=True)
class Comparison:
    """The failed run beside the pipeline's last success the bot knows of."""

    success_id: int
    success_ended: datetime | None
    duration_now: timedelta | None
    duration_then: timedelta | None
    #: (name, value then, value now) of each parameter that differs; None where one run had no such parameter
    parameters: tuple[tuple[str, str | None, str | None], ...]
    #: the steps (tasks, nodes) that failed now and passed then
    steps: tuple[str, ...]
    #: whether the success's steps are known (a run seen only in a provider's list has none)
    steps_known: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """What the failure's thread says of the provider's own details: the log's last relevant lines (redacted by
    the client), where they come from, or why there are none; and the comparison with the last success."""

    run_id: int
    display_name: str
    lines: tuple[str, ...] = ()
    total_lines: int = 0
    source: str = ""
    #: why no log is shown: the provider has none, or the call failed (its message, redacted as every error)
    missing: str = ""
    comparison: Comparison | None = None
    #: the provider can resume this run from its failed step (DataKitchen's order-run resume)
    can_resume: bool = False

    @property
    def has_log(self) -> bool:
        return self.total_lines > 0


@dataclass(frozen=True, slots=True)
class LogPage:
    """One page of a run's log for the Full log modal; pages count from the log's end (page 0: its last lines)."""

    run_id: int
    lines: tuple[str, ...]
    first: int  # the number of the page's first line, from 1
    total: int
    page: int
    pages: int


def relevant(lines: Sequence[str], keep: int = TAIL) -> tuple[str, ...]:
    """The last ``keep`` lines up to the log's last error (where the failure is told); the last lines when none
    says error."""
    end = next((i + 1 for i in range(len(lines) - 1, -1, -1) if _troubled(lines[i])), len(lines))
    return tuple(lines[max(0, end - keep) : end])


def _troubled(line: str) -> bool:
    lower = line.lower()
    return any(word in lower for word in _TROUBLE)


def page_of(run_id: int, lines: Sequence[str], page: int, size: int = LOG_PAGE) -> LogPage:
    """Page ``page`` from the end (clamped to the pages there are)."""
    total = len(lines)
    pages = max(1, -(-total // size))
    page = min(max(page, 0), pages - 1)
    end = total - page * size
    start = max(0, end - size)
    return LogPage(run_id, tuple(lines[start:end]), start + 1, total, page, pages)


def compare(
    *,
    success_id: int,
    success_ended: datetime | None,
    durations: tuple[timedelta | None, timedelta | None],
    parameters: tuple[Mapping[str, str], Mapping[str, str]],
    tasks: tuple[Sequence[TaskStatus], Sequence[TaskStatus]],
) -> Comparison:
    """``durations``, ``parameters`` and ``tasks`` as (then, now)."""
    then, now = parameters
    names = sorted(set(then) | set(now))
    differ = tuple((name, then.get(name), now.get(name)) for name in names if then.get(name) != now.get(name))
    passed = {t.name for t in tasks[0] if t.state is RunState.SUCCEEDED}
    steps = tuple(t.name for t in tasks[1] if t.state is RunState.FAILED and t.name in passed)
    return Comparison(success_id, success_ended, durations[1], durations[0], differ, steps, bool(tasks[0]))
