"""Block Kit validation: each limit of SLACK.md is caught, and a realistic card passes."""

from __future__ import annotations

from typing import Any

import pytest

from bot.emulators.slack import BlockKitError, check_message, validate_message, validate_view
from bot.emulators.slack.blockkit import check_view, message_warnings


def plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def button(action_id: str, text: str = "Go", **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": plain(text), "action_id": action_id, **extra}


def section(text: str = "x", **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text), **extra}


def card() -> list[dict[str, Any]]:
    """A run card as the bot will build it: header, section with fields and a button, context, divider,
    actions with styles and a confirm dialog."""
    return [
        {"type": "header", "text": plain("nightly_sales failed")},
        {
            "type": "section",
            "block_id": "summary",
            "text": mrkdwn("*Rivery* run `r-123` failed after 4 min"),
            "fields": [mrkdwn("*Started by*\n<@U0ALICE>"), mrkdwn("*Duration*\n4m 12s")],
            "accessory": button("open_console", "Open in console", url="https://console.example/runs/r-123"),
        },
        {"type": "context", "elements": [mrkdwn("provider said: timeout"), plain("retry 1 of 3")]},
        {"type": "divider"},
        {
            "type": "actions",
            "block_id": "run_actions",
            "elements": [
                button("retry", "Retry", style="primary", value="r-123"),
                button("ack", "I'm on it", value="r-123"),
                button(
                    "cancel",
                    "Cancel",
                    style="danger",
                    value="r-123",
                    confirm={
                        "title": plain("Cancel the run?"),
                        "text": mrkdwn("This stops `nightly_sales` in Rivery."),
                        "confirm": plain("Cancel run"),
                        "deny": plain("Keep it"),
                        "style": "danger",
                    },
                ),
            ],
        },
    ]


def modal(**extra: Any) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": "run_modal",
        "title": plain("Run a pipeline"),
        "submit": plain("Run"),
        "close": plain("Cancel"),
        "blocks": [
            {
                "type": "input",
                "block_id": "pipeline",
                "label": plain("Pipeline"),
                "element": {
                    "type": "static_select",
                    "action_id": "choice",
                    "options": [{"text": plain("nightly_sales"), "value": "nightly_sales"}],
                },
            },
            {"type": "input", "block_id": "date", "label": plain("Date"),
             "element": {"type": "datepicker", "action_id": "day"}},
        ],
    }
    view.update(extra)
    return view


def test_realistic_card_is_valid() -> None:
    assert validate_message(card()) == []
    check_message(card())


def test_realistic_modal_and_home_are_valid() -> None:
    assert validate_view(modal()) == []
    assert validate_view({"type": "home", "blocks": card()}) == []


def limit_cases() -> list[tuple[str, list[dict[str, Any]], str]]:
    return [
        ("51 blocks", [{"type": "divider"}] * 51, "at most 50 blocks"),
        ("section text", [section("x" * 3001)], "/blocks/0/text/text"),
        ("field text", [{"type": "section", "fields": [mrkdwn("f" * 2001)]}], "/blocks/0/fields/0/text"),
        ("11 fields", [{"type": "section", "fields": [mrkdwn("f")] * 11}], "at most 10 items"),
        ("header 151", [{"type": "header", "text": plain("h" * 151)}], "/blocks/0/text/text"),
        ("header mrkdwn", [{"type": "header", "text": mrkdwn("h")}], "must be plain_text"),
        ("26 actions", [{"type": "actions", "elements": [button(f"a{i}") for i in range(26)]}], "at most 25"),
        ("11 context", [{"type": "context", "elements": [mrkdwn("c")] * 11}], "at most 10"),
        ("button text", [{"type": "actions", "elements": [button("a", "t" * 76)]}], "at most 75"),
        ("button value", [{"type": "actions", "elements": [button("a", value="v" * 2001)]}], "/value"),
        ("button url", [{"type": "actions", "elements": [button("a", url="u" * 3001)]}], "/url"),
        ("action_id", [{"type": "actions", "elements": [button("a" * 256)]}], "/action_id"),
        ("button style", [{"type": "actions", "elements": [button("a", style="green")]}], "primary or danger"),
        ("block_id length", [section(block_id="b" * 256)], "/block_id"),
        ("duplicate block_id", [section(block_id="same"), section(block_id="same")], "duplicate block_id"),
        (
            "duplicate action_id in a block",
            [{"type": "actions", "elements": [button("retry"), button("retry")]}],
            "duplicate action_id",
        ),
        (
            "duplicate action_id across blocks",
            [section(accessory=button("retry")), {"type": "actions", "elements": [button("retry")]}],
            "duplicate action_id",
        ),
        ("empty text", [section("")], "more than 0 characters"),
        ("unknown block", [{"type": "banner"}], "unknown block type"),
        ("no text nor fields", [{"type": "section"}], "text or fields"),
        ("input in actions", [{"type": "actions", "elements": [{"type": "plain_text_input", "action_id": "x"}]}],
         "not allowed here"),
        (
            "confirm title",
            [{"type": "actions", "elements": [button("a", confirm={"title": plain("t" * 101), "text": mrkdwn("x"),
                                                                   "confirm": plain("y"), "deny": plain("n")})]}],
            "/confirm/title",
        ),
        ("image without alt_text (slack_sdk)", [{"type": "image", "image_url": "https://x/y.png"}], "slack_sdk"),
    ]


@pytest.mark.parametrize(("blocks", "expected"), [(b, e) for _, b, e in limit_cases()],
                         ids=[name for name, _, _ in limit_cases()])
def test_each_limit_is_caught(blocks: list[dict[str, Any]], expected: str) -> None:
    problems = validate_message(blocks)
    assert any(expected in p for p in problems), problems
    with pytest.raises(BlockKitError) as raised:
        check_message(blocks)
    assert raised.value.problems == problems


def test_blocks_must_be_a_list() -> None:
    assert validate_message({"type": "divider"}) != []


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (modal(title=plain("t" * 25)), "/view/title/text"),
        (modal(submit=plain("s" * 25)), "/view/submit/text"),
        (modal(close=plain("c" * 25)), "/view/close/text"),
        (modal(private_metadata="m" * 3001), "/view/private_metadata"),
        (modal(submit=None), "/view/submit"),
        (modal(blocks=[{"type": "divider"}] * 101), "at most 100 blocks"),
        ({"type": "home", "blocks": [{"type": "divider"}] * 101}, "at most 100 blocks"),
        ({"type": "home", "blocks": [], "submit": plain("x")}, "cannot have submit"),
        ({"type": "dialog", "blocks": []}, "modal or home"),
        ({"type": "modal", "blocks": []}, "/view/title"),
        ({"type": "home"}, "/view/blocks"),
    ],
)
def test_view_limits(view: dict[str, Any], expected: str) -> None:
    problems = validate_view(view)
    assert any(expected in p for p in problems), problems
    with pytest.raises(BlockKitError):
        check_view(view)


def test_a_view_may_reuse_an_action_id_in_different_blocks() -> None:
    """Views key state by block_id first, so per-block uniqueness is enough there."""
    blocks = [
        {"type": "input", "block_id": f"p{i}", "label": plain("Value"),
         "element": {"type": "plain_text_input", "action_id": "value"}}
        for i in range(2)
    ]
    assert validate_view(modal(blocks=blocks)) == []


def test_message_warnings() -> None:
    assert message_warnings("fallback", card()) == []
    assert any("missing top-level text" in w for w in message_warnings("", card()))
    assert any("truncates" in w for w in message_warnings("x" * 40_001, None))
