"""The alert message keeps what failed, why and whom it told once the alert is resolved, marked resolved."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from bot.service.views import AlertView
from bot.slack.blocks import ids
from bot.slack.blocks.alerts import alert_batches, alert_group
from tests.unit.slack.test_blocks import T0, check_message
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
