"""The text helpers: escaping, mentions that only come from valid ids, dates, durations, truncation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.slack.text import (
    TRUNCATION_NOTE,
    code,
    escape,
    human_duration,
    link,
    mention,
    mention_group,
    mention_user,
    mrkdwn,
    plain_text,
    slack_date,
    truncate,
)


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<https://evil|docs>", "&lt;https://evil|docs&gt;"),
        ("R&D", "R&amp;D"),
        ("&lt;", "&amp;lt;"),  # ampersand first, or an entity in the input would come out as markup
        ("plain", "plain"),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


def test_code_neutralises_backticks_newlines_and_markup() -> None:
    result = code("a`b\n<!here>&")
    assert result.startswith("`") and result.endswith("`")
    assert result.count("`") == 2
    assert "\n" not in result
    assert "<!here>" not in result and "&lt;!here&gt;&amp;" in result


def test_code_of_blank_is_still_code() -> None:
    assert code("") == "` `"


@pytest.mark.parametrize("limit", [0, 1, 5, 10, 44, 45, 46, 100, 3000])
def test_truncate_never_exceeds_the_limit(limit: int) -> None:
    text = "x" * 10_000
    assert len(truncate(text, limit)) <= limit


def test_truncate_keeps_short_text_and_notes_the_cut() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("y" * 500, 100)
    assert len(cut) == 100
    assert cut.endswith(TRUNCATION_NOTE)


def test_truncate_does_not_leave_half_an_entity() -> None:
    text = escape("a" * 7 + "<" * 50)  # "aaaaaaa&lt;&lt;…"
    for limit in range(8, 20):
        head = truncate(text, limit, note="…")[:-1]
        assert not head.endswith(("&", "&l", "&lt")), (limit, head)


def test_truncate_with_a_note_longer_than_the_limit() -> None:
    assert truncate("z" * 50, 5, note="0123456789") == "01234"


@pytest.mark.parametrize("user", ["U123", "W0ABCDEF", "U0123456789"])
def test_mention_user(user: str) -> None:
    assert mention_user(user) == f"<@{user}>"
    assert mention(user) == f"<@{user}>"


@pytest.mark.parametrize("group", ["S123", "S0ABCDEF"])
def test_mention_group(group: str) -> None:
    assert mention_group(group) == f"<!subteam^{group}>"
    assert mention(group) == f"<!subteam^{group}>"


@pytest.mark.parametrize("bad", ["", "U1", "u123", "U123>", "U12 3", "<!channel>", "U123|x", "S123", "C123", "*"])
def test_mention_user_rejects_what_is_not_a_user_id(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Slack user id"):
        mention_user(bad)


@pytest.mark.parametrize("bad", ["", "S1", "s123", "S123>", "U123", "S12^3", "!subteam"])
def test_mention_group_rejects_what_is_not_a_group_id(bad: str) -> None:
    with pytest.raises(ValueError, match="not a Slack user group id"):
        mention_group(bad)


@pytest.mark.parametrize("bad", ["C123", "*", "", "<!channel>", "G123"])
def test_mention_rejects_other_principals(bad: str) -> None:
    with pytest.raises(ValueError, match=r"not a Slack user id|neither a user"):
        mention(bad)


def test_slack_date_renders_per_reader_and_falls_back_to_utc_iso() -> None:
    dt = datetime(2024, 1, 31, 12, 30, tzinfo=UTC)
    assert slack_date(dt) == f"<!date^{int(dt.timestamp())}^{{date_short_pretty}} {{time}}|2024-01-31 12:30 UTC>"
    assert slack_date(dt, "{date}").startswith(f"<!date^{int(dt.timestamp())}^{{date}}|")


def test_slack_date_same_instant_same_text_whatever_the_zone() -> None:
    dt = datetime(2024, 1, 31, 12, 30, tzinfo=UTC)
    assert slack_date(dt.astimezone(timezone(timedelta(hours=5)))) == slack_date(dt)
    assert slack_date(dt.replace(tzinfo=None)) == slack_date(dt)  # naive means UTC, as the store keeps it


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (timedelta(seconds=12), "12s"),
        (timedelta(seconds=0), "0s"),
        (timedelta(minutes=3, seconds=5), "3m 05s"),
        (timedelta(hours=1, minutes=2, seconds=59), "1h 02m"),
        (timedelta(days=2, hours=3), "2d 03h"),
        (timedelta(seconds=-5), "0s"),
    ],
)
def test_human_duration(td: timedelta, text: str) -> None:
    assert human_duration(td) == text


def test_link_escapes_the_label_and_refuses_odd_urls() -> None:
    assert link("https://console.example/run/1", "<!channel> & co") == (
        "<https://console.example/run/1|&lt;!channel&gt; &amp; co>"
    )
    for bad in ("javascript:alert(1)", "https://a|b", "https://a>b", "ftp://x", "https://a b"):
        with pytest.raises(ValueError, match="not an http"):
            link(bad, "x")


def test_text_objects_are_never_empty_nor_too_long() -> None:
    assert plain_text("", 24)["text"]
    assert mrkdwn("")["text"]
    assert len(plain_text("p" * 100, 24)["text"]) == 24
    assert len(mrkdwn("m" * 5000)["text"]) == 3000
