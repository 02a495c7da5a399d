"""The alert message's PagerDuty line: paging, paged with its incident's dedup key, or refused with PagerDuty's
reason (escaped, cut); one line for a group, within Block Kit's limits."""

from __future__ import annotations

import json

from bot.service.views import Page, PageState
from bot.slack.blocks.alerts import alert_group
from bot.slack.blocks.paging import page_line
from tests.unit.slack.test_blocks import check_message
from tests.unit.slack.test_home_digest_blocks import alert

OWNERS = {"orders": ("U0BOB",)}
NAMES = {"orders": "Rivery"}


def _context(blocks: list[dict[str, object]]) -> str:
    return json.dumps([b for b in blocks if b["type"] == "context"], ensure_ascii=False)


def test_one_alert_says_it_was_paged_with_its_dedup_key() -> None:
    pages = {1: Page("pipeline-bot/alert/1", PageState.SENT)}
    _, text, blocks = alert_group("alerts:C0ALERTS:1", [alert()], owners=OWNERS, display_names=NAMES, pages=pages)
    check_message(text, blocks)
    assert "📟 Paged on PagerDuty · incident `pipeline-bot/alert/1`" in _context(blocks)
    assert blocks[-1]["type"] == "context"


def test_a_paged_alert_links_its_pipelines_pagerduty_service_when_the_catalog_gives_one() -> None:
    pages = {1: Page("pipeline-bot/alert/1", PageState.SENT)}
    url = "https://acme.pagerduty.com/service-directory/PABC123"
    _, text, blocks = alert_group(
        "alerts:C0ALERTS:1", [alert()], owners=OWNERS, display_names=NAMES, pages=pages, page_links={"orders": url}
    )
    check_message(text, blocks)
    assert f"📟 Paged on <{url}|PagerDuty> · incident `pipeline-bot/alert/1`" in _context(blocks)
    _, _, others = alert_group(
        "alerts:C0ALERTS:1", [alert()], owners=OWNERS, display_names=NAMES, pages=pages, page_links={"leads": url}
    )
    assert url not in _context(others)  # another pipeline's service is not this alert's


def test_an_alert_not_paged_has_no_line_and_one_on_its_way_says_so() -> None:
    _, _, blocks = alert_group("alerts:C0ALERTS:1", [alert()], owners=OWNERS, display_names=NAMES)
    assert "PagerDuty" not in json.dumps(blocks)
    line = page_line([("orders", Page("pipeline-bot/alert/1", PageState.PENDING))])
    assert line is not None and "Paging PagerDuty…" in json.dumps(line, ensure_ascii=False)


def test_a_refusal_shows_pagerdutys_reason_escaped_and_cut() -> None:
    reason = "Event object is invalid: <!channel> " + "x" * 500
    line = page_line([("orders", Page("pipeline-bot/alert/1", PageState.DEAD, reason))])
    said = json.dumps(line, ensure_ascii=False)
    assert "⚠️ PagerDuty refused the page" in said and "&lt;!channel&gt;" in said and "<!channel>" not in said
    assert len(said) < 500


def test_a_group_names_each_alert_paged_and_stays_within_the_limits() -> None:
    group = [alert(id=i, pipeline="orders", runs=(i,), last_run_id=i) for i in range(1, 61)]
    pages = {i: Page(f"pipeline-bot/alert/{i}", PageState.SENT) for i in range(1, 61)}
    _, text, blocks = alert_group("alerts:C0ALERTS:1", group, owners=OWNERS, display_names=NAMES, pages=pages)
    check_message(text, blocks)
    assert len(blocks) <= 50
    line = page_line([("orders", pages[i]) for i in range(1, 13)])
    assert line is not None
    elements = line["elements"]
    assert isinstance(elements, list) and len(elements) == 10
    assert "*orders* Paged on PagerDuty" in json.dumps(elements[0]) and "3 more paged" in json.dumps(elements[-1])
