"""Names Slack would read formatting in (a connection named with ``*``, ``_`` or ``~``: free YAML keys; an ad-hoc
run's typed id), and the tasks of a run the bot stopped following, as the builders draw them."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.models import RunState, TaskStatus
from bot.service.events import StoppedFollowing
from bot.service.views import AlertStory, EventKind, TimelineEntry
from bot.slack.blocks import run_card
from bot.slack.blocks.alert_story import timeline
from bot.slack.reporter import note_text
from bot.slack.text import named
from tests.unit.slack.test_blocks import T0, check_message, make_run, view_of


def test_a_name_slack_would_format_is_shown_as_written() -> None:
    assert named("leads-ods") == "*leads-ods*"
    assert named("leads_ods") == "*leads_ods*"  # an underscore inside a word formats nothing
    assert named("eu*prod") == "`eu*prod`"
    assert named("_prod_") == "`_prod_`" and named("a ~b~") == "`a ~b~`" and named("a`b") == "`aˋb`"
    assert named("<!channel>") == "*&lt;!channel&gt;*"


def test_a_connection_named_with_a_star_keeps_its_bold_in_the_stopped_following_note_and_the_card() -> None:
    note = note_text(StoppedFollowing("U0CAROL", "eu*prod"))
    assert "`eu*prod`" in note and "*eu*prod*" not in note, note
    live = make_run(state="unknown", raw_status="Pending", unknown_since=T0)
    text, blocks = run_card(view_of(live, can_cancel=False, console_url=None, gone_connection="eu*prod",
                                    now=T0 + timedelta(minutes=5)))
    check_message(text, blocks)
    drawn = json.dumps(blocks, ensure_ascii=False)
    assert "`eu*prod` is no longer in the bot's catalog" in drawn and "*eu*prod*" not in drawn, drawn


def test_a_stopped_runs_card_shows_its_tasks_as_last_seen_without_the_running_mark() -> None:
    tasks = (TaskStatus("extract", RunState.SUCCEEDED, "S"), TaskStatus("load", RunState.RUNNING, "R"))
    stopped = make_run(state="unknown", raw_status="Pending", final=True, extra={"stopped_by": "U0CAROL"},
                       message="the bot stopped following it", ended_at=T0 + timedelta(minutes=5), tasks=tasks)
    text, blocks = run_card(view_of(stopped, can_cancel=False, console_url=None, gone_connection="invision"))
    check_message(text, blocks)
    drawn = json.dumps(blocks, ensure_ascii=False)
    assert "▶️" not in drawn, drawn
    assert "as last seen" in drawn and "❔ load · running when last seen" in drawn, drawn
    assert "✅ extract · succeeded" in drawn
    live = json.dumps(run_card(view_of(make_run(tasks=tasks)))[1], ensure_ascii=False)
    assert "▶️ load · running" in live and "last seen" not in live  # a run followed shows them as they are


def test_the_timeline_says_a_retry_was_canceled_and_by_whom() -> None:
    at = T0 + timedelta(minutes=3)
    entries = (
        TimelineEntry(kind=EventKind.FAILED, at=T0, actor=None, run_id=1, detail=""),
        TimelineEntry(kind=EventKind.RETRIED, at=T0, actor="U0BOB", run_id=2, detail="", retry_ended="canceled",
                      retry_ended_by="U0ALICE", retry_ended_at=at),
        TimelineEntry(kind=EventKind.RETRIED, at=T0, actor="U0BOB", run_id=3, detail="",
                      retry_ended="no longer followed", retry_ended_by="U0CAROL", retry_ended_at=at),
    )
    told = timeline(AlertStory(timeline=entries), 3000)
    assert "retried by <@U0BOB> as #2, ⏹️ canceled by <@U0ALICE> at" in told, told
    assert "as #3, ❔ <@U0CAROL> stopped following it at" in told, told
