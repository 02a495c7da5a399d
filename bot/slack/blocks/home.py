"""The App Home tab: runs in flight, open alerts, mutes and the last day's failures, muted ones included, and
the person's subscriptions (built by ``bot.slack.blocks.subscriptions``). Pure.

Nothing is ever silently dropped: a muted failure is listed (marked 🔕), and a list too long for the tab ends
with "…and N more". Every list is packed into sections of at most 3000 characters and the whole tab stays
within Slack's 100 blocks, whatever the input.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from bot.service.views import AlertKind, AlertView, RunView
from bot.slack.blocks.card import Block, context, section, state_emoji, state_word
from bot.slack.text import escape, human_duration, mention_user, slack_date, truncate

__all__ = ["HOME_BLOCKS", "SUBSCRIPTION_BLOCKS", "home_view", "line_sections", "said"]

HOME_BLOCKS = 100
PACK_LIMIT = 2800  # room under 3000 for emoji Slack counts twice
MORE_ROOM = 40  # kept free in each section for the "…and N more" line
LINE_LIMIT = 1200
NAME_LIMIT = 80
MESSAGE_LIMIT = 200
_FIXED = 7  # header, intro, 3 dividers, footer, and one to spare
#: what "My subscriptions" may take: a divider, a title, its rows with their buttons, "…and N more"
SUBSCRIPTION_BLOCKS = 13
LIST_BLOCKS = (HOME_BLOCKS - _FIXED - SUBSCRIPTION_BLOCKS) // 4
_NOBODY: Mapping[int, str] = MappingProxyType({})


def home_view(
    *,
    in_flight: Sequence[RunView],
    alerts: Sequence[AlertView] = (),
    mutes: Mapping[str, tuple[datetime, str | None]],
    failures: Sequence[RunView],
    now: datetime,
    command: str,
    muted_runs: Collection[int] = frozenset(),
    acknowledged: Mapping[int, str] = _NOBODY,
    subscriptions: Sequence[Block] = (),
) -> dict[str, Any]:
    """The Home view. ``failures``: the last 24 h, newest first, muted ones included; ``muted_runs``: ids of
    runs whose alerts are muted; ``acknowledged``: who took the last run of an alert (run id → user id);
    ``subscriptions``: the person's, at most ``SUBSCRIPTION_BLOCKS`` blocks."""
    muted_failures = sum(_is_muted(r, muted_runs, mutes) for r in failures)
    failure_title = f"*Failures in the last 24 h* ({len(failures)}" + (
        f", {muted_failures} muted)" if muted_failures else ")"
    )
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Pipelines", "emoji": True}},
        section(f"Run one with `{escape(command)} run <name>`, see them all with `{escape(command)} list`."),
    ]
    parts = [
        (f"*In flight* ({len(in_flight)})", [_run_line(r, now) for r in in_flight], "_Nothing running._"),
        (f"*Open alerts* ({len(alerts)})", [_alert_line(a, acknowledged) for a in alerts], "_No open alerts._"),
        (f"*Muted* ({len(mutes)})", _mute_lines(mutes), "_Nothing muted._"),
        (failure_title, [_failure_line(r, muted_runs, mutes) for r in failures], "_No failures._"),
    ]
    for title, lines, empty in parts:
        blocks.append({"type": "divider"})
        blocks += line_sections(title, lines, max_blocks=LIST_BLOCKS, empty=empty)
    blocks += list(subscriptions)[:SUBSCRIPTION_BLOCKS]
    blocks.append(context(f"Updated {slack_date(now)} · open this tab again to refresh"))
    return {"type": "home", "blocks": blocks}


def line_sections(title: str, lines: Sequence[str], *, max_blocks: int, empty: str = "_None._") -> list[Block]:
    """``title`` then ``lines``, packed into at most ``max_blocks`` sections that each fit Slack's limit.
    Lines that do not fit are counted in a last "…and N more" line rather than dropped silently."""
    if not lines:
        return [section(f"{title}\n{empty}")]
    blocks: list[Block] = []
    current, size = [title], len(title)
    for index, raw in enumerate(lines):
        line = truncate(raw, LINE_LIMIT, "…")
        if size + 1 + len(line) <= PACK_LIMIT - MORE_ROOM:
            current.append(line)
            size += 1 + len(line)
            continue
        if len(blocks) + 1 >= max(1, max_blocks):  # the current section is the last one allowed
            current.append(f"…and {len(lines) - index} more")
            break
        blocks.append(section("\n".join(current)))
        current, size = [line], len(line)
    blocks.append(section("\n".join(current)))
    return blocks


def _name(text: str) -> str:
    return truncate(escape(text[: NAME_LIMIT + 1]), NAME_LIMIT, "…")


def said(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """A provider's message as one quoted line: whitespace collapsed, escaped, cut to ``limit``."""
    cap = 8 * limit  # a 100 kB message costs no more than a short one
    text = " ".join(message[:cap].split()) + ("…" if len(message) > cap else "")
    return f"\n> {truncate(escape(text[: limit + 1]), limit, '…')}" if text else ""


def _who(user_id: str) -> str:
    try:
        return mention_user(user_id)
    except ValueError:
        return "someone"


def _is_muted(run: RunView, muted_runs: Collection[int], mutes: Mapping[str, object]) -> bool:
    return run.id in muted_runs or (run.pipeline is not None and run.pipeline in mutes)


def _run_line(run: RunView, now: datetime) -> str:
    line = f"{state_emoji(run.run_state)} *{_name(run.name)}* #{run.id} · {state_word(run.run_state)}"
    elapsed = run.duration(now)
    if elapsed is not None:
        line += f" · {human_duration(elapsed)}"
    if run.unknown_since is not None:
        line += f" · ❔ status unknown since {slack_date(run.unknown_since)}"
    if run.acknowledged_by:
        line += f" · 👀 {_who(run.acknowledged_by)}"
    return line


def _alert_line(alert: AlertView, acknowledged: Mapping[int, str]) -> str:
    if alert.kind is AlertKind.UNREACHABLE:
        return f"🔌 *Cannot reach {_name(alert.connection or '?')}* since {slack_date(alert.first_at)}" + said(
            alert.message
        )
    status = f"failed {alert.count} times since" if alert.count > 1 else "failed"
    line = f"❌ *{_name(alert.pipeline or '?')}* {status} {slack_date(alert.first_at)}"
    if alert.last_run_id is not None:
        line += f" · run #{alert.last_run_id}"
    if alert.muted:
        line += " · 🔕 muted"
    who = acknowledged.get(alert.last_run_id) if alert.last_run_id is not None else None
    if who:
        line += f" · 👀 {_who(who)} is on it"
    return line + said(alert.message)


def _mute_lines(mutes: Mapping[str, tuple[datetime, str | None]]) -> list[str]:
    return [
        f"🔕 *{_name(name)}* until {slack_date(until)}" + (f" by {_who(who)}" if who else "")
        for name, (until, who) in sorted(mutes.items(), key=lambda kv: (kv[1][0], kv[0]))
    ]


def _failure_line(run: RunView, muted_runs: Collection[int], mutes: Mapping[str, object]) -> str:
    when = slack_date(run.ended_at or run.updated_at)
    line = f"{state_emoji(run.run_state)} *{_name(run.name)}* #{run.id} · failed {when}"
    elapsed = run.duration(run.updated_at)
    if elapsed is not None:
        line += f" after {human_duration(elapsed)}"
    if _is_muted(run, muted_runs, mutes):
        line += " · 🔕 muted"
    if run.acknowledged_by:
        line += f" · 👀 {_who(run.acknowledged_by)}"
    return line + said(run.message or run.raw_status)
