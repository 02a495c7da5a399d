"""A Workflow Builder step's error is plain text made from our mrkdwn replies: Slack's markup becomes words."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.ops.text import escape, mention_group, slack_date
from bot.service.function_steps import _plain


def test_a_date_reads_as_its_fallback_and_a_group_as_its_id() -> None:
    when = datetime(2026, 12, 7, 3, 10, tzinfo=UTC)
    text = _plain(f"*Paused* until {slack_date(when)}: ask {mention_group('S0DATAENG')} in <#C0OPS>.")
    assert text == "Paused until 2026-12-07 03:10 UTC: ask @S0DATAENG in #C0OPS."


def test_untrusted_text_stays_escaped_and_stray_markup_is_shown_not_read() -> None:
    assert _plain(f"failed: {escape('<!here> a & b')} <!everyone>") == "failed: &lt;!here&gt; a &amp; b &lt;!everyone&gt;"
