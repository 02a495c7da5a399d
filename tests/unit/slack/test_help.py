"""Help is generated from the command table: every command in it, nothing outside it, safe mrkdwn."""

from __future__ import annotations

import re

import pytest

from bot.catalog.catalog import Catalog
from bot.catalog.load import parse_catalog
from bot.demo.run import demo_catalog
from bot.providers.base import Capability
from bot.providers.registry import PROVIDERS
from bot.service.clients import ClientPool
from bot.slack.commands.grammar import COMMANDS, CommandSpec, Parsed, parse
from bot.slack.commands.help import Can, command_help, examples, help_for, help_text

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
    [("run", "right to run"), ("cancel", "Whoever started the run may"), ("mute", "up to 24 h"), ("list", "Anyone can use it.")],
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


DEMO_URLS = {name: f"http://127.0.0.1:{port}" for port, name in enumerate(PROVIDERS, 1)}


def demo() -> Catalog:
    return demo_catalog(DEMO_URLS)


def can_of(catalog: Catalog) -> Can:
    """What the handler asks: whether the pipeline's client can do the operation."""
    pool = ClientPool(catalog.connections)
    return lambda pipeline, capability: pool.client(pipeline.connection).can(Capability(capability))


def test_every_example_in_help_parses_against_the_demo_catalog() -> None:
    catalog = demo()
    for spec in COMMANDS:
        for example in spec.examples:
            parsed = parse(
                example, pipelines=list(catalog.pipelines), providers=list(PROVIDERS),
                workflows=list(catalog.workflows), command="/pb",
            )
            assert isinstance(parsed, Parsed), (example, parsed)
            assert parsed.spec is spec


def test_the_demo_catalog_has_what_each_table_example_uses() -> None:
    """Help's examples, made from the demo catalog, are the table's own: each pipeline there can do what it asks
    (``run leads-ods execution_date=…`` failed with "It takes: load_date" when the demo's leads-ods had load_date)."""
    catalog = demo()
    for spec in COMMANDS:
        assert examples(spec, catalog, can_of(catalog)) == spec.examples, spec.name


def test_help_names_the_catalogs_own_pipelines_each_able_to_do_what_it_asks() -> None:
    catalog = parse_catalog(
        {
            "connections": {
                "old": {"provider": "rivery", "api_token": "${R}"},  # legacy: lists no runs
                "tl": {"provider": "tailer", "token": "${T}"},
            },
            "pipelines": {
                "daily-load": {"connection": "old", "river_id": "r1", "tags": ["nightly"]},
                "prep": {
                    "connection": "tl", "account": "000099", "environment": "DEV",
                    "configuration_type": "table-to-table", "configuration_id": "c1",
                    "parameters": {"day": {"type": "date"}},
                },
            },
        },
        {"R": "rivery-token", "T": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJkZW1vIn0.demo"},
    )
    can = can_of(catalog)
    by_name = {spec.name: spec for spec in COMMANDS}
    assert examples(by_name["run"], catalog, can) == ("run daily-load", "run prep day=2024-01-31", "run")
    assert examples(by_name["watch"], catalog, can) == ("watch prep", "watch prep #data-alerts")
    assert examples(by_name["archive"], catalog, can) == ("archive prep",)
    assert examples(by_name["mute"], catalog, can) == ("mute daily-load", "mute daily-load 4h")
    assert examples(by_name["list"], catalog, can) == ("list", "list rivery", "list nightly")
    assert examples(by_name["stats"], catalog, can) == ("stats", "stats 24h", "stats daily-load", "stats daily-load 30d")
    text = help_for("run", "/pb", catalog, can)
    assert "`/pb run prep day=2024-01-31`" in text and "leads-ods" not in text
    assert_safe(text)


def test_without_a_catalog_help_shows_the_table_examples() -> None:
    for spec in COMMANDS:
        assert examples(spec) == spec.examples
