"""Hostile names through ``named`` and the builders around Stop following and approvals: a line break or a space at
a name's edge showed the bold's stars, a connection with ``*`` broke the Stop following dialog's text, and an
approval step named past 64 characters could not be decided from its buttons."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.slack.blocks import ids, run_card
from bot.slack.blocks.workflow import parse_step_value, step_value
from bot.slack.text import named
from tests.unit.slack.test_blocks import T0, check_message, make_run, view_of


def test_a_name_with_a_line_break_or_spaces_at_its_edges_is_shown_as_written() -> None:
    assert named("eu\nprod") == "`eu prod`"  # ``*eu\nprod*``: the bold ends at the break, its stars shown
    assert named("eu\r\nprod") == "`eu  prod`" and named("a\u2028b") == "`a b`"
    assert named(" prod") == "` prod`" and named("prod ") == "`prod `"  # ``* prod*`` is no bold
    assert named("") == "`?`" and named("  ") == "`?`"  # ``**``
    assert named("leads-ods") == "*leads-ods*" and named("a b") == "*a b*"
    assert named("<!channel>\n") == "`&lt;!channel&gt; `"


def test_the_stop_following_dialog_shows_a_connection_named_with_a_star_as_written() -> None:
    live = make_run(state="unknown", raw_status="Pending", unknown_since=T0)
    text, blocks = run_card(view_of(live, can_cancel=False, console_url=None, gone_connection="eu*prod",
                                    now=T0 + timedelta(minutes=5)))
    check_message(text, blocks)
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    stop = next(e for e in buttons if e["action_id"] == ids.RUN_STOP_FOLLOWING)
    said = json.dumps(stop["confirm"]["text"], ensure_ascii=False)
    assert "`eu*prod`" in said, said


def test_an_approval_step_with_a_long_name_can_be_decided_from_its_button() -> None:
    step = "approve-the-" + "quarterly-figures-" * 5
    assert len(step) > 64
    assert parse_step_value(step_value(7, step)) == (7, step)
