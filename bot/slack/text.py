"""Text helpers for Slack mrkdwn: escaping, mentions, dates, durations, truncation.

Everything untrusted (provider messages, pipeline names, command text, error strings) goes through
``escape`` before it reaches a text object: Slack reads ``<!channel>`` or ``<https://evil|docs>`` in
mrkdwn as a ping or a disguised link. Mentions and links are therefore produced only here, from ids and
URLs that the code checks. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "TRUNCATION_NOTE",
    "code",
    "escape",
    "human_duration",
    "link",
    "mention",
    "mention_group",
    "mention_user",
    "mrkdwn",
    "plain_text",
    "slack_date",
    "truncate",
]

TRUNCATION_NOTE = "… (truncated: see the console for the rest)"

_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")  # "&", "&a", "&am", "&lt" cut short by a truncation
_URL = re.compile(r"^https?://[^\s<>|]+$")


def escape(text: str) -> str:
    """The three characters Slack reads as control characters, as entities (``&`` first, or it doubles)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(text: str) -> str:
    """Inline code of untrusted text: escaped, backticks and newlines neutralised so it cannot break out."""
    cleaned = escape(text).replace("`", "ˋ").replace("\r", " ").replace("\n", " ")
    return f"`{cleaned}`" if cleaned.strip() else "` `"


def truncate(text: str, limit: int, note: str = TRUNCATION_NOTE) -> str:
    """``text`` if it fits in ``limit`` characters, else its start plus ``note``; never longer than ``limit``.

    A cut never leaves half an entity (``&am``) behind, so escaped text stays well formed.
    """
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if len(note) >= limit:
        return note[:limit]
    head = _PARTIAL_ENTITY.sub("", text[: limit - len(note)])
    return head + note


def mention_user(user_id: str) -> str:
    """``<@U…>`` for a known user id; anything else is refused, so no text can smuggle a ping in."""
    if not _USER.match(user_id):
        raise ValueError(f"{user_id!r} is not a Slack user id (U… or W…)")
    return f"<@{user_id}>"


def mention_group(group_id: str) -> str:
    """``<!subteam^S…>`` for a known user group id; anything else is refused."""
    if not _GROUP.match(group_id):
        raise ValueError(f"{group_id!r} is not a Slack user group id (S…)")
    return f"<!subteam^{group_id}>"


def mention(principal: str) -> str:
    """A user or a user group, told apart by the id's prefix (owners lists hold both)."""
    if principal.startswith("S"):
        return mention_group(principal)
    if principal.startswith(("U", "W")):
        return mention_user(principal)
    raise ValueError(f"{principal!r} is neither a user (U…, W…) nor a user group (S…) id")


def link(url: str, label: str) -> str:
    """``<url|label>`` with the label escaped; a URL that is not plain http(s) is refused."""
    if not _URL.match(url):
        raise ValueError(f"{url!r} is not an http(s) URL Slack can link")
    return f"<{url}|{escape(label).replace('|', '¦')}>"


def slack_date(dt: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """A date token each reader sees in their own time zone. The text holds only the epoch, so a card that
    shows it never changes as time passes (no ``chat.update`` churn); the fallback is ISO in UTC."""
    aware = dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
    utc = aware.astimezone(UTC)
    fallback = utc.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(utc.timestamp())}^{fmt}|{fallback}>"


def human_duration(td: timedelta) -> str:
    """``2d 03h``, ``1h 02m``, ``3m 05s``, ``12s``: two units at most, enough to compare runs at a glance."""
    seconds = max(0, int(td.total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def plain_text(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object cut to ``limit`` (Slack rejects longer and empty ones). Callers pass escaped text:
    Slack decodes the three entities in plain_text too, and no raw token then lands in any payload."""
    return {"type": "plain_text", "text": truncate(text, limit, "…") or "—", "emoji": True}


def mrkdwn(text: str, limit: int = 3000) -> dict[str, Any]:
    """A mrkdwn object cut to ``limit`` with the truncation note; never empty."""
    return {"type": "mrkdwn", "text": truncate(text, limit) or "—"}
