"""The thread replies of an alert nobody acknowledged (catalog ``escalate_after``): its owners pinged once more,
then ``escalate_to``; and the mentions its timeline lines show. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from bot.slack.blocks.card import Block
from bot.slack.blocks.replies import notice
from bot.slack.text import escape, human_duration, mention, named

__all__ = ["MAX_PINGED", "escalation_message", "pinged"]

MAX_PINGED = 20  # mentions in one reply: a long list is a catalog mistake, not a reason to fill the thread


def pinged(whom: Sequence[str]) -> str:
    """The user and group ids as mentions (an entry that is neither mentions nobody); "nobody" when none is left."""
    found: list[str] = []
    for entry in whom:
        try:
            found.append(mention(entry))
        except ValueError:
            continue
    kept = list(dict.fromkeys(found))
    shown = " ".join(kept[:MAX_PINGED]) + (f" and {len(kept) - MAX_PINGED} more" if len(kept) > MAX_PINGED else "")
    return shown or "nobody"


def escalation_message(
    pipeline: str, display_name: str, *, step: int, whom: Sequence[str], open_for: timedelta
) -> tuple[str, list[Block]]:
    """Ping ``step`` (1: the owners once more, 2: ``escalate_to``), as a reply in the alert's thread."""
    name = f"{named(pipeline)} on {escape(display_name)}"
    ago = human_duration(open_for)
    if step == 1:
        said = (
            f"⏰ {name} failed {ago} ago and nobody has acknowledged it yet. {pinged(whom)}: can one of you take it? "
            "Acknowledge it on the alert, so the others know."
        )
    else:
        said = (
            f"📣 Escalated to {pinged(whom)}: {name} failed {ago} ago; its owners were pinged again and nobody has "
            "acknowledged it yet."
        )
    return notice(said, formatted=True)
