"""The answer to a mute, and the value of its "mute for this long instead" buttons: pure builders and parsers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.emulators.slack.blockkit import validate_message
from bot.service.views import Muted
from bot.slack.blocks import ids, mute_answer

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
EVIL = "<!channel> <@U123> <https://evil|docs>"


def _elements(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_a_first_mute_says_until_when() -> None:
    until = NOW + timedelta(hours=1)
    text, blocks = mute_answer("orders", Muted(until=until, asked=until, before=None, changed=True), 3600, now=NOW)
    assert text.startswith(f"🔕 *orders* is muted until <!date^{int(until.timestamp())}^")
    assert "extended" not in text and "shortened" not in text
    assert not _elements(blocks) and validate_message(blocks) == []


def test_a_longer_mute_says_it_extended_and_an_explicit_shorter_one_says_it_shortened() -> None:
    day, hour = NOW + timedelta(days=1), NOW + timedelta(hours=1)
    extended, _ = mute_answer("orders", Muted(until=day, asked=day, before=hour, changed=True), 86400, now=NOW)
    assert f"(extended from <!date^{int(hour.timestamp())}^" in extended
    shortened, _ = mute_answer("orders", Muted(until=hour, asked=hour, before=day, changed=True), 3600, now=NOW)
    assert f"(shortened from <!date^{int(day.timestamp())}^" in shortened


def test_a_shorter_mute_changes_nothing_and_offers_both_changes_as_buttons() -> None:
    day, hour = NOW + timedelta(days=1), NOW + timedelta(hours=1)
    text, blocks = mute_answer(
        "orders", Muted(until=day, asked=hour, before=day, changed=False), 3600, now=NOW, run_id=7
    )
    assert text.startswith(f"🔕 *orders* is already muted until <!date^{int(day.timestamp())}^")
    assert text.endswith("longer than the 1 hour asked: nothing changed.")
    assert validate_message(blocks) == []
    shorter, longer = _elements(blocks)
    assert (shorter["action_id"], shorter["text"]["text"]) == (ids.MUTE_SET, "Mute for 1 hour from now instead")
    assert ids.parse_mute_set_value(shorter["value"]) == ("orders", 3600, 7)
    assert (longer["action_id"], longer["text"]["text"]) == ("mute.set:1", "Extend by 1 hour")
    assert ids.parse_mute_set_value(longer["value"]) == ("orders", 86400 + 3600, 7)
    assert "style" not in shorter and "style" not in longer


def test_no_extend_offer_past_the_thirty_days_a_mute_may_last() -> None:
    month = NOW + timedelta(days=30)
    _, blocks = mute_answer(
        "orders", Muted(until=month, asked=NOW + timedelta(days=7), before=month, changed=False), 7 * 86400, now=NOW
    )
    assert [e["action_id"] for e in _elements(blocks)] == [ids.MUTE_SET]


def test_a_hostile_pipeline_name_is_escaped_and_kept_whole_in_the_value() -> None:
    day = NOW + timedelta(days=1)
    text, blocks = mute_answer(EVIL, Muted(until=day, asked=NOW, before=day, changed=False), 5400, now=NOW)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "1h 30m asked" in text
    assert ids.parse_mute_set_value(_elements(blocks)[0]["value"])[0] == EVIL


@pytest.mark.parametrize(
    "value",
    [
        "",
        "x",
        "[]",
        "null",
        json.dumps({"pipeline": "a"}),
        json.dumps({"pipeline": "a", "seconds": 59}),
        json.dumps({"pipeline": "a", "seconds": 30 * 86400 + 1}),
        json.dumps({"pipeline": "a", "seconds": True}),
        json.dumps({"pipeline": "", "seconds": 3600}),
        json.dumps({"pipeline": "a" * 201, "seconds": 3600}),
        json.dumps({"pipeline": "a", "seconds": 3600, "run": "7"}),
        json.dumps({"pipeline": "a", "seconds": 3600.5}),
    ],
)
def test_a_tampered_mute_set_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match=r"mute|run"):
        ids.parse_mute_set_value(value)
