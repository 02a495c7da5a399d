"""Faults of the fake Slack's Web API: queued failures and delays (``fail_next``, ``delay_next``) and a
per-channel posting rate limit, reproducing Slack's 429 + ``Retry-After``, 5xx and error answers so the bot's
retry and pacing paths run against HTTP, not mocks. ``api.py`` takes a queued fault before each call;
``chat.py`` asks the rate limit before each post."""

from __future__ import annotations

import copy
import math
from collections import deque
from dataclasses import dataclass

__all__ = ["Fault", "Faults"]


@dataclass(slots=True)
class Fault:
    status: int
    error: str | None
    retry_after: int | str | None  # a str: a header as a broken server may write it ("nan")
    delay: float = 0.0


class Faults:
    """What the next calls of a method do instead of answering normally, and the posting rate limit."""

    def __init__(self, *, rate_limit_posts_per_second: float | None = None, rate_limit_burst: int = 3) -> None:
        self.rate_limit_posts_per_second = rate_limit_posts_per_second
        self.rate_limit_burst = rate_limit_burst
        self._faults: dict[str, deque[Fault]] = {}
        self._buckets: dict[str, tuple[float, float]] = {}

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int | str = 1,
        times: int = 1,
        error: str | None = None,
    ) -> None:
        """The next ``times`` calls of ``method`` fail. ``error`` alone: HTTP 200 ``{"ok": false, "error"}``;
        default: HTTP 429 ``ratelimited`` with ``Retry-After``; ``status=500/503``: a server error."""
        if status is None:
            status = 200 if error is not None else 429
        if error is None:
            error = {200: "fatal_error", 429: "ratelimited", 500: "internal_error", 503: "service_unavailable"}.get(
                status, f"http_{status}"
            )
        fault = Fault(status=status, error=error, retry_after=retry_after if status == 429 else None)
        self._faults.setdefault(method, deque()).extend(copy.copy(fault) for _ in range(times))

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer normally after ``seconds`` (client timeouts)."""
        fault = Fault(status=0, error=None, retry_after=None, delay=seconds)
        self._faults.setdefault(method, deque()).extend(copy.copy(fault) for _ in range(times))

    def clear_faults(self) -> None:
        self._faults.clear()

    def take(self, method: str) -> Fault | None:
        """The fault queued for this call of ``method``, if any (removed from the queue)."""
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    def rate_limited(self, channel_id: str, now: float) -> int | None:
        """Take one post from the channel's token bucket: ``None`` when allowed, else the seconds to wait."""
        rate = self.rate_limit_posts_per_second
        if not rate:
            return None
        tokens, last = self._buckets.get(channel_id, (float(self.rate_limit_burst), now))
        tokens = min(float(self.rate_limit_burst), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[channel_id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
        self._buckets[channel_id] = (tokens - 1.0, now)
        return None
