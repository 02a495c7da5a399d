"""Messages other than the card: the failure thread reply, ephemeral errors and notices, confirmations of
destructive operations, and the answers of ``status``, ``last`` and ``stats``.

Each returns ``(text, blocks)``; ``text`` is the notification and screen-reader fallback. Untrusted text is
escaped here, and mentions come only from ids through ``bot.slack.text.mention``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from bot.models import RunState, RunStatus
from bot.service.views import Muted, RunView, StoredState
from bot.slack.blocks import ids
from bot.slack.blocks.card import (
    Block,
    button,
    context,
    final_duration,
    message_text,
    provider_context,
    section,
    state_emoji,
    state_word,
    task_blocks,
    word_and_raw,
)
from bot.slack.text import code, escape, human_duration, link, mention, named, slack_date, truncate

__all__ = [
    "confirm_op",
    "ephemeral_error",
    "failure_details",
    "last_runs",
    "mute_answer",
    "notice",
    "stats",
    "status_list",
]

MESSAGE_BLOCKS = 50
LINE_LIMIT = 300
MAX_OWNERS = 50
_STATES = frozenset(s.value for s in RunState)


def failure_details(
    run: RunView, *, owners: Sequence[str], display_name: str, console_url: str | None
) -> tuple[str, list[Block]]:
    """The thread reply under a failed card: who should look, what the provider said, which tasks failed."""
    name = named(truncate(run.name, 200, "…"))
    phrase = "failed" if run.run_state is RunState.FAILED else state_word(run.run_state)
    title = f"{state_emoji(run.run_state)} {name} {phrase} on {escape(display_name)} (run #{run.id})"
    mentions = _mentions(owners)
    blocks = [section(title + (f"\ncc {mentions}" if mentions else ""))]
    if run.message.strip():
        blocks.append(section(message_text(run.message, "*Message*")))
    blocks += task_blocks(run.tasks, failed_only=True, run_message=run.message)
    blocks.append(context(*_failure_facts(run, display_name, console_url)))
    text = f"{state_emoji(run.run_state)} {name} {phrase} (run #{run.id})"
    if run.message.strip():
        text += ": " + truncate(escape(" ".join(run.message.split())), 300, "…")
    return text, blocks


def _mentions(owners: Sequence[str]) -> str:
    """Owners as mentions; an entry that is not a user or group id (``*``, a channel) mentions nobody."""
    found: list[str] = []
    for owner in owners[:MAX_OWNERS]:
        try:
            found.append(mention(owner))
        except ValueError:
            continue
    return " ".join(dict.fromkeys(found))


def _failure_facts(run: RunView, display_name: str, console_url: str | None) -> list[str]:
    facts = [f"Started {slack_date(run.started_at or run.created_at)}"]
    duration = final_duration(run)
    if duration is not None:
        facts.append(f"Duration {human_duration(duration)}")
    if run.attempt > 1:
        facts.append(f"Attempt {run.attempt}")
    facts.append(provider_context(display_name, run.provider_run_id, run.raw_status))
    if console_url:
        with contextlib.suppress(ValueError):  # not a plain http(s) URL: no link rather than a broken one
            facts.append(link(console_url, f"Open in {display_name}"))
    return facts


def ephemeral_error(message: str) -> tuple[str, list[Block]]:
    """What went wrong and what would work, as a short reply only the person sees."""
    text = "⚠️ " + escape(message)
    return truncate(text, 3000), [section(text)]


def notice(text: str, *, formatted: bool = False) -> tuple[str, list[Block]]:
    """A one-line notice. ``formatted=True`` only for text built from ``escape``/``mention`` by our code."""
    body = text if formatted else escape(text)
    return truncate(body, 3000), [section(body)]


def confirm_op(
    op: str, target: str, question: str, confirm_label: str, *, run_id: int | None = None
) -> tuple[str, list[Block]]:
    """An ephemeral "are you sure" for cancel/disable/archive/reset. It is the one confirmation: its button opens
    no second dialog, and the answer replaces it so it cannot be clicked twice. The button's value carries the
    whole operation so the click needs no server-side state."""
    asked = escape(question)
    value = ids.op_value(op, target, run_id)
    elements = [
        button(confirm_label, ids.OP_CONFIRM, value, style="danger"),
        button("Dismiss", ids.OP_DISMISS, "dismiss"),
    ]
    text = truncate(asked, 3000)
    return text, [section(asked), {"type": "actions", "block_id": "op_actions", "elements": elements}]


def mute_answer(
    pipeline: str, muted: Muted, seconds: int, *, now: datetime, run_id: int | None = None
) -> tuple[str, list[Block]]:
    """The answer to a mute (``/pipeline mute``, a card's Mute menu, or the button below).

    A pipeline already muted for longer keeps its mute: the answer says so and offers the change as buttons,
    to mute for the period asked from now (shorter), or to add it to the mute in force (longer)."""
    name = named(truncate(pipeline, 200, "…"))
    asked = _period(seconds)
    if muted.changed:
        said = f"🔕 {name} is muted until {slack_date(muted.until)}"
        if muted.before is not None:
            how = "extended" if muted.until > muted.before else "shortened"
            said += f" ({how} from {slack_date(muted.before)})"
        said += ": its failures still show on their cards, without alerting anyone."
        return notice(said, formatted=True)
    said = (
        f"🔕 {name} is already muted until {slack_date(muted.until)}, longer than the {asked} asked: nothing changed."
    )
    shorter = ids.mute_set_value(pipeline, seconds, run_id)
    elements = [button(f"Mute for {asked} from now instead", ids.MUTE_SET, shorter)]
    longer = int((muted.until - now).total_seconds()) + seconds
    if longer <= ids.MUTE_MAX_SECONDS:
        extend = ids.mute_set_value(pipeline, longer, run_id)
        elements.append(button(f"Extend by {asked}", ids.mute_set_action_id(1), extend))
    return said, [section(said), {"type": "actions", "block_id": "mute_actions", "elements": elements}]


def _period(seconds: int) -> str:
    """A mute's period as the menu says it ("1 hour"), else as a duration ("1h 30m")."""
    labels = {s: label for label, s in ids.MUTE_CHOICES}
    return labels.get(seconds) or human_duration(timedelta(seconds=seconds))


def status_list(runs: Sequence[RunView], now: datetime) -> tuple[str, list[Block]]:
    """The in-flight runs, one compact line each (ephemeral: elapsed time may use ``now``)."""
    if not runs:
        return "No runs in flight.", [section("No runs in flight.")]
    title = f"*In flight* ({len(runs)})"
    return f"{len(runs)} runs in flight", _listing(title, [_status_line(r, now) for r in runs])


def _status_line(run: RunView, now: datetime) -> str:
    line = (
        f"{state_emoji(run.run_state)} {named(truncate(run.name, 100, '…'))} #{run.id} · "
        f"{state_word(run.run_state)} · started {slack_date(run.started_at or run.created_at)}"
    )
    elapsed = run.duration(now)
    if elapsed is not None:
        line += f" ({human_duration(elapsed)})"
    return line


def last_runs(
    name: str, statuses: Sequence[RunStatus], trend: str, numbers: Mapping[str, int] | None = None
) -> tuple[str, list[Block]]:
    """The last runs the provider knows of, newest first, and a trend in the same order (newest first, leftmost)
    to spot a pattern at a glance. ``numbers`` maps a provider's run id to the bot's ``#n``, for the runs the
    bot knows; a run it does not know (started elsewhere, not watched) is named by the provider's id."""
    shown = truncate(escape(name), 200, "…")
    if not statuses:
        text = f"No runs of {shown} found at the provider."
        return text, [section(text)]
    known = numbers or {}
    title = f"*Last {len(statuses)} runs of {shown}*, newest first   {escape(trend)}"
    lines = [_last_line(s, known.get(s.run_id)) for s in statuses]
    return f"Last {len(statuses)} runs of {shown}, newest first: {escape(trend)}", _listing(title, lines)


def _last_line(status: RunStatus, number: int | None) -> str:
    started = slack_date(status.started_at) if status.started_at else "start unknown"
    who = f"#{number}" if number is not None else "run " + code(truncate(status.run_id, 60, "…"))
    parts = [f"{state_emoji(status.state)} {who}", word_and_raw(status.state, status.raw_status), started]
    if status.elapsed is not None:
        parts.append(human_duration(status.elapsed))
    line = " · ".join(parts)
    if status.state is RunState.FAILED and status.message.strip():
        line += ": " + truncate(escape(" ".join(status.message.split())), 120, "…")
    return line


def stats(
    name_or_all: str,
    period_text: str,
    counts: Mapping[StoredState, int],
    failure_rate: float,
    p50: timedelta | None,
    p95: timedelta | None,
    slowest: Sequence[tuple[str, timedelta]],
) -> tuple[str, list[Block]]:
    """Run counts per state, failure rate, duration percentiles and the slowest runs over a period.

    ``slowest`` holds (label, duration) pairs, slowest first: a pipeline name or a run like ``leads-ods #12``.
    """
    who, period = truncate(escape(name_or_all), 200, "…"), truncate(escape(period_text), 200, "…")
    total = sum(counts.values())
    fields = [
        f"*Runs*\n{total}",
        f"*Failure rate*\n{failure_rate:.1%}",
        "*By state*\n" + (_counts(counts) or "none"),
        f"*Duration p50 / p95*\n{_maybe(p50)} / {_maybe(p95)}",
    ]
    if slowest:
        fields.append("*Slowest*\n" + "\n".join(_slow_line(label, d) for label, d in slowest[:5]))
    blocks = [
        section(f"📊 *Stats for {who}* · {period}"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": truncate(f, 2000)} for f in fields]},
    ]
    return f"Stats for {who} ({period}): {total} runs, failure rate {failure_rate:.1%}", blocks


def _counts(counts: Mapping[StoredState, int]) -> str:
    lines = []
    for key, n in sorted(counts.items(), key=lambda kv: -kv[1])[:20]:
        emoji = state_emoji(RunState(key)) + " " if key in _STATES else ""
        lines.append(f"{emoji}{truncate(escape(key), 60, '…')}: {n}")
    return "\n".join(lines)


def _maybe(duration: timedelta | None) -> str:
    return human_duration(duration) if duration is not None else "–"


def _slow_line(label: str, duration: timedelta) -> str:
    return f"{truncate(escape(label), 150, '…')}: {human_duration(duration)}"


def _listing(title: str, lines: Sequence[str]) -> list[Block]:
    """Lines packed into as few sections as fit, never past 50 blocks: the rest is counted, not dropped."""
    blocks: list[Block] = []
    current = title
    for index, raw in enumerate(lines):
        line = truncate(raw, LINE_LIMIT, "…")
        if len(current) + 1 + len(line) <= 3000:
            current += "\n" + line
            continue
        blocks.append(section(current))
        if len(blocks) == MESSAGE_BLOCKS - 2:
            blocks.append(context(f"…and {len(lines) - index} more"))
            return blocks
        current = line
    blocks.append(section(current))
    return blocks
