"""The command grammar: every command, every bad-input path, and a fuzz that parse never raises."""

from __future__ import annotations

import random
import re
from datetime import timedelta

import pytest

from bot.slack.commands.grammar import (
    COMMANDS,
    MAX_COUNT,
    AdHocTarget,
    CommandSpec,
    Parsed,
    ParseError,
    parse,
    spec_named,
)

PIPELINES = ("leads-ods", "leads-raw", "daily-sales", "finance-close", "crm-sync", "hr-export", "web-events")
PROVIDERS = ("rivery", "tailer", "invision", "datakitchen")
CONNECTIONS = ("rivery-eu",)
WORKFLOWS = ("nightly",)


def run(text: str, *, command: str = "/pipeline", pipelines: tuple[str, ...] = PIPELINES) -> Parsed | ParseError:
    return parse(
        text, pipelines=pipelines, providers=PROVIDERS, connections=CONNECTIONS, workflows=WORKFLOWS, command=command
    )


def ok(text: str, *, pipelines: tuple[str, ...] = PIPELINES) -> Parsed:
    result = run(text, pipelines=pipelines)
    assert isinstance(result, Parsed), result
    return result


def bad(text: str, *, command: str = "/pipeline", pipelines: tuple[str, ...] = PIPELINES) -> ParseError:
    result = run(text, command=command, pipelines=pipelines)
    assert isinstance(result, ParseError), result
    assert_mrkdwn_safe(result.message)
    return result


def assert_mrkdwn_safe(message: str) -> None:
    assert message.strip()
    assert "<" not in message
    assert ">" not in message
    assert not re.search(r"&(?!amp;|lt;|gt;)", message), message


# -- the table ---------------------------------------------------------------------------------------


def test_names_and_aliases_are_unique() -> None:
    words = [w for spec in COMMANDS for w in (spec.name, *spec.aliases)]
    assert len(words) == len(set(words))
    assert all(w == w.lower() for w in words)


def test_table_order_and_permissions() -> None:
    needs = {spec.name: spec.needs for spec in COMMANDS}
    assert needs == {
        "run": "run",
        "status": "nothing",
        "last": "nothing",
        "list": "nothing",
        "cancel": "starter",  # whoever started the run, or allow_change (bot.service.rights)
        "enable": "change",
        "disable": "change",
        "archive": "change",
        "reset": "change",
        "stats": "nothing",
        "watch": "change",
        "unwatch": "change",
        "mute": "owner",  # owners for up to 24 h, allow_change for longer
        "unmute": "owner",
        "subscribe": "change",
        "unsubscribe": "change",
        "subscriptions": "nothing",
        "notify": "nothing",
        "schedules": "nothing",
        "help": "nothing",
    }
    assert list(needs) == [spec.name for spec in COMMANDS]


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda s: s.name)
def test_spec_is_coherent(spec: CommandSpec) -> None:
    assert spec.usage.split()[0] == spec.name
    assert spec.summary and "\n" not in spec.summary
    kinds = [a.kind for a in spec.args]
    assert "params" not in kinds[:-1], "params takes the rest, so it comes last"
    seen_optional = False
    for arg in spec.args:
        assert not (arg.required and seen_optional), "a required argument after an optional one"
        seen_optional = seen_optional or not arg.required
    assert spec.examples


@pytest.mark.parametrize(
    ("spec", "example"), [(s, e) for s in COMMANDS for e in s.examples], ids=lambda v: getattr(v, "name", v)
)
def test_every_example_parses_to_its_command(spec: CommandSpec, example: str) -> None:
    assert ok(example, pipelines=(*PIPELINES, "iowa-liquor-pda")).spec is spec  # the demo's Tailer pipeline


def test_spec_named_knows_names_and_aliases_in_any_case() -> None:
    assert spec_named("LS") is spec_named("list")
    assert spec_named("?") is spec_named("help")
    assert spec_named(" Run ") is spec_named("run")
    assert spec_named("nope") is None


# -- every command -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_help(text: str) -> None:
    parsed = ok(text)
    assert parsed.spec.name == "help"
    assert dict(parsed.args) == {}


def test_bare_run_opens_the_modal() -> None:
    parsed = ok("run")
    assert parsed.open_modal
    assert parsed.spec.name == "run"
    assert parsed.needs == "run"


def test_run_with_parameters() -> None:
    parsed = ok('run leads-ods execution_date=2024-01-31 note="two words" mode=\'full load\' expr=a=b empty=')
    assert not parsed.open_modal
    assert parsed.args["pipeline"] == "leads-ods"
    assert parsed.args["params"] == {
        "execution_date": "2024-01-31",
        "note": "two words",
        "mode": "full load",
        "expr": "a=b",
        "empty": "",
    }
    assert parsed.needs == "run"


def test_run_without_parameters_has_an_empty_dict() -> None:
    assert ok("run leads-ods").args["params"] == {}


def test_command_is_case_insensitive_and_pipeline_falls_back_to_case_insensitive() -> None:
    parsed = ok("RUN Leads-ODS")
    assert parsed.spec.name == "run"
    assert parsed.args["pipeline"] == "leads-ods"


def test_exact_pipeline_name_wins_over_case_folding() -> None:
    assert ok("last Sales", pipelines=("sales", "Sales")).args["pipeline"] == "Sales"


def test_run_accepts_a_workflow() -> None:
    assert ok("run nightly").args["pipeline"] == "nightly"


def test_workflows_are_not_pipelines_elsewhere() -> None:
    assert "Unknown pipeline" in bad("last nightly").message


@pytest.mark.parametrize(
    ("token", "owner", "ident"),
    [
        ("rivery:5f1a2b", "rivery", "5f1a2b"),
        ("Rivery:5f1a2b", "rivery", "5f1a2b"),
        ("rivery-eu:42", "rivery-eu", "42"),
        ("tailer:acct/env/table-to-table/cfg:job", "tailer", "acct/env/table-to-table/cfg:job"),
    ],
)
def test_ad_hoc_targets_need_an_admin(token: str, owner: str, ident: str) -> None:
    parsed = ok(f"run {token} day=1")
    assert parsed.args["pipeline"] == AdHocTarget(owner, ident)
    assert parsed.needs == "admin"


@pytest.mark.parametrize(
    "ident",
    ["5f1a2b3c4d5e6f7a8b9c0d1e", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "kitchen_1/recipe.v2/variation|prod",
     "acct/PROD/table-to-table/cfg.1:job_2", "x" * 200,
     # a Tailer job id holds a template (seed: tailer-api-features.txt, "stores-{{FD_DATE}}.csv")
     "000099/DEV/storage-to-storage/cfg/storage-to-storage|000099|cfg|DEV|file-{{FD_DATE}}.csv"],
)
def test_ad_hoc_ids_of_every_provider_pass(ident: str) -> None:
    assert ok(f"run rivery:{ident}").args["pipeline"] == AdHocTarget("rivery", ident)


@pytest.mark.parametrize(
    ("ident", "expected"),
    [("x" * 201, "201 characters long; at most 200"), ("abc;drop", "is not a job id"), ("ab\u00e9c", "is not a job id"),
     ("a*b", "is not a job id")],
)
def test_ad_hoc_ids_are_bounded_and_plainly_spelt(ident: str, expected: str) -> None:
    assert expected in bad(f"run rivery:{ident}").message


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9b", "\x0b", "\u202e", "\u202a", "\u2066", "\u2069",
             "\u200e", "\u200f"],
)
@pytest.mark.parametrize("where", ["run rivery:abc{}def", "status 1{}", "list {}", "{}"])
def test_control_and_bidi_characters_are_refused_wherever_they_are(char: str, where: str) -> None:
    error = bad(where.format(char))
    assert f"U+{ord(char):04X}" in error.message
    assert char not in error.message


def test_ordinary_whitespace_still_separates_words() -> None:
    assert ok("run\tleads-ods\r\nday=1").args["params"] == {"day": "1"}


@pytest.mark.parametrize(("text", "expected"), [("status", None), ("status 12", 12), ("status #12", 12)])
def test_status(text: str, expected: int | None) -> None:
    assert ok(text).args.get("run") == expected


@pytest.mark.parametrize(("text", "n"), [("last leads-ods", 10), ("last leads-ods 1", 1), ("last leads-ods 50", 50)])
def test_last(text: str, n: int) -> None:
    assert dict(ok(text).args) == {"pipeline": "leads-ods", "n": n}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("list", None), ("list rivery", "rivery"), ("ls DataKitchen", "datakitchen"), ("list Finance", "Finance")],
)
def test_list_filter(text: str, expected: str | None) -> None:
    parsed = ok(text)
    assert parsed.spec.name == "list"
    assert parsed.args.get("filter") == expected


@pytest.mark.parametrize("text", ["cancel 42", "cancel #42"])
def test_cancel(text: str) -> None:
    parsed = ok(text)
    assert parsed.args["run"] == 42
    assert parsed.needs == "starter"


@pytest.mark.parametrize("name", ["enable", "disable", "archive", "reset", "unwatch", "unmute"])
def test_pipeline_only_commands(name: str) -> None:
    parsed = ok(f"{name} leads-ods")
    assert parsed.spec.name == name
    assert dict(parsed.args) == {"pipeline": "leads-ods"}
    assert parsed.needs == ("owner" if name == "unmute" else "change")


@pytest.mark.parametrize(
    ("text", "pipeline", "period"),
    [
        ("stats", None, timedelta(days=7)),
        ("stats 24h", None, timedelta(hours=24)),
        ("stats 2w", None, timedelta(days=14)),
        ("stats leads-ods", "leads-ods", timedelta(days=7)),
        ("stats leads-ods 30d", "leads-ods", timedelta(days=30)),
        ("stats LEADS-ODS 1d12h", "leads-ods", timedelta(days=1, hours=12)),
    ],
)
def test_stats_tells_a_period_from_a_pipeline(text: str, pipeline: str | None, period: timedelta) -> None:
    parsed = ok(text)
    assert parsed.args.get("pipeline") == pipeline
    assert parsed.args["period"] == period


@pytest.mark.parametrize(
    ("token", "channel"),
    [
        ("<#C0123ABCD|data-alerts>", "C0123ABCD"),
        ("<#C0123ABCD>", "C0123ABCD"),
        ("#data-alerts", "#data-alerts"),
        ("#Data-Alerts", "#data-alerts"),
        ("C0123ABCD", "C0123ABCD"),
    ],
)
def test_watch_channel_forms(token: str, channel: str) -> None:
    assert dict(ok(f"watch leads-ods {token}").args) == {"pipeline": "leads-ods", "channel": channel}


def test_watch_without_channel() -> None:
    assert dict(ok("watch leads-ods").args) == {"pipeline": "leads-ods"}


@pytest.mark.parametrize(
    ("text", "duration"),
    [
        ("mute leads-ods", timedelta(hours=1)),
        ("mute leads-ods 4h", timedelta(hours=4)),
        ("mute leads-ods 1h30m", timedelta(minutes=90)),
    ],
)
def test_mute(text: str, duration: timedelta) -> None:
    assert ok(text).args["duration"] == duration


@pytest.mark.parametrize("text", ["schedules", "schedule", "SCHEDULES"])
def test_schedules(text: str) -> None:
    assert ok(text).spec.name == "schedules"


@pytest.mark.parametrize(("text", "topic"), [("help", None), ("?", None), ("help run", "run"), ("help LS", "list")])
def test_help(text: str, topic: str | None) -> None:
    parsed = ok(text)
    assert parsed.spec.name == "help"
    assert parsed.args.get("command") == topic


# -- input as Slack and phones send it ------------------------------------------------------------


def test_slack_entities_are_undone_once() -> None:
    params = ok("run leads-ods sql=a&amp;b cmp=&lt;x&gt; literal=&amp;lt;").args["params"]
    assert params == {"sql": "a&b", "cmp": "<x>", "literal": "&lt;"}


def test_smart_quotes_work_like_plain_quotes() -> None:
    params = ok("run leads-ods note=“two words” other=‘one more’").args["params"]
    assert params == {"note": "two words", "other": "one more"}


def test_odd_spaces_and_invisible_characters() -> None:
    parsed = ok("run\u00a0leads\u200b-ods\u2003day=1")
    assert parsed.args["pipeline"] == "leads-ods"
    assert parsed.args["params"] == {"day": "1"}


def test_backslashes_and_hashes_stay_literal() -> None:
    assert ok(r"run leads-ods path=C:\data\in tag=#1").args["params"] == {"path": r"C:\data\in", "tag": "#1"}


def test_configured_command_shows_in_errors_and_suggestions() -> None:
    error = bad("rn leads-ods", command="/pb")
    assert error.suggestion == "/pb run leads-ods"
    assert "`/pb help`" in error.message
    assert error.usage == "/pb run <pipeline> [key=value …]"
    assert "/pipeline" not in error.message


# -- errors people can act on ----------------------------------------------------------------------


def test_unknown_command_with_a_close_one() -> None:
    error = bad("rn leads-ods day=1")
    assert error.message == "Unknown command `rn`. Did you mean `run`? Try `/pipeline help`."
    assert error.suggestion == "/pipeline run leads-ods day=1"
    assert error.usage == "/pipeline run <pipeline> [key=value …]"


def test_unknown_command_without_a_close_one_lists_the_commands() -> None:
    error = bad("frobnicate")
    assert "Unknown command `frobnicate`" in error.message
    assert all(spec.name in error.message for spec in COMMANDS)
    assert "`/pipeline help`" in error.message
    assert error.suggestion is None


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("leads-ods", "/pipeline run leads-ods"),
        ("Leads-ODS day=1", "/pipeline run leads-ods day=1"),
        ("nightly", "/pipeline run nightly"),
        ("rivery:123", "/pipeline run rivery:123"),
        ("leads-odss", "/pipeline run leads-ods"),
    ],
)
def test_pipeline_typed_as_a_command(text: str, line: str) -> None:
    error = bad(text)
    assert error.suggestion == line
    assert f"Did you mean `{line}`?" in error.message


def test_unknown_pipeline_with_close_names() -> None:
    error = bad('run leads-od note="two words"')
    assert error.message == "Unknown pipeline or workflow `leads-od`. Did you mean `leads-ods` or `leads-raw`?"
    assert error.suggestion == '/pipeline run leads-ods note="two words"'


def test_unknown_pipeline_by_a_fragment() -> None:
    error = bad("last finance")
    assert "Did you mean `finance-close`?" in error.message
    assert error.suggestion == "/pipeline last finance-close"


def test_unknown_pipeline_far_from_all_lists_five_and_points_to_list() -> None:
    error = bad("last zzz")
    assert error.message == (
        "Unknown pipeline `zzz`. Known: `crm-sync`, `daily-sales`, `finance-close`, `hr-export`, `leads-ods` "
        "and 2 more; see `/pipeline list`."
    )
    assert error.suggestion is None


def test_unknown_pipeline_in_an_empty_catalog() -> None:
    assert "no pipelines yet" in bad("last zzz", pipelines=()).message


@pytest.mark.parametrize(
    ("text", "needs"),
    [
        ("last", "a pipeline name"),
        ("enable", "a pipeline name"),
        ("disable", "a pipeline name"),
        ("archive", "a pipeline name"),
        ("reset", "a pipeline name"),
        ("watch", "a pipeline name"),
        ("unwatch", "a pipeline name"),
        ("mute", "a pipeline name"),
        ("unmute", "a pipeline name"),
        ("cancel", "a run number like 42 or #42"),
    ],
)
def test_missing_required_argument_gives_the_usage(text: str, needs: str) -> None:
    error = bad(text)
    spec = spec_named(text)
    assert spec is not None
    assert error.usage == f"/pipeline {spec.usage}"
    assert error.message.startswith(f"`/pipeline {text}` needs {needs}.")


def test_missing_pipeline_shows_an_example_from_the_catalog() -> None:
    assert "For example `/pipeline last crm-sync`; `/pipeline list` shows them all." in bad("last").message


def test_missing_run_points_to_status() -> None:
    assert "`/pipeline status` lists the runs in flight" in bad("cancel").message


@pytest.mark.parametrize(
    ("text", "shown", "accepted"),
    [
        ("status 1 2", "`2`", "/pipeline status 1"),
        ("schedules now", "`now`", "/pipeline schedules"),
        ("disable leads-ods leads-raw", "`leads-raw`", "/pipeline disable leads-ods"),
        ("help run please", "`please`", "/pipeline help run"),
        ("last leads-ods 5 6", "`6`", "/pipeline last leads-ods 5"),
        ("stats leads-ods 24h x", "`x`", "/pipeline stats leads-ods 24h"),
        ("watch leads-ods #a #b", "`#b`", "/pipeline watch leads-ods #a"),
    ],
)
def test_too_many_arguments_names_them(text: str, shown: str, accepted: str) -> None:
    error = bad(text)
    assert error.message.startswith(f"Unexpected {shown} after `{accepted}`.")
    assert error.suggestion == accepted
    assert error.usage is not None


def test_too_many_arguments_counts_the_rest() -> None:
    assert "`2`, `3`, `4` and 2 more" in bad("status 1 2 3 4 5 6").message


def test_parameters_on_a_command_that_takes_none() -> None:
    assert "Only run takes key=value parameters." in bad("disable leads-ods force=true").message


KV_FORM = "Write parameters as key=value, like `execution_date=2024-01-31`"


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("run leads-ods 2024-01-31", "`2024-01-31` is not a parameter."),
        ("run leads-ods --dry-run", "`--dry-run` is not a parameter."),
        ("run leads-ods =x", "`=x` has no name before `=`."),
        ("run leads-ods a=1 a=2", "`a` is given twice"),
        ('run leads-ods "my key=1"', "`my key` has a space"),
        ("run leads-ods k%y=1", "`k%y` is not a parameter name"),
        ("run leads-ods day = 2024", "Put no spaces around `=`."),
        ("run leads-ods day= 2024", "Put no spaces around `=`."),
        ("run leads-ods day =2024", "Put no spaces around `=`."),
    ],
)
def test_bad_key_value(text: str, start: str) -> None:
    error = bad(text)
    assert error.message.startswith(start)
    assert error.usage == "/pipeline run <pipeline> [key=value …]"
    if "twice" not in start:
        assert KV_FORM in error.message


def test_parameters_before_the_pipeline() -> None:
    error = bad("run day=2024-01-31")
    assert "Name the pipeline or workflow first" in error.message
    assert "`/pipeline run &lt;pipeline&gt; key=value`" in error.message


def test_unclosed_quote() -> None:
    error = bad("run leads-ods note='unclosed")
    assert error.message.startswith("A quote is not closed.")
    assert '`note="two words"`' in error.message
    assert error.usage == "/pipeline run <pipeline> [key=value …]"


def test_apostrophe_from_a_phone_is_an_unclosed_quote_with_the_fix() -> None:
    assert "`note=\"don't\"`" in bad("run leads-ods note=don’t").message


def test_double_quotes_hold_an_apostrophe() -> None:
    assert ok("run leads-ods note=\"don't\"").args["params"] == {"note": "don't"}


@pytest.mark.parametrize("token", ["0", "51", "100", "five", "-3", "5.5", "1e3"])
def test_bad_count(token: str) -> None:
    error = bad(f"last leads-ods {token}")
    assert f"is not a number of runs: give a whole number from 1 to {MAX_COUNT}, like 10." in error.message


@pytest.mark.parametrize("token", ["abc", "#", "#x1", "4.2", "-1", "1234567890123456789"])
def test_bad_run_reference(token: str) -> None:
    assert "is not a run: use a run number like 42 or #42" in bad(f"cancel {token}").message


def test_run_zero() -> None:
    assert "run numbers start at 1" in bad("status #0").message


def test_pipeline_given_where_a_run_goes() -> None:
    error = bad("status leads-ods")
    assert "is a pipeline, not a run" in error.message
    assert error.suggestion == "/pipeline last leads-ods"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("stats leads-ods weekly", "`weekly` is not a period: write it like 24h, 7d, 2w or 30d."),
        ("stats leads-ods 400d", "`400d` is too long a period: at most 366d."),
        ("stats 400d", "`400d` is too long a period"),
        ("stats 0h", "`0h` is not a period"),
        ("stats 99999999999999d", "is not a period"),
        ("mute leads-ods forever", "`forever` is not a duration: write it like 30m, 4h, 1h30m or 2d."),
        ("mute leads-ods 60d", "`60d` is too long a duration: at most 30d."),
        ("mute leads-ods 0m", "`0m` is not a duration"),
    ],
)
def test_bad_period_or_duration(text: str, fragment: str) -> None:
    assert fragment in bad(text).message


@pytest.mark.parametrize(
    ("token", "fragment", "suggestion"),
    [
        ("<@U0123ABCD|alice>", "is a person, not a channel", None),
        (
            "data-alerts",
            "Channels start with #: did you mean `#data-alerts`?",
            "/pipeline watch leads-ods #data-alerts",
        ),
        ("&lt;b&gt;", "`&lt;b&gt;` is not a channel", None),
        ("#", "is not a channel", None),
    ],
)
def test_bad_channel(token: str, fragment: str, suggestion: str | None) -> None:
    error = bad(f"watch leads-ods {token}")
    assert fragment in error.message
    assert error.suggestion == suggestion


def test_ad_hoc_with_a_misspelt_provider() -> None:
    error = bad("run rivry:123")
    assert "`rivry` is not a provider or connection. Did you mean `rivery:123`?" in error.message
    assert "`rivery:&lt;river id&gt;`" in error.message
    assert error.suggestion == "/pipeline run rivery:123"


def test_ad_hoc_with_an_unknown_prefix() -> None:
    error = bad("run foo:1")
    assert "`foo` is not a provider or connection." in error.message
    assert "Did you mean" not in error.message


def test_ad_hoc_without_an_id() -> None:
    assert "has no id after the colon: write it like `rivery:12345`" in bad("run rivery:").message


def test_help_for_an_unknown_command() -> None:
    error = bad("help rn")
    assert error.message == "No command `rn`. Did you mean `run`?"
    assert error.suggestion == "/pipeline help run"
    far = bad("help frobnicate")
    assert all(f"`{spec.name}`" in far.message for spec in COMMANDS)


def test_typed_markup_is_escaped_in_errors() -> None:
    nasty = ("run &lt;!channel&gt;", "run <!channel>", "run <https://evil|docs>", "frob&lt;@U1&gt;", "last a&amp;b")
    for text in nasty:
        assert_mrkdwn_safe(bad(text).message)
    assert "`&lt;!channel&gt;`" in bad("run &lt;!channel&gt;").message


def test_long_tokens_are_cut_short_in_messages() -> None:
    message = bad("run " + "x" * 3000).message
    assert len(message) < 600
    assert "…" in message


def test_backticks_cannot_break_out_of_code() -> None:
    message = bad("run a`b").message
    assert message.count("`") % 2 == 0


# -- never raises ----------------------------------------------------------------------------------
# hypothesis is not installed in the venv: a fixed list of nasty inputs plus a seeded random mix of
# fragments stands in for it.

NASTY = [
    "", " ", "\x00", "\n\n", '"', "'", "“", "‘", '""', "''", "run \"", "run '", "run “unclosed", "\\", "run \\",
    "run leads-ods \\\"", "&", "&amp;", "&lt;", "&gt;", "&amp;amp;", "<", ">", "<>", "<#>", "<#|>", "<@>", "<!channel>",
    "<!here|here>", "<https://evil.example|docs>", "watch leads-ods <#", "watch leads-ods <#C123|",
    "watch leads-ods <@U1>", "=", "==", "run =", "run leads-ods =", "run leads-ods a==", "run leads-ods ===", ":",
    "run :", "run ::", "run rivery::",
    "#", "##", "status #", "status ##1", "status 99999999999999999999999", "last leads-ods 99999999999999999999",
    "stats 9999999999999999999999999999d", "stats 1w1d", "stats 1000w", "mute leads-ods 1e9h", "mute leads-ods -1h",
    "RUN", "Help HELP", "?", "? ?", "-h", "--help", "ls ls ls", "run run run", "help help", "status status",
    "run\tleads-ods\tday=1", "run\u00a0", "\u200b", "\ufeffrun", "𝓻𝓾𝓷", "рун", "ｒｕｎ", "run 𝟙𝟚", "status ١٢",
    "last leads-ods ١٢", "run leads-ods key=\U0001f600", "\U0001f600", "run " + "a" * 10000, "x " * 2000,
    "run leads-ods " + " ".join(f"k{i}=v" for i in range(500)), "%s%s%n", "{command}", "{0}", "$(rm -rf /)",
    "`", "```", "run `leads-ods`", "*bold*", "_it_", "~s~", "run leads-ods note=`x`",
]
FRAGMENTS = [
    *(spec.name for spec in COMMANDS), *PIPELINES, "rivery:", "rivery-eu:9", "x=1", "=", "a=b=c", "'", '"', "“", "’",
    "&amp;", "&lt;", "&gt;", "<", ">", "<#C0123ABCD|x>", "<@U1|a>", "#12", "12", "0", "51", "24h", "0d", "400d", "2w",
    "#data", "C0123ABCD", "\\", " ", "  ", "\t", "\n", "\u00a0", "\u200b", "é", "😀", ":", "::", "`", "|", "#",
]


def check_never_raises(text: str) -> None:
    result = parse(text, pipelines=PIPELINES, providers=PROVIDERS, connections=CONNECTIONS, workflows=WORKFLOWS)
    assert isinstance(result, Parsed | ParseError)
    if isinstance(result, ParseError):
        assert_mrkdwn_safe(result.message)
        assert len(result.message) < 2000
        return
    names = {arg.name for arg in result.spec.args}
    assert set(result.args) <= names
    assert result.spec in COMMANDS


@pytest.mark.parametrize("text", NASTY)
def test_nasty_inputs_never_raise(text: str) -> None:
    check_never_raises(text)


def test_random_mixes_never_raise() -> None:
    rng = random.Random(20240131)
    for _ in range(3000):
        pieces = rng.choices(FRAGMENTS, k=rng.randint(0, 8))
        joiner = rng.choice([" ", "", "  "])
        check_never_raises(joiner.join(pieces))


def test_random_characters_never_raise() -> None:
    rng = random.Random(7)
    alphabet = "ab #:=<>&;|'\"“”‘’\\`\t\n0123456789wdhms@!-_." + "".join(map(chr, range(0x2000, 0x2010)))
    for _ in range(2000):
        check_never_raises("".join(rng.choices(alphabet, k=rng.randint(0, 30))))


def test_the_length_cap_counts_what_was_typed_not_slacks_escapes() -> None:
    """Slack sends ``&`` as ``&amp;``: 1,000 ampersands are 1,000 characters, not 5,000."""
    typed = run("run leads-ods note=" + "&amp;" * 1000)
    assert not (isinstance(typed, ParseError) and "at most 4,000" in typed.message), typed
    too_long = bad("run leads-ods note=" + "&lt;" * 4000)
    assert "at most 4,000" in too_long.message and "4,019 characters" in too_long.message, too_long.message
