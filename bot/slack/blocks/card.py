"""The run card: the one message per run, edited in place as the run moves on.

The card is rebuilt from the stored run on every poll and sent only when its JSON changed, so nothing on it
may depend on the clock except the "status unknown since" note (which flips once). Durations appear only
when the run is final; dates are ``<!date>`` tokens that each reader's client renders.

This module also holds the few element builders the other builders share (buttons, confirm dialogs,
sections, context lines, options), so every surface gets the same limits by construction.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta

from bot.models import Json, RunState, TaskStatus
from bot.ops.text import named_within
from bot.service.events import CardView
from bot.service.rights import OWNER_MUTE_CAP
from bot.service.views import RunOrigin, RunView
from bot.slack.blocks import ids
from bot.slack.text import (
    code,
    escape,
    human_duration,
    link,
    mention,
    mention_user,
    mrkdwn,
    named,
    plain_text,
    slack_date,
    truncate,
)

__all__ = [
    "MAX_TASKS",
    "Block",
    "CardView",
    "button",
    "confirm_dialog",
    "console_button",
    "context",
    "option",
    "provider_context",
    "run_card",
    "section",
    "state_emoji",
    "state_word",
    "task_words",
    "word_and_raw",
]

Block = Json

MAX_TASKS = 10
MAX_PAGED = 20  # owners named on a card's "paged" line: the alert itself mentions them all
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
CONTEXT_LIMIT = 2000  # per element: a context line is meant to be short
BUTTON_TEXT_LIMIT = 75
URL_LIMIT = 3000
OUTSIDE_SLACK = "outside Slack (schedule or console)"
STUCK_EMOJI = "⏳"
STUCK_PHRASE = "may be stuck"
SCHEDULED = "the bot, on its schedule (`/pipeline schedules`)"

_EMOJI: dict[RunState | None, str] = {
    None: "🚀",
    RunState.QUEUED: "⏳",
    RunState.RUNNING: "▶️",
    RunState.SUCCEEDED: "✅",
    RunState.FAILED: "❌",
    RunState.CANCELED: "⏹️",
    RunState.UNKNOWN: "❔",
}
_PHRASE: dict[RunState | None, str] = {
    None: "is starting",
    RunState.QUEUED: "is queued",
    RunState.RUNNING: "is running",
    RunState.SUCCEEDED: "succeeded",
    RunState.FAILED: "failed",
    RunState.CANCELED: "was canceled",
    RunState.UNKNOWN: "is in an unknown state",
}


# -- shared element builders -------------------------------------------------------------------------


def state_emoji(state: RunState | None) -> str:
    """The one emoji per state used on every surface (cards, lists, trends); None is "starting"."""
    return _EMOJI[state]


def state_word(state: RunState | None) -> str:
    return "starting" if state is None else state.value


def section(text: str, *, accessory: Block | None = None) -> Block:
    """A mrkdwn section cut to Slack's 3000 characters with the truncation note."""
    block: Block = {"type": "section", "text": mrkdwn(text, SECTION_LIMIT)}
    if accessory is not None:
        block["accessory"] = accessory
    return block


def context(*texts: str) -> Block:
    """A context line of up to 10 mrkdwn elements (Slack's limit); empty texts are dropped."""
    elements = [mrkdwn(t, CONTEXT_LIMIT) for t in texts if t][:10]
    return {"type": "context", "elements": elements}


def confirm_dialog(title: str, text: str, confirm: str, deny: str = "Back", *, danger: bool = True) -> Block:
    """Slack's own "are you sure" dialog: the click reaches us only after the person confirmed."""
    dialog: Block = {
        "title": plain_text(title, 100),
        "text": mrkdwn(text, 300),
        "confirm": plain_text(confirm, 30),
        "deny": plain_text(deny, 30),
    }
    if danger:
        dialog["style"] = "danger"
    return dialog


def button(
    label: str,
    action_id: str,
    value: str,
    *,
    style: str | None = None,
    confirm: Block | None = None,
    url: str | None = None,
) -> Block:
    """A button within the limits; a value past 2000 characters is a bug in the caller, so it raises."""
    if len(value) > 2000:
        raise ValueError(f"button value of {len(value)} characters: Slack allows 2000")
    element: Block = {
        "type": "button",
        "action_id": action_id,
        "text": plain_text(label, BUTTON_TEXT_LIMIT),
        "value": value,
    }
    if style is not None:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    if url is not None:
        element["url"] = url
    return element


def console_button(run_id: int, url: str | None, label: str = "Open in console") -> Block | None:
    """A link button to the provider's console, or None when the URL is unknown or not a plain http(s) URL."""
    if url is None or len(url) > URL_LIMIT or not url.startswith(("https://", "http://")):
        return None
    return button(label, ids.RUN_CONSOLE, str(run_id), url=url)


def option(label: str, value: str) -> Block:
    """An option of a select: label cut to 75 characters; values are the caller's, at most 150."""
    if len(value) > 150:
        raise ValueError(f"option value of {len(value)} characters: Slack allows 150")
    return {"text": plain_text(label, 75), "value": value}


# -- the card ------------------------------------------------------------------------------------------


def is_live(run: RunView) -> bool:
    """Starting, queued, running, or an unknown raw status the provider may still move on from."""
    state = run.run_state
    return state is None or (not run.final and not state.is_terminal)


def final_duration(run: RunView) -> timedelta | None:
    """The run's duration once it ended; never computed from the clock, so a card cannot churn on it."""
    if run.ended_at is None or not (run.final or (run.run_state is not None and run.run_state.is_terminal)):
        return None
    return run.ended_at - (run.started_at or run.created_at)


def run_card(view: CardView) -> tuple[str, list[Block]]:
    """The card's fallback text and blocks."""
    blocks: list[Block] = [_header(view), _facts(view.run, view.attempts)]
    blocks += _message(view.run, view.display_name)
    blocks += task_blocks(view.run.tasks, run_message=view.run.message, ended=view.run.final)
    blocks.append(context(*_meta(view)))
    notes = _notes(view)
    if notes:
        blocks.append(context(*notes))
    paged = _paged(view)
    if paged:
        blocks.append(context(paged))
    actions = _actions(view)
    if actions:
        blocks.append({"type": "actions", "block_id": "run_actions", "elements": actions})
    return _fallback(view), blocks


def is_stuck(view: CardView) -> bool:
    """Warned of as stuck and still going: the header says so, not only the warning in the thread."""
    return view.stuck_since is not None and is_live(view.run)


def _title(view: CardView, limit: int) -> str:
    run = view.run
    emoji, phrase = state_emoji(run.run_state), _PHRASE[run.run_state]
    if run.stopped_by:
        phrase = "is no longer followed"
    if is_stuck(view):
        emoji, phrase = STUCK_EMOJI, STUCK_PHRASE
    room = limit - len(emoji) - len(phrase) - 2
    return f"{emoji} {truncate(escape(run.name), room, '…')} {phrase}"


def _header(view: CardView) -> Block:
    return {"type": "header", "text": plain_text(_title(view, HEADER_LIMIT), HEADER_LIMIT)}


def _fallback(view: CardView) -> str:
    """The notification text: what happened, and for a failure the start of the provider's words."""
    run = view.run
    text = f"{_title(view, 300)} (run #{run.id})"
    if run.run_state is RunState.FAILED and run.message:
        text += ": " + truncate(escape(" ".join(run.message.split())), 300, "…")
    return text


def started_by(run: RunView) -> str:
    """A mention of the person who started the run, or where it came from."""
    if run.started_by:
        try:
            return mention_user(run.started_by)
        except ValueError:
            pass
    if run.origin is RunOrigin.SCHEDULE:
        return SCHEDULED
    return OUTSIDE_SLACK


def _facts(run: RunView, attempts: int | None = None) -> Block:
    """Human words only: the state as a word, the run as ``#n``; the provider's own code and id are in
    the context line (``provider_context``)."""
    state = state_word(run.run_state)
    number = f"#{run.id}"
    fields = [
        ("State", state),
        ("Started by", started_by(run)),
        ("Started", slack_date(run.started_at or run.created_at)),
    ]
    duration = final_duration(run)
    if duration is not None:
        fields.append(("Duration", human_duration(duration)))
    fields.append(("Run", number))
    if run.attempt > 1 or (attempts or 1) > 1:
        fields.append(("Attempt", f"{run.attempt} of {attempts}" if attempts else str(run.attempt)))
    return {"type": "section", "fields": [mrkdwn(f"*{k}*\n{v}", FIELD_LIMIT) for k, v in fields]}


def message_text(message: str, heading: str) -> str:
    """A provider's message, escaped and cut so heading plus message fit one section."""
    room = SECTION_LIMIT - len(heading) - 1
    return f"{heading}\n{truncate(escape(message.strip()), room)}"


def _message(run: RunView, display_name: str) -> list[Block]:
    if never_started(run):  # the message is the bot's own: the provider never heard of the run
        return [section(canceled_before_start(run, display_name))]
    if run.stopped_by:  # the bot's words too: the provider was never asked
        return [section(stopped_following(run, display_name))]
    if not run.message.strip():
        return []
    heading = f"*{truncate(escape(display_name), 100, '…')} says*"
    return [section(message_text(run.message, heading))]


def never_started(run: RunView) -> bool:
    """Canceled while it waited its turn (a retry's backoff, a provider's cap): nothing of it was ever sent."""
    return run.run_state is RunState.CANCELED and run.provider_run_id is None


def canceled_before_start(run: RunView, display_name: str) -> str:
    """Who canceled a run that never started, in the bot's words (its stored message is the bot's, not the
    provider's: "*InVision says* canceled at …" attributed it to a provider that never heard of the run)."""
    who = ""
    if run.canceled_by:
        with contextlib.suppress(ValueError):
            who = f" by {mention_user(run.canceled_by)}"
    return f"Canceled{who} before it started: it never ran on {escape(display_name)}."


def stopped_following(run: RunView, display_name: str) -> str:
    """Who ended a run the bot could not follow any more, and what that means for its outcome."""
    who = "Someone"
    with contextlib.suppress(ValueError):
        who = mention_user(run.stopped_by or "")
    why = run.stopped_why or "its connection was no longer in the bot's catalog (pipelines.yml)"
    said = truncate(named_within(why, run.connection), 400, "…")
    return (
        f"{who} stopped following it: {said}, so how it ended is unknown; it may still run "
        f"on {escape(display_name)}: see its console."
    )


def word_and_raw(state: RunState, raw_status: str) -> str:
    """A state in words; the provider's code after it only when the word alone says nothing (unknown)."""
    word = state.value
    if state is RunState.UNKNOWN and raw_status.strip():
        word += f" ({code(truncate(raw_status, 40, '…'))})"
    return word


def _flat(text: str) -> str:
    return " ".join(text.split())


def task_words(task_message: str, run_message: str) -> str:
    """What a failed task's line adds to the run's message, shown above it: nothing when the run's message says
    it all; the task's own words less the run's message when it embeds it (Rivery: "load Failed: <the run's
    message>"), so the message is said once."""
    said, run = _flat(task_message), _flat(run_message)
    if not said or said in run:
        return ""
    if run and run in said:
        return said.replace(run, "").strip(" :-–—·")
    return said


def _task_line(task: TaskStatus, run_message: str, *, ended: bool = False) -> str:
    name = truncate(escape(task.name), 100, "…")
    if ended and task.state.is_live:  # the run ended without the provider saying how its task did
        return f"{state_emoji(RunState.UNKNOWN)} {name} · {task.state.value} when last seen"
    line = f"{state_emoji(task.state)} {name} · {word_and_raw(task.state, task.raw_status)}"
    said = task_words(task.message, run_message)
    if task.state is RunState.FAILED and said:
        line += ": " + truncate(escape(said), 120, "…")
    return line


def task_blocks(
    tasks: Sequence[TaskStatus], *, failed_only: bool = False, run_message: str = "", ended: bool = False
) -> list[Block]:
    """At most ``MAX_TASKS`` tasks, failed ones first with their messages (unless the run's ``run_message``,
    shown above them, already says it), then a count of the rest. ``ended``: the run has ended, so a task still
    queued or running in its last status (a run no longer followed, ended unknown) is shown as last seen, without
    the running mark."""
    chosen = [t for t in tasks if t.state is RunState.FAILED] if failed_only else list(tasks)
    if not chosen:
        return []
    ordered = sorted(chosen, key=lambda t: t.state is not RunState.FAILED)  # stable: keeps provider order
    shown, rest = ordered[:MAX_TASKS], ordered[MAX_TASKS:]
    failed = sum(t.state is RunState.FAILED for t in tasks)
    title = "*Failed tasks*" if failed_only else f"*Tasks* ({len(tasks)}, {failed} failed)"
    if ended and any(t.state.is_live for t in tasks):
        title += ", as last seen"
    lines = [title, *(_task_line(t, run_message, ended=ended) for t in shown)]
    if rest:
        lines.append(f"…and {len(rest)} more ({_tally(rest)})")
    return [section("\n".join(lines))]


def _tally(tasks: Sequence[TaskStatus]) -> str:
    counts = Counter(t.state for t in tasks)
    return ", ".join(f"{n} {state.value}" for state, n in sorted(counts.items(), key=lambda kv: kv[0].value))


def parameters_text(parameters: Mapping[str, str], limit: int = 10) -> str:
    """``key=value`` pairs in code, escaped; past ``limit`` pairs, a count."""
    pairs = [code(truncate(f"{k}={v}", 150, "…")) for k, v in sorted(parameters.items())]
    text = ", ".join(pairs[:limit])
    if len(pairs) > limit:
        text += f" and {len(pairs) - limit} more"
    return text


def provider_context(display_name: str, provider_run_id: str | None, raw_status: str) -> str:
    """The provider's own words for the run, for a context line: its run id and its raw status code."""
    who = truncate(escape(display_name), 100, "…")
    parts = []
    if provider_run_id:
        parts.append(f"{who} run {code(truncate(provider_run_id, 200, '…'))}")
    if raw_status.strip():
        parts.append(f"{who} status {code(truncate(raw_status, 200, '…'))}")
    return " · ".join(parts)


def _meta(view: CardView) -> list[str]:
    meta = [f"{truncate(escape(view.display_name), 100, '…')} · {truncate(escape(view.job_text), 500, '…')}"]
    meta.append(provider_context(view.display_name, view.run.provider_run_id, view.run.raw_status))
    if view.run.parameters:
        meta.append("Parameters: " + parameters_text(view.run.parameters))
    if view.workflow_link:
        meta.append(truncate(escape(view.workflow_link), 300, "…"))
    return meta


def _notes(view: CardView) -> list[str]:
    run = view.run
    notes: list[str] = []
    if run.warning.strip():
        notes.append("⚠️ " + truncate(escape(run.warning.strip()), 1000))
    if run.waiting and run.next_poll_at is not None and run.extra.get("waiting_for"):
        notes.append(
            f"⏳ waiting for {escape(view.display_name)}'s rate limit, starts at "
            f"{slack_date(run.next_poll_at, '{time}')} ({truncate(escape(str(run.extra['waiting_for'])), 300, '…')})"
        )
    if is_stuck(view) and view.stuck_since is not None:
        notes.append(f"{STUCK_EMOJI} Running longer than expected since {slack_date(view.stuck_since)}: see the thread")
    if _unknown_for_long(view) and run.unknown_since is not None and view.gone_connection is not None:
        notes.append(
            f"❔ status unknown since {slack_date(run.unknown_since)}: its connection "
            f"{named(truncate(view.gone_connection, 100, '…'))} is no longer in the bot's catalog (pipelines.yml), "
            "so the bot cannot ask how it went: see the provider's console, put the connection back, or stop "
            "following it"
        )
    elif _unknown_for_long(view) and run.unknown_since is not None:
        notes.append(
            f"❔ status unknown since {slack_date(run.unknown_since)}: {escape(view.display_name)} is not "
            "answering; the run's real outcome will be shown when it answers"
        )
    if run.acknowledged_by:
        notes.append(_acknowledged(run.acknowledged_by))
    if view.retry_of_link or run.retry_of is not None:
        notes.append("🔁 Retry of " + _retry_of(view))
    if view.retried_as is not None:
        notes.append(f"↪️ Retried as #{view.retried_as}")
    if view.muted_until is not None:
        notes.append(f"🔕 Alerts muted until {slack_date(view.muted_until)}")
    return notes


def _unknown_for_long(view: CardView) -> bool:
    since = view.run.unknown_since
    return since is not None and not view.run.final and view.now - since >= view.unknown_after


def _acknowledged(user_id: str) -> str:
    try:
        return f"👀 {mention_user(user_id)} is on it"
    except ValueError:
        return "👀 someone is on it"


def _paged(view: CardView) -> str:
    """Who the failure's alert paged, and a link to it (issue 14: the card and the alert point at each other)."""
    said: list[str] = []
    for owner in view.paged[:MAX_PAGED]:
        with contextlib.suppress(ValueError):  # an entry that is not a user or group id pages nobody
            said.append(mention(owner))
    text = f"🔔 Paged {' '.join(dict.fromkeys(said))}" if said else ""
    if view.alert_link:
        with contextlib.suppress(ValueError):
            text += (" · " if text else "") + link(view.alert_link, "See the alert")
    return text


def _retry_of(view: CardView) -> str:
    label = f"#{view.run.retry_of}" if view.run.retry_of is not None else "the previous run"
    target = view.retry_of_link
    if target is None:
        return label
    if target.startswith(("https://", "http://")):
        try:
            return link(target, label)
        except ValueError:
            return label
    return truncate(escape(target), 200, "…")


def _actions(view: CardView) -> list[Block]:
    run = view.run
    console = console_button(run.id, view.console_url)
    if is_live(run):
        elements = [button("Refresh", ids.RUN_REFRESH, str(run.id))]
        if view.can_cancel:
            elements.append(_cancel_button(run))
        elif view.gone_connection is not None and run.provider_run_id is not None:
            elements.append(_stop_following_button(run, view.gone_connection))
    elif run.run_state is RunState.CANCELED and run.provider_run_id is not None:
        # stopped once it reached the provider: it did not fail (nothing to acknowledge or mute), but it may be run
        # again as it was (its retry, one per run); it had no Retry anywhere, `/pipeline run` from scratch
        elements = [button("Retry", ids.RUN_RETRY, str(run.id), style="primary")] if view.retried_as is None else []
    elif run.run_state in (RunState.SUCCEEDED, RunState.CANCELED):
        elements = []  # it did not fail: nothing to retry, acknowledge or mute
    else:
        elements = _alert_buttons(view)
    return [*elements, console] if console is not None else elements


def _cancel_button(run: RunView) -> Block:
    question = f"Cancel this run of {truncate(escape(run.name), 200, '…')}?"
    dialog = confirm_dialog("Cancel this run?", question, "Cancel run", "Keep it running")
    return button("Cancel", ids.RUN_CANCEL, str(run.id), style="danger", confirm=dialog)


def _stop_following_button(run: RunView, connection: str) -> Block:
    question = (
        f"Its connection {named(truncate(connection, 100, '…'))} is no longer in the bot's catalog, so it cannot be "
        "canceled nor followed from here. It ends here as unknown; it may still run at its provider."
    )
    dialog = confirm_dialog("Stop following this run?", question, "Stop following", "Keep it")
    return button("Stop following", ids.RUN_STOP_FOLLOWING, str(run.id), style="danger", confirm=dialog)


def _alert_buttons(view: CardView) -> list[Block]:
    run = view.run
    elements: list[Block] = []
    if view.retried_as is None:
        elements.append(button("Retry", ids.RUN_RETRY, str(run.id), style="primary"))
    # a failure always alerts (or would, unmuted); a run that ended unknown or did not start alerts only in
    # some cases (a schedule's missed slot): Acknowledge and Mute only where there is an alert to act on
    if run.run_state is not RunState.FAILED and not view.alerted:
        return elements
    if not run.acknowledged_by:
        elements.append(button("Acknowledge", ids.RUN_ACK, str(run.id)))
    elements.append(mute_select(run.id))
    return elements


def mute_select(run_id: int) -> Block:
    """The Mute menu: each option carries the run and the period, so the click needs no other state. The menu is
    the same for everyone who sees the message: a period beyond the owners' cap says who may pick it (an owner who
    does is refused, with who may)."""
    return {
        "type": "static_select",
        "action_id": ids.RUN_MUTE,
        "placeholder": plain_text("Mute…", 150),
        "options": [option(mute_label(label, seconds), ids.mute_value(run_id, seconds)) for label, seconds in
                    ids.MUTE_CHOICES],
    }


def mute_label(label: str, seconds: int) -> str:
    """``1 week (needs allow_change)``: the periods owners may not pick (``OWNER_MUTE_CAP``) say so."""
    return f"{label} (needs allow_change)" if timedelta(seconds=seconds) > OWNER_MUTE_CAP else label
