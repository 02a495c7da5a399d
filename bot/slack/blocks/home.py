"""The App Home tab: the person's pipelines (owned, watched, subscribed to: last status, a trend of the last ten
runs, the next scheduled run, a Run button), runs in flight, open alerts (Acknowledge), mutes (Unmute), the last
day's failures, muted and recovered ones marked, and the person's subscriptions (built by
``bot.slack.blocks.subscriptions``), with a Refresh. Pure.

Nothing is ever silently dropped: a muted failure is listed (marked 🔕), and a list too long for the tab ends
with "…and N more" and where to see the rest. Every list is packed into sections of at most 3000 characters and
the whole tab stays within Slack's 100 blocks, whatever the input. Buttons are offered, never trusted: each
click is checked again on the server (``bot.slack.actions.buttons``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType

from bot.models import Json
from bot.service.queries import PipelineRow
from bot.service.views import AlertKind, AlertView, RunView, run_view
from bot.slack.blocks import ids
from bot.slack.blocks.card import Block, button, context, section, state_emoji, state_word
from bot.slack.text import code, escape, human_duration, mention_user, named, slack_date, truncate

__all__ = ["HOME_BLOCKS", "SUBSCRIPTION_BLOCKS", "home_view", "line_sections", "said"]

HOME_BLOCKS = 100
PACK_LIMIT = 2800  # room under 3000 for emoji Slack counts twice
MORE_ROOM = 40  # kept free in each section for the "…and N more" line
LINE_LIMIT = 1200
NAME_LIMIT = 80
MESSAGE_LIMIT = 200
#: what "My subscriptions" may take: a divider, a title, its rows with their buttons, "…and N more"
SUBSCRIPTION_BLOCKS = 13
#: rows with a button each (a section per row), then "…and N more"
PIPELINE_ROWS = 30
ALERT_ROWS = 10
MUTE_ROWS = 8
LIST_BLOCKS = 4  # in flight, failures: lines packed into at most this many sections each
_FIXED = 10  # header, intro with Refresh, an answer to a click, 5 dividers, footer, and one to spare
assert (
    _FIXED + SUBSCRIPTION_BLOCKS + (PIPELINE_ROWS + 2) + (ALERT_ROWS + 2) + (MUTE_ROWS + 2) + 2 * LIST_BLOCKS
    <= HOME_BLOCKS
)
_NOBODY: Mapping[int, str] = MappingProxyType({})
_NONE: Mapping[int, int] = MappingProxyType({})


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
    pipelines: Sequence[PipelineRow] = (),
    recovered: Mapping[int, int] = _NONE,
    may_acknowledge: Collection[str] = frozenset(),
    may_unmute: Collection[str] = frozenset(),
    answer: str | None = None,
) -> Json:
    """The Home view. ``failures``: the last 24 h, newest first, muted ones included; ``muted_runs``: ids of
    runs whose alerts are muted; ``acknowledged``: who took the last run of an alert (run id → user id);
    ``subscriptions``: the person's, at most ``SUBSCRIPTION_BLOCKS`` blocks; ``pipelines``: the person's own;
    ``recovered``: a failed run → the later run that succeeded; ``may_acknowledge`` / ``may_unmute``: the
    pipelines whose alerts the person may acknowledge, whose mutes they may lift (the buttons offered);
    ``answer``: mrkdwn our code built, the answer to a click on this tab (it has no response_url)."""
    muted_failures = sum(_is_muted(r, muted_runs, mutes) for r in failures)
    failure_title = f"*Failures in the last 24 h* ({len(failures)}" + (
        f", {muted_failures} muted)" if muted_failures else ")"
    )
    refresh = button("Refresh", ids.HOME_REFRESH, "home")
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Pipelines", "emoji": True}},
        section(
            f"Run one with `{escape(command)} run <name>`, see them all with `{escape(command)} list`.",
            accessory=refresh,
        ),
    ]
    if answer:
        blocks.append(section(truncate(answer, PACK_LIMIT, "…")))
    blocks.append({"type": "divider"})
    blocks += _pipeline_rows(pipelines, now, command)
    blocks.append({"type": "divider"})
    in_flight_lines = [_run_line(r, now) for r in in_flight]
    blocks += line_sections(f"*In flight* ({len(in_flight)})", in_flight_lines, max_blocks=LIST_BLOCKS,
                            empty="_Nothing running._")
    blocks.append({"type": "divider"})
    blocks += _alert_rows(alerts, acknowledged, may_acknowledge)
    blocks.append({"type": "divider"})
    blocks += _mute_rows(mutes, may_unmute, command)
    blocks.append({"type": "divider"})
    failure_lines = [_failure_line(r, muted_runs, mutes, recovered) for r in failures]
    blocks += line_sections(failure_title, failure_lines, max_blocks=LIST_BLOCKS, empty="_No failures._")
    blocks += list(subscriptions)[:SUBSCRIPTION_BLOCKS]
    blocks.append(context(f"Updated {slack_date(now)} · Refresh, or open this tab again, to redraw"))
    return {"type": "home", "blocks": blocks[:HOME_BLOCKS]}


def _more(count: int, where: str) -> Block:
    return context(f"…and {count} more: {where}")


def _pipeline_rows(rows: Sequence[PipelineRow], now: datetime, command: str) -> list[Block]:
    """A section per pipeline with its Run button (the list's: it opens the run modal)."""
    title = f"*My pipelines* ({len(rows)}): the ones you own, watch or subscribed to"
    if not rows:
        return [section(f"{title}\n_None: the catalog's `owners` name you (or a user group you are in), or "
                        f"{code(command + ' subscribe <pipeline>')} adds one._")]
    blocks = [section(title + "\n_Last run · the last 10, oldest → newest · next scheduled run_")]
    for index, row in enumerate(rows[:PIPELINE_ROWS]):
        run = button("Run", ids.list_run_action_id(index), row.name)
        blocks.append(section(_pipeline_line(row, now), accessory=run))
    if len(rows) > PIPELINE_ROWS:
        blocks.append(_more(len(rows) - PIPELINE_ROWS, code(command + " list")))
    return blocks


_WHY = {"owner": "you own it", "watching": "you watch it", "subscribed": "you subscribed"}


def _pipeline_line(row: PipelineRow, now: datetime) -> str:
    views = [run_view(r) for r in row.runs]
    head = f"{state_emoji(views[0].run_state) if views else '⚪'} {_name(row.name)} · {_WHY.get(row.why, '')}"
    if views:
        last = views[0]
        when = last.ended_at or last.updated_at
        facts = [f"last: {state_word(last.run_state)} #{last.id} {slack_date(when)}",
                 "".join(state_emoji(v.run_state) for v in reversed(views))]
    else:
        facts = ["no runs yet"]
    facts.append(f"next run {slack_date(row.next_run)}" if row.next_run is not None else "not scheduled")
    return head + "\n" + " · ".join(facts)


def _alert_rows(alerts: Sequence[AlertView], acknowledged: Mapping[int, str], may_act: Collection[str]) -> list[Block]:
    """A section per open alert; Acknowledge (the alert's own button, checked again at click) where the person
    may and nobody has yet."""
    title = f"*Open alerts* ({len(alerts)})"
    if not alerts:
        return [section(f"{title}\n_No open alerts._")]
    blocks = [section(title)]
    for index, alert in enumerate(alerts[:ALERT_ROWS]):
        line = truncate(_alert_line(alert, acknowledged), PACK_LIMIT, "…")
        run = alert.last_run_id
        can = alert.kind is not AlertKind.UNREACHABLE and run is not None and alert.pipeline in may_act
        if can and run is not None and run not in acknowledged:
            blocks.append(section(line, accessory=button("Acknowledge", f"{ids.RUN_ACK}:{index}", str(run))))
        else:
            blocks.append(section(line))
    if len(alerts) > ALERT_ROWS:
        blocks.append(_more(len(alerts) - ALERT_ROWS, "in the alert channels"))
    return blocks


def _mute_rows(
    mutes: Mapping[str, tuple[datetime, str | None]], may_act: Collection[str], command: str
) -> list[Block]:
    title = f"*Muted* ({len(mutes)})"
    if not mutes:
        return [section(f"{title}\n_Nothing muted._")]
    ordered = sorted(mutes.items(), key=lambda kv: (kv[1][0], kv[0]))
    blocks = [section(title)]
    for index, (name, (until, who)) in enumerate(ordered[:MUTE_ROWS]):
        line = f"🔕 {_name(name)} until {slack_date(until)}" + (f" by {_who(who)}" if who else "")
        if name in may_act:
            blocks.append(section(line, accessory=button("Unmute", ids.home_unmute_action_id(index), name)))
        else:
            blocks.append(section(line))
    if len(ordered) > MUTE_ROWS:
        blocks.append(_more(len(ordered) - MUTE_ROWS, code(command + " unmute <pipeline>")))
    return blocks


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
    """The name in bold (as code if Slack would read formatting in it), cut to ``NAME_LIMIT``."""
    return named(truncate(text[: NAME_LIMIT + 1], NAME_LIMIT, "…"))


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
    line = f"{state_emoji(run.run_state)} {_name(run.name)} #{run.id} · {state_word(run.run_state)}"
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
        return f"🔌 *Cannot reach* {_name(alert.connection or '?')} since {slack_date(alert.first_at)}" + said(
            alert.message
        )
    status = f"failed {alert.count} times since" if alert.count > 1 else "failed"
    line = f"❌ {_name(alert.pipeline or '?')} {status} {slack_date(alert.first_at)}"
    if alert.last_run_id is not None:
        line += f" · run #{alert.last_run_id}"
    if alert.muted:
        line += " · 🔕 muted"
    who = acknowledged.get(alert.last_run_id) if alert.last_run_id is not None else None
    if who:
        line += f" · 👀 {_who(who)} is on it"
    return line + said(alert.message)


def _failure_line(
    run: RunView, muted_runs: Collection[int], mutes: Mapping[str, object], recovered: Mapping[int, int]
) -> str:
    when = slack_date(run.ended_at or run.updated_at)
    line = f"{state_emoji(run.run_state)} {_name(run.name)} #{run.id} · failed {when}"
    elapsed = run.duration(run.updated_at)
    if elapsed is not None:
        line += f" after {human_duration(elapsed)}"
    if _is_muted(run, muted_runs, mutes):
        line += " · 🔕 muted"
    if run.acknowledged_by:
        line += f" · 👀 {_who(run.acknowledged_by)}"
    if run.id in recovered:
        line += f" · ✅ recovered by #{recovered[run.id]}"
    return line + said(run.message or run.raw_status)
