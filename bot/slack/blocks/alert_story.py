"""The story an alert's message keeps (issue 14): its state said once (the timeline's marks differ from the
header's, so 🔴/👀/✅ appear once), its failed run's facts and links, and its
timeline, newest last, the oldest folded into "… n earlier events" when it outgrows a section. Pure."""

from __future__ import annotations

import contextlib
from datetime import datetime

from bot.models import RunState
from bot.service.views import AlertState, AlertStory, AlertView, EventKind, TimelineEntry
from bot.slack.blocks.card import final_duration, started_by, task_words
from bot.slack.blocks.escalation import pinged
from bot.slack.text import code, escape, human_duration, link, mention_user, slack_date, truncate

__all__ = ["MAX_TIMELINE", "failed_tasks", "resolved", "run_facts", "state_mark", "state_words", "timeline"]

MAX_TIMELINE = 20  # lines shown; the rest folded
TASKS_SHOWN = 10
TASK_CHARS = 200


def _who(user_id: str | None, bot: str = "the bot") -> str:
    if user_id:
        with contextlib.suppress(ValueError):
            return mention_user(user_id)
    return bot


def _run(run_id: int | None, url: str | None = None) -> str:
    label = f"#{run_id}" if run_id is not None else "a run"
    if url:
        with contextlib.suppress(ValueError):
            return link(url, label)
    return label


def resolved(alert: AlertView) -> bool:
    return alert.state is AlertState.RECOVERED and alert.recovered_at is not None


def state_mark(alert: AlertView) -> str:
    """🔴 open, 👀 acknowledged, ✅ resolved: the one place the message says its state."""
    if resolved(alert):
        return "✅"
    return "👀" if alert.story.acknowledged_by else "🔴"


def state_words(alert: AlertView) -> str:
    """What follows the failure in the header: who acknowledged it, or what resolved it and when."""
    if resolved(alert) and alert.recovered_at is not None:
        by = f" by run #{alert.recovered_by_run}" if alert.recovered_by_run else ""
        return f" · recovered {slack_date(alert.recovered_at)}{by}"
    who = alert.story.acknowledged_by
    return f" · acknowledged by {_who(who, 'someone')}" if who else ""


def _event(entry: TimelineEntry) -> str:
    when = slack_date(entry.at, "{time}")
    match entry.kind:
        case EventKind.FAILED:
            said = f"❌ failed ({_run(entry.run_id)})"
        case EventKind.REPEATED:
            said = f"❌ failed again ({_run(entry.run_id)})"
        case EventKind.REOPENED:
            said = f"↩️ reopened: failed again ({_run(entry.run_id)})"
        case EventKind.ACKNOWLEDGED:
            said = f"🙋 acknowledged by {_who(entry.actor, 'someone')}"
        case EventKind.RETRIED:
            by = _who(entry.actor) if entry.actor else "the retry policy"
            said = f"🔁 retried by {by} as {_run(entry.run_id, entry.link)}" + _retry_ended(entry)
        case EventKind.MUTED:
            until = _until(entry.detail)
            said = f"🔕 muted by {_who(entry.actor, 'someone')}" + (f" until {until}" if until else "")
        case EventKind.UNMUTED:
            said = f"🔔 unmuted by {_who(entry.actor, 'someone')}"
        case EventKind.RESOLVED:
            said = f"🟢 resolved by {_run(entry.run_id)} ({escape(entry.detail or 'succeeded')})"
        case EventKind.REMINDED:
            said = f"⏰ not acknowledged: owners pinged again ({pinged(entry.detail.split())})"
        case EventKind.ESCALATED:
            said = f"📣 escalated to {pinged(entry.detail.split())}"
    return f"{when} {said}"


def _retry_ended(entry: TimelineEntry) -> str:
    """A retry a person ended without an outcome: the failure it was to answer stands, and the line says why."""
    if entry.retry_ended is None:
        return ""
    when = f" at {slack_date(entry.retry_ended_at, '{time}')}" if entry.retry_ended_at else ""
    if entry.retry_ended == "canceled":
        by = f" by {_who(entry.retry_ended_by, 'someone')}" if entry.retry_ended_by else ""
        return f", ⏹️ canceled{by}{when}"
    return f", ❔ {_who(entry.retry_ended_by, 'someone')} stopped following it{when}"


def _until(detail: str) -> str:
    try:
        return slack_date(datetime.fromisoformat(detail))
    except ValueError:
        return ""


def timeline(story: AlertStory, room: int) -> str:
    """The timeline's text, newest last, within ``room`` characters and ``MAX_TIMELINE`` lines: the oldest lines
    give way to "… n earlier events". Empty when there is nothing to tell."""
    lines = [_event(e) for e in story.timeline]
    if not lines:
        return ""
    title = "*Timeline*"
    kept: list[str] = []
    used = len(title)
    for line in reversed(lines):
        folded = len(lines) - len(kept) - 1
        fold = len(f"\n… {folded} earlier events") if folded else 0
        if len(kept) >= MAX_TIMELINE or used + 1 + len(line) + fold > room:
            break
        kept.insert(0, line)
        used += 1 + len(line)
    hidden = len(lines) - len(kept)
    head = [title] + ([f"… {hidden} earlier event{'s' if hidden != 1 else ''}"] if hidden else [])
    return "\n".join(head + kept)


def run_facts(story: AlertStory) -> list[str]:
    """The context line: started by, attempt, duration, and the link to the run's card."""
    run = story.run
    if run is None:
        return []
    facts = [f"Started by {started_by(run)}"]
    if run.attempt > 1:
        facts.append(f"Attempt {run.attempt}")
    duration = final_duration(run)
    if duration is not None:
        facts.append(f"Duration {human_duration(duration)}")
    if story.card_link:
        with contextlib.suppress(ValueError):
            facts.append(link(story.card_link, f"Run #{run.id}'s card"))
    return facts


def failed_tasks(story: AlertStory) -> str:
    """The failed tasks of the run, one a line (at most ``TASKS_SHOWN``), without repeating the run's message."""
    run = story.run
    if run is None:
        return ""
    failed = [t for t in run.tasks if t.state is RunState.FAILED]
    if not failed:
        return ""
    lines = []
    for task in failed[:TASKS_SHOWN]:
        said = task_words(task.message, run.message)
        line = f"• {code(truncate(task.name, 100, '…'))}"
        lines.append(line + (f": {truncate(escape(said), TASK_CHARS, '…')}" if said else ""))
    if len(failed) > TASKS_SHOWN:
        lines.append(f"…and {len(failed) - TASKS_SHOWN} more")
    return "*Failed tasks*\n" + "\n".join(lines)
