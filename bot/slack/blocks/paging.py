"""The line an alert message gives its PagerDuty page: paging, paged (with the incident's dedup key, and when
PagerDuty took its acknowledgement and resolve), or refused (with PagerDuty's reason). One small function the
alert's message calls; pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.models import Json
from bot.service.views import Page, PageState
from bot.slack.blocks.card import context
from bot.slack.text import escape, slack_date, truncate
from bot.slack.text import named as bold

__all__ = ["page_line"]

Block = Json
MAX_ELEMENTS = 10  # Slack's limit on a context block


def _said(name: str, page: Page, *, named: bool, url: str | None = None) -> str:
    who = f"{bold(name)} " if named else ""
    key = f"`{escape(page.dedup_key)}`"
    if page.state is PageState.SENT:
        where = f"<{url}|PagerDuty>" if url else "PagerDuty"  # the catalog's service page: the API gives no link
        since = ""  # what PagerDuty took after the trigger: "paged" alone did not say the incident moved on
        if page.acknowledged_at is not None:
            since += f" · acknowledged there {slack_date(page.acknowledged_at)}"
        if page.resolved_at is not None:
            since += f" · resolved there {slack_date(page.resolved_at)}"
        return f"📟 {who}Paged on {where} · incident {key}{since}"
    if page.state is PageState.DEAD:
        reason = truncate(escape(" ".join(page.error.split())), 200, "…")
        return f"⚠️ {who}PagerDuty refused the page ({key}): {reason}"
    return f"📟 {who}Paging PagerDuty… · incident {key}"


def page_line(pages: Sequence[tuple[str, Page]], links: Mapping[str, str] | None = None) -> Block | None:
    """The context line of the alerts paged, ``(pipeline, page)`` each; None when none was. One alert's line does
    not repeat its name; a group's names each. ``links``: the PagerDuty service page of each pipeline that has one."""
    if not pages:
        return None
    named = len(pages) > 1
    found = links or {}
    texts = [_said(name, page, named=named, url=found.get(name)) for name, page in pages[:MAX_ELEMENTS]]
    if len(pages) > MAX_ELEMENTS:
        texts[-1] = f"📟 and {len(pages) - MAX_ELEMENTS + 1} more paged on PagerDuty"
    return context(*texts)
