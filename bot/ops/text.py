"""The inline text of messages to people, wherever they are written: escaping, mentions, dates, durations.

A person's reply is written where the reason for it is known: a ``UserError`` raised by a service carries the
mrkdwn-safe text Slack shows (``bot.errors``). So the few inline helpers that text needs sit here, below every
layer; Block Kit (sections, buttons, cards) and the rest of the mrkdwn helpers stay in ``bot.slack``, which
re-exports these from ``bot.slack.text``. Pure functions, no I/O.

Everything untrusted (provider messages, pipeline names, command text, error strings) goes through ``escape``
before it reaches a person: Slack reads ``<!channel>`` or ``<https://evil|docs>`` in mrkdwn as a ping or a
disguised link. Mentions are produced only from ids that are checked.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["UNTYPABLE", "escape", "human_duration", "mention", "mention_group", "mention_user", "named",
           "named_within", "principal_mention", "slack_date", "visible"]

_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP = re.compile(r"^S[A-Z0-9]{2,}$")
#: a terminal's colour and cursor sequences (ESC [ … letter): a script's coloured output, meaningless in Slack
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")
#: control characters other than tab, newline and carriage return (C0, DEL, C1): what Slack does with them is
#: not documented, and they are invisible where shown
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


#: control characters (C0, DEL, C1) but the whitespace a command splits on, and the bidi controls that make text
#: display in an order other than the one it is stored in: nobody types them in Slack's box, PostgreSQL refuses NUL
#: in text, and a right-to-left override in a value echoed to a channel disguises what it says. Refused in a
#: command's text and in every run parameter's value (typed in a command, in the modal, in a Workflow Builder step)
UNTYPABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape(text: str) -> str:
    """The three characters Slack reads as control characters, as entities (``&`` first, or it doubles); and
    the real control characters shown (``visible``)."""
    return visible(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


#: what Slack's mrkdwn reads as formatting in a name: bold, strike and code marks anywhere (``*{name}*`` of a
#: connection named ``eu*prod`` ends the bold early), an underscore opening or closing italics (not one inside a word,
#: as in ``leads_ods``, which Slack leaves alone)
_FORMATTING = re.compile(r"[*~`]|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
_BREAKS = re.compile(r"[\r\n\u2028\u2029]")


def named(name: str) -> str:
    """A name (a pipeline, a connection, a step) as the bold ``*name*``, escaped; one Slack would read formatting
    in as inline code instead, which shows it as written: connection and step names are free YAML keys, an ad-hoc
    run's name holds the id typed. mrkdwn has no escape for ``*``, ``_`` or ``~``."""
    shown = escape(name)
    # a bold span ends at a line break, and opens or closes only against a non-space: ``*a\nb*`` and ``* a*``
    # show their stars
    if name and name == name.strip() and not _FORMATTING.search(name) and not _BREAKS.search(name):
        return f"*{shown}*"
    cleaned = _BREAKS.sub(" ", shown.replace("`", "ˋ"))
    return f"`{cleaned}`" if cleaned.strip() else "`?`"


#: the longest connection name ``named_within`` shows whole
_NAME_WITHIN = 120


def named_within(text: str, name: str) -> str:
    """``text`` escaped, its mention of the connection ``name`` ("connection <name>") shown as ``named`` shows it:
    words the bot kept (why a run was stopped following) name a free YAML key Slack would read formatting in."""
    shown, said = escape(text), f"connection {escape(name)}"
    at = shown.find(said) if name else -1
    if at < 0:
        return shown
    # shortened inside its mark: the whole note is cut at 400 characters, and a cut through the name's code span
    # leaves its opening backtick alone (shown as written, the marks after it read as formatting)
    short = name if len(name) <= _NAME_WITHIN else name[: _NAME_WITHIN - 1] + "…"
    return f"{shown[:at]}connection {named(short)}{shown[at + len(said):]}"


def visible(text: str) -> str:
    """``text`` without terminal escape sequences, its other control characters shown as their Unicode
    pictures (NUL ␀, ESC ␛, DEL ␡; C1 as �); tabs and line breaks kept."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(_picture, _ANSI.sub("", text))


def _picture(found: re.Match[str]) -> str:
    code = ord(found.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"


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


def principal_mention(principal: str) -> str:
    """An entry of an owners or approvers list: a user or group as a mention, a channel id as a channel link,
    anything else (``*``) as "everyone"."""
    try:
        return mention(principal)
    except ValueError:
        return f"<#{principal}>" if principal[:1] in ("C", "G") else "everyone"


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
