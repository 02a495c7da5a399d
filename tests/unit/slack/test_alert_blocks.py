"""The alert message keeps what failed, why and whom it told once the alert is resolved, marked resolved."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from bot.models import RunState, TaskStatus
from bot.service.views import AlertStory, AlertView, EventKind, TimelineEntry
from bot.slack.blocks import ids
from bot.slack.blocks.alerts import alert_batches, alert_group
from bot.slack.blocks.escalation import escalation_message
from tests.unit.slack.test_blocks import HUGE, T0, check_message, make_run
from tests.unit.slack.test_home_digest_blocks import alert

OWNERS = {"orders": ("U0BOB", "S0DATAENG"), "leads": ("U0CAROL",)}
NAMES = {"orders": "Rivery", "leads": "Rivery"}
RESOLVED = {"state": "recovered", "recovered_at": T0 + timedelta(minutes=5), "recovered_by_run": 13}


def test_a_resolved_alert_keeps_its_error_and_owners_and_names_the_run_that_resolved_it() -> None:
    _, text, blocks = alert_group("alerts:C0ALERTS:1", [alert(**RESOLVED)], owners=OWNERS, display_names=NAMES)
    check_message(text, blocks)
    body = json.dumps(blocks, ensure_ascii=False)
    assert "Table missing" in body
    assert "cc <@U0BOB> <!subteam^S0DATAENG>" in body
    assert "failed · run #12 · recovered" in body and "by run #13" in body
    assert text == "orders failed, since recovered"  # the notification of a post says what failed
    assert ids.RUN_RETRY not in body  # nothing left to retry


def test_a_group_mentions_the_owners_of_resolved_alerts_too_and_lists_their_error() -> None:
    group = [alert(**RESOLVED), alert(id=2, pipeline="leads", runs=(14,), last_run_id=14, message="Disk full")]
    _, _, blocks = alert_group("alerts:C0ALERTS:1", group, owners=OWNERS, display_names=NAMES)
    body = json.dumps(blocks, ensure_ascii=False)
    assert "<@U0BOB>" in body and "<@U0CAROL>" in body
    assert "Table missing" in body and "Disk full" in body
    assert body.count(ids.RUN_RETRY) == 1  # the open one only


def test_a_muted_resolved_alert_mentions_nobody() -> None:
    _, _, blocks = alert_group("k", [alert(muted=True, **RESOLVED)], owners=OWNERS, display_names=NAMES)
    assert "<@U0BOB>" not in json.dumps(blocks)


def storm(n: int, owners_each: int) -> tuple[list[AlertView], dict[str, tuple[str, ...]]]:
    alerts = [alert(id=i + 1, pipeline=f"ingest-{i:03d}-" + "x" * 40, runs=(100 + i,), last_run_id=100 + i)
              for i in range(n)]
    owners = {a.pipeline or "": tuple(f"U{i:04d}{k:04d}" for k in range(owners_each)) for i, a in enumerate(alerts)}
    return alerts, owners


def test_a_storm_is_split_into_messages_listing_every_failure_and_mentioning_every_owner_whole() -> None:
    """300 pipelines fail together, each with its own owners: a few messages, each within Slack's limits, list
    every one with its Retry and mention every owner, never a mention cut in half."""
    alerts, owners = storm(300, 3)
    batches = alert_batches(alerts, owners=owners)
    assert [a.id for batch in batches for a in batch] == [a.id for a in alerts]  # each once, in order
    assert len(batches) <= 10
    listed, mentioned = set(), set()
    for batch in batches:
        _, text, blocks = alert_group(f"alerts:C0ALERTS:{batch[0].id}", batch, owners=owners, display_names={})
        check_message(text, blocks)
        body = json.dumps(blocks, ensure_ascii=False)
        assert "truncated" not in body and "more: see the App Home" not in body
        listed |= {a.pipeline for a in batch if f"*{a.pipeline}*" in body}
        mentioned |= set(re.findall(r"<@(U\d{8})>", body))
        assert body.count(ids.RUN_RETRY) == len(batch)
    assert listed == {a.pipeline for a in alerts}
    assert mentioned == {o for each in owners.values() for o in each}


def test_owners_too_many_for_one_section_are_mentioned_across_sections_without_cutting_one() -> None:
    alerts, owners = storm(40, 12)  # 480 mentions: several sections' worth
    [batch] = alert_batches(alerts, owners=owners)
    _, text, blocks = alert_group("alerts:C0ALERTS:1", batch, owners=owners, display_names={})
    check_message(text, blocks)
    mentioned = re.findall(r"<@(U\d{8})>", json.dumps(blocks))
    assert sorted(mentioned) == sorted(o for each in owners.values() for o in each)
    one, many = storm(1, 400)
    _, text, blocks = alert_group("alerts:C0ALERTS:1", one, owners=many, display_names={})
    check_message(text, blocks)
    assert len(re.findall(r"<@(U\d{8})>", json.dumps(blocks))) == 400


# -- the story an alert keeps (issue 14) ---------------------------------------------------------------------------


Event = tuple[EventKind, str | None, int | None, str]


def story(events: Sequence[Event], **changes: Any) -> AlertStory:
    timeline = tuple(
        TimelineEntry(kind=kind, at=T0 + timedelta(minutes=i), actor=actor, run_id=run, detail=detail)
        for i, (kind, actor, run, detail) in enumerate(events)
    )
    fields: dict[str, Any] = {"timeline": timeline, "run": make_run(id=12, message="Table missing"),
                              "console_url": "https://console.rivery.io/runs/r-1",
                              "card_link": "https://example.slack.com/archives/C0GENERAL/p1"}
    return AlertStory(**{**fields, **changes})


def told(a: AlertView, s: AlertStory) -> AlertView:
    return replace(a, story=s)


def test_an_acknowledged_alert_says_who_once_in_its_header_and_offers_no_second_acknowledge() -> None:
    acked = told(alert(), story([(EventKind.FAILED, None, 12, ""), (EventKind.ACKNOWLEDGED, "U0BOB", 12, "")]))
    _, text, blocks = alert_group("k", [acked], owners=OWNERS, display_names=NAMES)
    check_message(text, blocks)
    body = json.dumps(blocks, ensure_ascii=False)
    first = blocks[0]["text"]["text"]
    assert first.startswith("👀 *orders* on Rivery failed · run #12 · acknowledged by <@U0BOB>")
    assert sum(body.count(mark) for mark in ("🔴", "👀", "✅")) == 1
    assert ids.RUN_ACK not in body and ids.RUN_RETRY in body and ids.RUN_CONSOLE in body
    assert "<https://example.slack.com/archives/C0GENERAL/p1|Run #12's card>" in body


def test_a_long_timeline_folds_its_oldest_lines_and_the_message_holds_block_kit_limits() -> None:
    """Hundreds of events, a 100,000-character error, owners by the hundred, tasks by the dozen: 50 blocks and
    3,000 characters a section hold, the newest event shows last and the oldest fold into one line."""
    events: list[Event] = [(EventKind.REPEATED, None, 100 + i, "") for i in range(300)]
    events.append((EventKind.MUTED, "U0BOB", None, (T0 + timedelta(hours=4)).isoformat()))
    tasks = tuple(TaskStatus(f"task {i}", RunState.FAILED, "F", HUGE) for i in range(40))
    long = told(alert(message=HUGE, count=301),
                story(events, run=make_run(id=12, message=HUGE, tasks=tasks, attempt=3)))
    owners = {"orders": tuple(f"U{i:08d}" for i in range(400))}
    _, text, blocks = alert_group("k", [long], owners=owners, display_names=NAMES)
    check_message(text, blocks)
    assert len(blocks) <= 50
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(t) <= 3000 for t in sections)
    [timeline] = [t for t in sections if t.startswith("*Timeline*")]
    lines = timeline.splitlines()
    assert re.fullmatch(r"… \d+ earlier events", lines[1])
    hidden = int(lines[1].split()[1])
    assert hidden + len(lines) - 2 == len(events)  # each event shown or counted, none lost
    assert "🔕 muted by <@U0BOB> until" in lines[-1]  # newest last
    assert "Attempt 3" in json.dumps(blocks)
    assert len(re.findall(r"<@(U\d{8})>", json.dumps(blocks))) == 400  # every owner, none cut


def test_a_reopened_alert_is_open_again_and_its_retry_by_the_policy_is_told() -> None:
    events: list[Event] = [(EventKind.FAILED, None, 12, ""), (EventKind.ACKNOWLEDGED, "U0BOB", 12, ""),
              (EventKind.RETRIED, None, 13, ""), (EventKind.RESOLVED, None, 13, "succeeded"),
              (EventKind.REOPENED, None, 14, "")]
    reopened = told(alert(last_run_id=14, count=2), story(events))
    _, text, blocks = alert_group("k", [reopened], owners=OWNERS, display_names=NAMES)
    check_message(text, blocks)
    body = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section")
    assert body.startswith("🔴 *orders*")  # acknowledged before it resolved: open again now
    assert "🔁 retried by the retry policy as #13" in body and "↩️ reopened: failed again (#14)" in body
    assert ids.RUN_ACK in json.dumps(blocks)


def test_a_grouped_alert_gives_each_failure_its_state() -> None:
    acked = told(alert(id=1), story([(EventKind.ACKNOWLEDGED, "U0BOB", 12, "")]))
    fixed = alert(id=2, pipeline="leads", **RESOLVED)
    still = alert(id=3, pipeline="leads")
    _, _, blocks = alert_group("k", [acked, fixed, still], owners=OWNERS, display_names=NAMES)
    lines = [b["text"]["text"] for b in blocks[1:] if b["type"] == "section"]
    assert [line[0] for line in lines] == ["👀", "✅", "🔴"]


def test_escalations_show_on_the_timeline_whom_they_pinged_and_the_alert_stays_open() -> None:
    """Issue 14, item 7: the owners pinged again, then ``escalate_to``; an escalate_to of hundreds is cut short in
    its line (the thread reply pinged them), and the section still holds 3,000 characters."""
    many = " ".join(f"U{i:08d}" for i in range(300))
    events: list[Event] = [(EventKind.FAILED, None, 12, ""), (EventKind.REMINDED, None, None, "U0BOB S0DATAENG"),
                           (EventKind.ESCALATED, None, None, f"S0ONCALL {many}")]
    escalated = told(alert(), story(events))
    _, text, blocks = alert_group("k", [escalated], owners=OWNERS, display_names=NAMES)
    check_message(text, blocks)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert sections[0].startswith("🔴 *orders*")  # pinging is no acknowledgement
    [timeline] = [t for t in sections if t.startswith("*Timeline*")]
    lines = [re.sub(r"^<!date[^>]+> ", "", line) for line in timeline.splitlines()[1:]]
    assert lines[1] == "⏰ not acknowledged: owners pinged again (<@U0BOB> <!subteam^S0DATAENG>)"
    assert lines[2].startswith("📣 escalated to <!subteam^S0ONCALL> <@U00000000>") and lines[2].endswith(" and 281 more")
    assert all(len(t) <= 3000 for t in sections) and ids.RUN_ACK in json.dumps(blocks)


def test_an_escalation_reply_pings_whom_it_names_and_says_how_long_it_waited() -> None:
    text, blocks = escalation_message("orders", "Rivery", step=1, whom=["U0BOB", "S0DATAENG", "*"],
                                      open_for=timedelta(minutes=15))
    check_message(text, blocks)
    assert text == ("⏰ *orders* on Rivery failed 15m 00s ago and nobody has acknowledged it yet. <@U0BOB> "
                    "<!subteam^S0DATAENG>: can one of you take it? Acknowledge it on the alert, so the others know.")
    text, _ = escalation_message("<!here>", "Rivery", step=2, whom=["S0ONCALL"], open_for=timedelta(minutes=30))
    assert text.startswith("📣 Escalated to <!subteam^S0ONCALL>: *&lt;!here&gt;* on Rivery failed 30m 00s ago")
