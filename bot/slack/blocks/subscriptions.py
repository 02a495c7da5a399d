"""Subscriptions on Slack: what a subscribed channel (or the DM of a person who asked "notify me") is told of a
run, the ``subscriptions`` list, and the Home tab's "My subscriptions" with its Unsubscribe buttons. Pure.

Names come from the catalog and messages from providers: everything is escaped; each section stays under
Slack's 3,000 characters and the Home part under its share of blocks, however many subscriptions there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.models import RunState
from bot.service.events import SubscriberNote
from bot.service.subscriptions import SubscriptionView
from bot.service.views import run_view
from bot.slack.blocks import ids
from bot.slack.blocks.card import Block, button, context, final_duration, section, state_emoji, state_word
from bot.slack.blocks.home import SUBSCRIPTION_BLOCKS, line_sections, said
from bot.slack.text import code, escape, human_duration, link, named, truncate

__all__ = ["home_subscriptions", "subscriber_message", "subscriptions_list"]

_ROWS = SUBSCRIPTION_BLOCKS - 3  # a divider, a title and "…and N more" around them
_NAME = 80


def subscriber_message(
    note: SubscriberNote, *, card: tuple[str, str | None] | None, command: str
) -> tuple[str, list[Block]]:
    """``card``: the run card's channel and its permalink (None while unknown)."""
    view = run_view(note.run)
    name = named(truncate(note.run.name[: _NAME + 1], _NAME, "…"))
    state = view.run_state
    took = final_duration(view)
    after = f" after {human_duration(took)}" if took is not None and took >= timedelta(0) else ""
    where = _card_text(card)
    if note.why == "started":
        provider = escape(note.display_name)
        head = f"{state_emoji(state)} Your run #{view.id} of {name} on {provider} {_ended(state)}{after}."
        why = f"You asked to be told when your runs end: {code(command + ' notify me off')} stops it."
    else:
        if note.failure:
            head = f"🔴 {name} failed on {escape(note.display_name)} (run #{view.id}){after}."
        else:
            head = (
                f"{state_emoji(state)} {name} run #{view.id} on {escape(note.display_name)} {_ended(state)}{after}."
            )
        kind, _, target = note.why.partition(" ")
        why = (
            f"This channel is subscribed to {escape(kind)} {named(target[:_NAME])}: "
            + code(f"{command} unsubscribe {target[:_NAME]}")
            + " stops it."
        )
    body = head
    if state in (RunState.FAILED, RunState.UNKNOWN) and (note.run.message or note.run.raw_status):
        body += said(note.run.message or note.run.raw_status, 500)
    facts = [where] if where else []
    if note.alert_channel and note.failure:
        facts.append(f"the alert is in {_channel(note.alert_channel)}")
    console = _link(note.console_url, "open in console")
    if console:
        facts.append(console)
    blocks = [section(body), context(" · ".join(facts), why) if facts else context(why)]
    return truncate(f"{head}", 3000), blocks


def subscriptions_list(
    subscriptions: Sequence[SubscriptionView], *, mine: bool, notify_me: bool, command: str
) -> tuple[str, list[Block]]:
    """The reply to ``subscriptions`` (``mine``: the person's own)."""
    title = "*Your subscriptions*" if mine else "*Subscriptions in this workspace*"
    title += f" ({len(subscriptions)})"
    lines = [_line(s, who=not mine) for s in subscriptions]
    empty = f"_None yet: {code(command + ' subscribe <pipeline|tag|provider> [#channel] [failures|all]')} adds one._"
    blocks = line_sections(title, lines, max_blocks=20, empty=empty)
    told = "on" if notify_me else "off"
    blocks.append(context(f"Notify me of the runs I start: *{told}* ({code(command + ' notify me on|off')})"))
    return truncate(f"{len(subscriptions)} subscriptions", 3000), blocks


def home_subscriptions(
    subscriptions: Sequence[SubscriptionView], *, notify_me: SubscriptionView | None, command: str
) -> list[Block]:
    """The Home tab's "My subscriptions": one row per subscription with its Unsubscribe button, at most
    ```SUBSCRIPTION_BLOCKS`` blocks whatever their number."""
    rows: list[SubscriptionView] = ([notify_me] if notify_me is not None else []) + list(subscriptions)
    blocks: list[Block] = [
        {"type": "divider"},
        section(
            f"*My subscriptions* ({len(subscriptions)})"
            + ("" if rows else f"\n_None: {code(command + ' subscribe <pipeline>')} adds one._")
        ),
    ]
    room = _ROWS
    if notify_me is None:  # off says so too (only "on" showed: off and unknown looked the same)
        blocks.append(section(f"🔕 Notify me: *off* · {code(command + ' notify me')} DMs you when your runs end"))
        room -= 1
    for index, subscription in enumerate(rows[:room]):
        label = "Turn off" if subscription.notify_me else "Unsubscribe"
        accessory = button(label, f"{ids.SUB_REMOVE}:{index}", str(subscription.id))
        blocks.append(section(_line(subscription, who=False), accessory=accessory))
    if len(rows) > room:
        blocks.append(context(f"…and {len(rows) - room} more: {code(command + ' subscriptions mine')} lists them all"))
    return blocks


def _line(subscription: SubscriptionView, *, who: bool) -> str:
    if subscription.notify_me:
        return "🔔 Notify me: *on* · DM me when the runs I start end"
    what = "every run's end" if subscription.everything else "failures"
    target = named(truncate(subscription.target[: _NAME + 1], _NAME, "…"))
    line = f"🔔 {_channel(subscription.channel)} · {escape(subscription.kind)} {target} · {what}"
    return line + (f" · by <@{subscription.created_by}>" if who and subscription.created_by[:1] in ("U", "W") else "")


def _card_text(card: tuple[str, str | None] | None) -> str:
    if card is None:
        return ""
    channel, permalink = card
    linked = _link(permalink, "its card")
    return f"{linked} in {_channel(channel)}" if linked else f"its card is in {_channel(channel)}"


def _link(url: str | None, label: str) -> str:
    """A link, or nothing for a URL Slack could not link (not http(s), too long, with spaces)."""
    if url is None or len(url) > 2000:
        return ""
    try:
        return link(url, label)
    except ValueError:
        return ""


def _channel(channel: str) -> str:
    return f"<#{channel}>" if channel[:1] in ("C", "G") and channel.isalnum() else escape(channel)


def _ended(state: RunState | None) -> str:
    return (
        {
            RunState.SUCCEEDED: "succeeded",
            RunState.FAILED: "failed",
            RunState.CANCELED: "was canceled",
        }.get(state, f"ended {state_word(state)}")
        if state is not None
        else "ended"
    )
