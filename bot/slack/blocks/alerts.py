"""Alert messages: one failure with its buttons, or a group of failures that landed together, each
listed with its own Retry; a connection that stopped answering, and its return. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.models import Json
from bot.service.views import AlertState, AlertView, Page
from bot.slack.blocks import ids
from bot.slack.blocks.alert_story import failed_tasks, resolved, run_facts, state_mark, state_words, timeline
from bot.slack.blocks.card import button, console_button, context, mute_select, section
from bot.slack.blocks.paging import page_line
from bot.slack.text import escape, mention, named, slack_date, truncate

__all__ = ["alert_batches", "alert_group", "connection_alert", "connection_back", "credential_expiring"]

Block = Json
MAX_WITH_BUTTONS = 40  # sections with their own Retry: alerts per grouped message
MAX_BLOCKS = 50  # Slack's limit per message
SECTION_CHARS = 2900  # a section's text, under Slack's 3,000 with room to spare
MESSAGE_CHARS = 300


def _mentions(owners: Sequence[str]) -> list[str]:
    found = []
    for owner in owners:
        try:
            found.append(mention(owner))
        except ValueError:
            continue
    return list(dict.fromkeys(found))


def _owners_of(alerts: Sequence[AlertView], owners: Mapping[str, Sequence[str]]) -> list[str]:
    """The mentions an announcement of ``alerts`` makes: the owners of those not muted (resolved ones too)."""
    return _mentions([o for a in alerts if not a.muted for o in owners.get(a.pipeline or "", ())])


def _packed(mentions: Sequence[str], first_room: int) -> list[str]:
    """Mentions joined into texts that fit a section each (the first has ``first_room``), never one cut."""
    texts: list[str] = []
    line = ""
    room = first_room
    for item in mentions:
        if line and len(line) + 1 + len(item) > room:
            texts.append(line)
            line, room = "", SECTION_CHARS - len("cc ")
        line = f"{line} {item}" if line else item
    if line:
        texts.append(line)
    return texts


def _title(count: int) -> str:
    return f"⚠️ *{count} pipeline failures* landed together"


def _cc_sections(title: str, mentions: Sequence[str]) -> list[str]:
    """``title`` with its cc line, then as many sections as the remaining mentions need."""
    packed = _packed(mentions, SECTION_CHARS - len(title) - len(" · cc "))
    if not packed:
        return [title]
    return [f"{title} · cc {packed[0]}", *(f"cc {more}" for more in packed[1:])]


def alert_batches(alerts: Sequence[AlertView], *, owners: Mapping[str, Sequence[str]]) -> list[list[AlertView]]:
    """``alerts`` (one channel's, landed together) in the few messages that list them all: each message lists up
    to ``MAX_WITH_BUTTONS`` with their Retry and mentions all their owners, within Slack's limits (50 blocks,
    3,000 characters a section). Order kept."""
    batches: list[list[AlertView]] = []
    batch: list[AlertView] = []
    for alert in alerts:
        grown = [*batch, alert]
        blocks = len(_cc_sections(_title(len(grown)), _owners_of(grown, owners))) + len(grown)
        if batch and (len(grown) > MAX_WITH_BUTTONS or blocks > MAX_BLOCKS):
            batches.append(batch)
            grown = [alert]
        batch = grown
    if batch:
        batches.append(batch)
    return batches


def _status(alert: AlertView) -> str:
    if alert.count > 1:
        return f"failed {alert.count} times since {slack_date(alert.first_at)}"
    return "failed"


def _line(alert: AlertView, display: str) -> str:
    """The alert's header: its state once (🔴 open, 👀 acknowledged, ✅ resolved), what failed and why. A resolved
    alert still says what failed and why (it may be posted already resolved)."""
    name = named(truncate(alert.pipeline or "?", 80, "…"))
    run = f" · run #{alert.last_run_id}" if alert.last_run_id else ""
    until = alert.story.muted_until  # a mute set after the failure shows here too, not only in the timeline
    muted = f" · 🔕 muted until {slack_date(until)}" if until and not resolved(alert) else ""
    muted = muted or (" · 🔕 muted" if alert.muted else "")
    said = " ".join(alert.message.split())
    said_text = f"\n> {truncate(escape(said), MESSAGE_CHARS, '…')}" if said else ""
    return (
        f"{state_mark(alert)} {name} on {escape(display)} {_status(alert)}{run}{muted}{state_words(alert)}{said_text}"
    )


def alert_group(
    key: str,
    alerts: Sequence[AlertView],
    *,
    owners: Mapping[str, Sequence[str]],
    display_names: Mapping[str, str],
    pages: Mapping[int, Page] | None = None,
    page_links: Mapping[str, str] | None = None,
) -> tuple[str, str, list[Block]]:
    """The message announcing ``alerts`` (failures of one channel that landed together), with the PagerDuty line
    of those paged (``pages`` by alert id; ``page_links``: the PagerDuty service page by pipeline).

    ``owners`` and ``display_names`` are by pipeline. Owners of alerts not muted are mentioned; a recovered
    alert keeps its line, its message and its owners, marked recovered (resolved before it was posted, it
    is announced all the same; an edit notifies nobody again).
    """
    key, text, blocks = _group(key, alerts, owners=owners, display_names=display_names)
    paged = page_line([(alert_name(a), pages[a.id]) for a in alerts if pages and a.id in pages], page_links)
    if paged is not None and len(blocks) < MAX_BLOCKS:
        blocks.append(paged)
    return key, text, blocks


def _group(
    key: str, alerts: Sequence[AlertView], *, owners: Mapping[str, Sequence[str]], display_names: Mapping[str, str]
) -> tuple[str, str, list[Block]]:
    open_ones = [a for a in alerts if a.state is not AlertState.RECOVERED]
    cc = _owners_of(alerts, owners)
    if len(alerts) == 1:
        return key, *_single(alerts[0], display_names.get(alert_name(alerts[0]), ""), cc)
    blocks: list[Block] = [section(text) for text in _cc_sections(_title(len(alerts)), cc)]
    for i, alert in enumerate(alerts[:MAX_WITH_BUTTONS]):
        accessory = None
        if alert.last_run_id is not None and alert.state is not AlertState.RECOVERED:
            accessory = button("Retry", f"{ids.RUN_RETRY}:{i}", str(alert.last_run_id))
        blocks.append(section(_line(alert, display_names.get(alert_name(alert), "")), accessory=accessory))
    # a group larger than alert_batches makes (announced before groups were split): the rest as text lines
    rest = [_line(a, display_names.get(alert_name(a), "")).split("\n")[0] for a in alerts[MAX_WITH_BUTTONS:]]
    while rest and len(blocks) < MAX_BLOCKS - 1:
        chunk: list[str] = []
        while rest and len("\n".join([*chunk, rest[0]])) < SECTION_CHARS:
            chunk.append(rest.pop(0))
        blocks.append(section("\n".join(chunk)))
    if rest:  # beyond one message's room: say so rather than drop them silently
        blocks.append(context(f"…and {len(rest)} more: see the App Home"))
    recovered = len(alerts) - len(open_ones)
    summary = f"{len(alerts)} pipeline failures" + (f", {recovered} recovered" if recovered else "")
    return key, summary, blocks


def alert_name(alert: AlertView) -> str:
    return alert.pipeline or ""


def _single(alert: AlertView, display: str, cc: Sequence[str]) -> tuple[str, list[Block]]:
    """One alert's message: header, owners, the error, failed tasks, the run's facts and links, the timeline, and
    the buttons while it is open. The owners stay in every version (an edit notifies nobody again)."""
    name = escape(alert.pipeline or "?")
    head = _line(alert, display).split("\n")[0]
    packed = _packed(cc, SECTION_CHARS - len(head) - len("\ncc "))
    blocks: list[Block] = [section(head + (f"\ncc {packed[0]}" if packed else ""))]
    blocks.extend(section(f"cc {more}") for more in packed[1:])
    said = alert.message.strip()
    if said:
        blocks.append(section("*Message*\n" + truncate(escape(said), SECTION_CHARS - len("*Message*\n"))))
    story = alert.story
    tasks = failed_tasks(story)
    if tasks:
        blocks.append(section(truncate(tasks, SECTION_CHARS, "…")))
    facts = run_facts(story)
    if facts:
        blocks.append(context(*facts))
    told = timeline(story, SECTION_CHARS)
    if told:
        blocks.append(section(told))
    elements: list[Block] = []
    if alert.last_run_id is not None and alert.state is not AlertState.RECOVERED:
        run = alert.last_run_id
        elements += [
            button("Retry", ids.RUN_RETRY, str(run), style="primary"),
            *([] if story.acknowledged_by else [button("Acknowledge", ids.RUN_ACK, str(run))]),
            mute_select(run),
        ]
    console = console_button(alert.last_run_id or 0, story.console_url)
    if console is not None:
        elements.append(console)
    if elements:
        blocks.append({"type": "actions", "elements": elements})
    text = f"{name} failed" + (", since recovered" if alert.state is AlertState.RECOVERED else "")
    return text, blocks


def connection_alert(
    alert: AlertView, display: str, *, back: bool, removed: bool = False
) -> tuple[str, list[Block]]:
    """The one "cannot reach" message of a connection; rewritten once it answers again, or once it was removed
    from the catalog (nothing polls it any more: it was closed at start, not heard from)."""
    conn = escape(alert.connection or "?")
    if back and removed and alert.recovered_at is not None:
        text = (
            f"🗑️ Connection {named(alert.connection or '?')} was removed from the configuration; it had not "
            f"answered since {slack_date(alert.first_at)}. Its alert was closed {slack_date(alert.recovered_at)}."
        )
    elif back and alert.recovered_at is not None:
        text = (
            f"✅ {escape(display)} ({conn}) answers again since {slack_date(alert.recovered_at)}; "
            f"it had not answered since {slack_date(alert.first_at)}."
        )
    else:
        text = (
            f"🔌 *Cannot reach {escape(display)}* ({conn}) since {slack_date(alert.first_at)}: "
            f"{truncate(escape(' '.join(alert.message.split())), 500, '…')}\n"
            "Runs on it show *status unknown*; none is reported failed for this, and their real outcome "
            "will show once it answers."
        )
    return text, [section(text)]


def connection_back(alert: AlertView, display: str, *, removed: bool = False) -> tuple[str, list[Block]]:
    assert alert.recovered_at is not None
    text = f"✅ {escape(display)} ({escape(alert.connection or '?')}) is back: runs on it are followed again."
    if removed:
        text = (
            f"🗑️ Connection {named(alert.connection or '?')} was removed from the configuration: its "
            "\"cannot reach\" alert is closed (it was not heard from again)."
        )
    return text, [section(text)]


def credential_expiring(connection: str, display: str, expires: datetime, how: str) -> tuple[str, list[Block]]:
    """The one notice before a credential the bot cannot renew expires; its expiry is the connection's alert."""
    text = (
        f"⏳ *The {escape(display)} credential* of connection {named(connection)} *expires {slack_date(expires)}*: "
        f"after that, runs on it show *status unknown* until it is renewed. {truncate(escape(how), 1000, '…')}"
    )
    return text, [section(text)]
