"""The subscription builders: a subscribed channel's note, the DM of "notify me", the ``subscriptions`` list and
the Home tab's "My subscriptions": within Slack's limits for any input, escaped, nothing dropped silently."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

from bot.service.events import SubscriberNote
from bot.service.subscriptions import SubscriptionView
from bot.slack.blocks import ids
from bot.slack.blocks.home import SUBSCRIPTION_BLOCKS
from bot.slack.blocks.subscriptions import home_subscriptions, subscriber_message, subscriptions_list
from bot.store.records import RunOrigin, RunRecord, StoredState
from tests.unit.slack.test_blocks import EVIL, EVIL_TEXT, HUGE, T0, check_message, failed_run, make_run
from tests.unit.slack.test_home_digest_blocks import check_home, home

CARD = ("C0GENERAL", "https://team.slack.com/archives/C0GENERAL/p1700000000000100")


def record(**changes: Any) -> RunRecord:
    base = RunRecord(
        id=12,
        pipeline="leads-ods",
        provider="rivery",
        connection="rivery-main",
        job={"river_id": "5e8e"},
        parameters={},
        provider_run_id="r-1",
        state=StoredState.FAILED,
        raw_status="E",
        message="bad column",
        warning="",
        tasks=(),
        extra={},
        final=True,
        origin=RunOrigin.SLACK,
        started_by="U0ALICE",
        channel="C0GENERAL",
        retry_of=None,
        attempt=1,
        created_at=T0,
        updated_at=T0,
        started_at=T0,
        ended_at=T0 + timedelta(minutes=3),
        next_poll_at=None,
        polls=1,
        unknown_since=None,
        last_error="",
        acknowledged_by=None,
        acknowledged_at=None,
    )
    return dataclasses.replace(base, **changes)


def note(**changes: Any) -> SubscriberNote:
    values: dict[str, Any] = {
        "run": record(),
        "why": "pipeline leads-ods",
        "display_name": "Rivery",
        "failure": True,
        "alert_channel": "C0ALERTS",
        "console_url": "https://console.rivery.io/runs/r-1",
    }
    values.update(changes)
    return SubscriberNote(**values)


def subscription(n: int, **changes: Any) -> SubscriptionView:
    values: dict[str, Any] = {
        "id": n,
        "kind": "pipeline",
        "target": f"pipeline-{n}",
        "channel": "C0OPS",
        "everything": False,
        "created_by": "U0ALICE",
    }
    values.update(changes)
    return SubscriptionView(**values)


def test_a_failure_told_to_a_subscribed_channel_links_the_card_and_the_alert() -> None:
    text, blocks = subscriber_message(note(), card=CARD, command="/pipeline")
    check_message(text, blocks)
    shown = json.dumps(blocks)
    assert "failed" in text and "run #12" in text and "after 3m" in text
    assert "<https://team.slack.com/archives/C0GENERAL/p1700000000000100|its card>" in shown
    assert "the alert is in <#C0ALERTS>" in shown and "/pipeline unsubscribe leads-ods" in shown


def test_the_end_note_and_the_dm_say_how_the_run_ended_and_how_to_stop_them() -> None:
    ok = record(state=StoredState.SUCCEEDED, message="")
    text, blocks = subscriber_message(note(run=ok, failure=False), card=CARD, command="/pipeline")
    check_message(text, blocks)
    assert "succeeded" in text and "bad column" not in json.dumps(blocks)
    canceled = record(state=StoredState.CANCELED, message="")
    text, blocks = subscriber_message(note(run=canceled, why="started", failure=False), card=None, command="/p")
    check_message(text, blocks)
    assert text.startswith("⏹") or "was canceled" in text
    assert "Your run #12" in text and "`/p notify me off`" in json.dumps(blocks)


def test_untrusted_and_huge_text_stays_escaped_and_within_limits() -> None:
    evil = record(pipeline=EVIL_TEXT, message=HUGE + EVIL_TEXT)
    for kind in ("pipeline " + EVIL_TEXT, "started"):
        text, blocks = subscriber_message(
            note(run=evil, why=kind, display_name=EVIL_TEXT, console_url="javascript:alert(1)"),
            card=("C0GENERAL", "not a url"),
            command="/pipeline",
        )
        check_message(text, blocks)
        for raw in EVIL:
            assert raw not in text + json.dumps(blocks), raw
        assert "javascript:" not in json.dumps(blocks)


def test_the_list_packs_many_subscriptions_and_escapes_them() -> None:
    many = [subscription(n, target=f"{EVIL_TEXT} {'x' * 300}", created_by="U0BOB") for n in range(500)]
    text, blocks = subscriptions_list(many, mine=False, notify_me=True, command="/pipeline")
    check_message(text, blocks)
    shown = json.dumps(blocks)
    assert "(500)" in shown and "more" in shown and "*on*" in shown
    for raw in EVIL:
        assert raw not in shown, raw
    text, blocks = subscriptions_list([], mine=True, notify_me=False, command="/pipeline")
    check_message(text, blocks)
    assert "None yet" in json.dumps(blocks)


def test_my_subscriptions_on_the_home_tab_keep_to_their_share_of_blocks() -> None:
    many = [subscription(n, target=EVIL_TEXT + "y" * 200, everything=n % 2 == 0) for n in range(1, 60)]
    mine = home_subscriptions(many, notify_me=subscription(99, kind="started", channel="U0ALICE"), command="/pipeline")
    assert len(mine) <= SUBSCRIPTION_BLOCKS
    shown = json.dumps(mine, ensure_ascii=False)
    assert "…and 50 more" in shown and "Turn off" in shown and "Unsubscribe" in shown
    values = [b["accessory"]["value"] for b in mine if "accessory" in b]
    assert values[0] == "99" and len(set(values)) == len(values)
    actions = [b["accessory"]["action_id"] for b in mine if "accessory" in b]
    assert all(a.startswith(ids.SUB_REMOVE + ":") for a in actions) and len(set(actions)) == len(actions)
    for raw in EVIL:
        assert raw not in shown, raw
    # the whole tab with every list full and the subscriptions: still within Slack's 100 blocks
    runs = [make_run(id=i, pipeline=f"p{i}" + "z" * 150) for i in range(400)]
    failures = [failed_run(id=i, message=HUGE) for i in range(400)]
    mutes = {f"m{i}" + "q" * 70: (T0 + timedelta(hours=1), "U0ALICE") for i in range(400)}
    check_home(home(in_flight=runs, failures=failures, mutes=mutes, subscriptions=mine))
    # "notify me" off is said once, in a row of its own, and still within the share
    empty = json.dumps(home_subscriptions([], notify_me=None, command="/pipeline"), ensure_ascii=False)
    assert empty.count("notify me") == 1 and "Notify me: *off*" in empty
    off = home_subscriptions(many, notify_me=None, command="/pipeline")
    assert len(off) <= SUBSCRIPTION_BLOCKS and "Notify me: *off*" in json.dumps(off, ensure_ascii=False)
