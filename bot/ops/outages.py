"""The periodic jobs while the database is away: one WARNING per job when it goes, its repeats at DEBUG, one INFO
line when it is back. Without this APScheduler logs every failed tick as an ERROR with a traceback: with ticks of
50 ms to 1 s, thousands of tracebacks a minute for one restart of the database, burying anything else.

Any other error of a job is raised as before (APScheduler's ERROR line with its traceback). What counts as "the
database away" is the caller's (``bot.store.away.database_away``): this layer knows no database."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

__all__ = ["Outages"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


class Outages:
    def __init__(self, is_away: Callable[[BaseException], bool]) -> None:
        self._is_away = is_away
        self._failed: dict[str, int] = {}  # job → its runs failed in a row by the database away

    def failing(self, job: str) -> int:
        """How many runs of ``job`` in a row found the database away (0: its last run did not)."""
        return self._failed.get(job, 0)

    def quiet(self, job: str, func: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T | None]]:
        """``func`` as a job whose "database away" failures are logged once, not raised (same name)."""

        @functools.wraps(func)
        async def run(*args: P.args, **kwargs: P.kwargs) -> T | None:
            try:
                result = await func(*args, **kwargs)
            except Exception as exc:
                if not self._is_away(exc):
                    raise
                self._away(job, exc)
                return None
            self._back(job)
            return result

        return run

    def _away(self, job: str, exc: BaseException) -> None:
        failed = self._failed.get(job, 0) + 1
        self._failed[job] = failed
        if failed == 1:
            log.warning(
                "job %s: the database is away (%s: %s); it tries again at each run until it is back",
                job,
                type(exc).__name__,
                _first_line(exc),
            )
        else:
            log.debug("job %s: the database is still away (%d runs in a row)", job, failed)

    def _back(self, job: str) -> None:
        failed = self._failed.pop(job, 0)
        if failed:
            log.info("job %s: the database is back (%d runs missed)", job, failed)


def _first_line(exc: BaseException) -> str:
    """The error's first line, short: SQLAlchemy's texts go on with the statement and its parameters."""
    return str(exc).split("\n", 1)[0][:200]
