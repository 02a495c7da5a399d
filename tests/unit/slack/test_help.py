"""Help is generated from the command table: every command in it, nothing outside it, safe mrkdwn."""

from __future__ import annotations

import re

import pytest

from bot.slack.commands.grammar import COMMANDS, CommandSpec, Parsed, parse
from bot.slack.commands.help import command_help, help_for, help_text

SLACK_SECTION_LIMIT = 3000


def assert_safe(text: str) -> None:
    assert "<" not in text
    assert ">" not in text
    assert not re.search(r"&(?!amp;|lt;|gt;)", text)
    assert "{command}" not in text


def listed_commands(text: str, command: str) -> list[str]:
    """The command names of lines shaped like the per-command lines of ``help_text``."""
    pattern = re.compile(rf"^`{re.escape(command)} ([^\s`]+)")
    return [m.group(1) for line in text.splitlines() if (m := pattern.match(line))]


def test_help_lists_every_command_once_in_table_order_and_nothing_else() -> None:
    assert listed_commands(help_text(), "/pipeline") == [spec.name for spec in COMMANDS]


def test_each_line_carries_the_usage_and_summary() -> None:
    text = help_text()
    for spec in COMMANDS:
        usage = spec.usage.replace("<", "&lt;").replace(">", "&gt;")
        assert f"`/pipeline {usage}` — {spec.summary.replace('&', '&amp;')}" in text.splitlines()


def test_help_follows_the_configured_command() -> None:
    text = help_text("/pb")
    assert listed_commands(text, "/pb") == [spec.name for spec in COMMANDS]
    assert "/pipeline" not in text


def test_help_is_safe_mrkdwn_and_fits_one_section() -> None:
    text = help_text()
    assert_safe(text)
    assert len(text) < SLACK_SECTION_LIMIT


def test_a_hostile_command_name_is_escaped() -> None:
    assert_safe(help_text("/p<!channel>"))


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda s: s.name)
def test_command_help_has_everything_from_the_table(spec: CommandSpec) -> None:
    text = command_help(spec, "/pb")
    assert_safe(text)
    assert len(text) < SLACK_SECTION_LIMIT
    assert text.splitlines()[0].startswith(f"`/pb {spec.name}")
    assert spec.summary.replace("&", "&amp;") in text
    for example in spec.examples:
        assert f"`/pb {example}`" in text
    for alias in spec.aliases:
        assert f"`/pb {alias}`" in text
    for arg in spec.args:
        assert arg.help.replace("{command}", "/pb").replace("<", "&lt;").replace(">", "&gt;") in text
    assert "/pipeline" not in text


@pytest.mark.parametrize(
    ("name", "default"), [("last", "(default 10)"), ("stats", "(default 7d)"), ("mute", "(default 1h)")]
)
def test_defaults_are_shown_as_people_type_them(name: str, default: str) -> None:
    assert default in help_for(name)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("run", "right to run"), ("cancel", "right to change"), ("list", "Anyone can use it.")],
)
def test_command_help_says_who_may_use_it(name: str, fragment: str) -> None:
    assert fragment in help_for(name)


def test_help_for_picks_the_right_text() -> None:
    by_name = {spec.name: spec for spec in COMMANDS}
    assert help_for() == help_text()
    assert help_for(None, "/pb") == help_text("/pb")
    assert help_for("ls") == command_help(by_name["list"])
    assert help_for("RUN", "/pb") == command_help(by_name["run"], "/pb")
    assert help_for("nope") == help_text()
    assert help_for(42) == help_text()


def test_help_for_takes_the_parsed_argument_straight() -> None:
    parsed = parse("help ls", pipelines=(), providers=())
    assert isinstance(parsed, Parsed)
    assert help_for(parsed.args.get("command")) == command_help(COMMANDS[[s.name for s in COMMANDS].index("list")])


def test_every_example_in_help_parses() -> None:
    pipelines = ("leads-ods",)
    for spec in COMMANDS:
        for example in spec.examples:
            parsed = parse(example, pipelines=pipelines, providers=("rivery",), command="/pb")
            assert isinstance(parsed, Parsed), (example, parsed)
            assert parsed.spec is spec
