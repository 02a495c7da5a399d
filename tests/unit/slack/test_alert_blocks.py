"""The alert message keeps what failed, why and whom it told once the alert is resolved, marked resolved."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.slack.blocks import ids
from bot.slack.blocks.alerts import alert_group
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
