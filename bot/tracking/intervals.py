"""When to poll a run next: often while it is young, sparser as it ages, backing off on errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["UNKNOWN_STATUS_LIMIT", "PollIntervals"]

UNKNOWN_STATUS_LIMIT = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class PollIntervals:
    """``base`` for the first minutes of a run, growing to ``longest`` for runs that last hours."""

    base: timedelta = timedelta(seconds=5)
    longest: timedelta = timedelta(seconds=60)
    error_max: timedelta = timedelta(minutes=5)
    #: a raw status outside the model that does not change for this long ends the polling: Boomi's guide says to
    #: take a status it does not list as terminal-unknown; the bot shows it at once and looks a little longer in
    #: case it was a passing state, but never for hours
    unknown_limit: timedelta = UNKNOWN_STATUS_LIMIT

    def next_after(self, age: timedelta) -> timedelta:
        if age < timedelta(minutes=1):
            step = self.base
        elif age < timedelta(minutes=10):
            step = self.base * 3
        elif age < timedelta(hours=1):
            step = self.base * 6
        else:
            step = self.longest
        return min(step, self.longest)

    def after_error(self, unknown_since: datetime | None, now: datetime) -> timedelta:
        """Back off while a provider is not answering, up to ``error_max``; keep polling for ever."""
        down_for = now - unknown_since if unknown_since else timedelta(0)
        step = max(self.base, min(down_for / 4, self.error_max))
        return min(step, self.error_max)
