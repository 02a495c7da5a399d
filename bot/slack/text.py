"""Text helpers for Slack mrkdwn: escaping, mentions, dates, durations, truncation.

Everything untrusted (provider messages, pipeline names, command text, error strings) goes through
``escape`` before it reaches a text object: Slack reads ``<!channel>`` or ``<https://evil|docs>`` in
mrkdwn as a ping or a disguised link. Mentions and links are therefore produced only from ids and URLs that the
code checks: here, and in ``bot.ops.text`` (escaping, mentions, dates, durations: the inline text that replies
written by the domain use too, re-exported here). Pure functions, no I/O.
"""

from __future__ import annotations

import re

from bot.models import Json
from bot.ops.text import escape, human_duration, mention, mention_group, mention_user, named, slack_date

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
    "named",
    "plain_text",
    "slack_date",
    "truncate",
]

TRUNCATION_NOTE = "… (truncated: see the console for the rest)"

_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")  # "&", "&a", "&am", "&lt" cut short by a truncation
_URL = re.compile(r"^https?://[^\s<>|]+$")


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


def link(url: str, label: str) -> str:
    """``<url|label>`` with the label escaped; a URL that is not plain http(s) is refused."""
    if not _URL.match(url):
        raise ValueError(f"{url!r} is not an http(s) URL Slack can link")
    return f"<{url}|{escape(label).replace('|', '¦')}>"


def plain_text(text: str, limit: int) -> Json:
    """A plain_text object cut to ``limit`` (Slack rejects longer and empty ones). Callers pass escaped text:
    Slack decodes the three entities in plain_text too, and no raw token then lands in any payload."""
    return {"type": "plain_text", "text": truncate(text, limit, "…") or "—", "emoji": True}


def mrkdwn(text: str, limit: int = 3000) -> Json:
    """A mrkdwn object cut to ``limit`` with the truncation note; never empty."""
    return {"type": "mrkdwn", "text": truncate(text, limit) or "—"}
