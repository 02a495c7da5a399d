"""The App Home tab: runs in flight, failures not yet acknowledged, mutes. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.slack.blocks.card import state_emoji, state_word
from bot.slack.text import escape, human_duration, slack_date, truncate
from bot.store.records import RunRecord

__all__ = ["home_view"]

MAX_LINES = 20


def home_view(
    *,
    in_flight: Sequence[RunRecord],
    failures: Sequence[RunRecord],
    mutes: Mapping[str, tuple[datetime, str | None]],
    now: datetime,
    command: str,
) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Pipelines"}},
        _section(f"Run one with `{escape(command)} run <name>`, see them all with `{escape(command)} list`."),
        {"type": "divider"},
        _section(f"*In flight* ({len(in_flight)})\n" + (_lines(in_flight, now) or "_Nothing running._")),
        _section(f"*Recent failures* ({len(failures)})\n" + (_lines(failures, now) or "_None._")),
    ]
    mute_lines = [
        f"🔕 *{escape(name)}* until {slack_date(until)}" + (f" by <@{who}>" if who else "")
        for name, (until, who) in sorted(mutes.items())
    ]
    blocks.append(_section("*Muted*\n" + ("\n".join(mute_lines[:MAX_LINES]) or "_Nothing muted._")))
    return {"type": "home", "blocks": blocks}


def _lines(runs: Sequence[RunRecord], now: datetime) -> str:
    lines = []
    for run in runs[:MAX_LINES]:
        name = truncate(escape(run.name), 80, "…")
        line = f"{state_emoji(run.run_state)} *{name}* #{run.id} · {state_word(run.run_state)}"
        elapsed = run.duration(now)
        if elapsed is not None:
            line += f" · {human_duration(elapsed)}"
        if run.acknowledged_by:
            line += f" · 👀 <@{run.acknowledged_by}>"
        lines.append(line)
    if len(runs) > MAX_LINES:
        lines.append(f"…and {len(runs) - MAX_LINES} more")
    return "\n".join(lines)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, 3000)}}
