"""``Retry-After`` as a number of seconds, read the way RFC 9110 writes it: by the providers' clients and by the
Slack sender alike (both are told to wait by servers the bot does not control)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RETRY_AFTER_MAX", "parse_retry_after"]

#: the longest ``Retry-After`` taken as given; every user clamps it further (a start waits 10 minutes at most)
RETRY_AFTER_MAX = 86_400.0


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds, between 0 and ``RETRY_AFTER_MAX``: delay-seconds (RFC 9110: digits; a fraction
    is taken) or an HTTP date; anything else is None. ``float()`` alone took ``nan``, ``inf``, ``1e20`` (and any
    script's digits): a provider's ``Retry-After: nan`` on a refused start made the wait a ``ValueError`` (``1e20``
    an ``OverflowError``) out of ``timedelta``, and ``/pipeline run`` "something went wrong"."""
    if not value:
        return None
    text = value.strip()
    if re.fullmatch(r"[0-9]{1,12}(\.[0-9]{0,9})?", text):
        return min(float(text), RETRY_AFTER_MAX)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" in the date: UTC without saying so
        when = when.replace(tzinfo=UTC)
    return min(max((when - datetime.now(UTC)).total_seconds(), 0.0), RETRY_AFTER_MAX)
