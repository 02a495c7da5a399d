"""What `pipeline-bot check` says about a catalog: each problem at its file:line, one line per mistake, in plain
words, and what the running bot would refuse found first. Whole lines are asserted, line numbers included."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot.catalog.catalog import Catalog
from bot.catalog.load import load_catalog
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
ENV = {"TOKEN": "t0ken-value-long", "JWT": "jwt-value-long-enough", "KEY": "invision-key-long"}

#: lines 1-12 of every catalog below; what a test adds starts at line 13
CONNECTIONS = """\
defaults:
  channel: "#data-alerts"
connections:
  rivery-us:
    provider: rivery
    api_token: ${TOKEN}
  tailer:
    provider: tailer
    token: ${JWT}
  invision:
    provider: invision
    base_url: https://invision.example.com/invision/
"""
INVISION_KEY = "    api_key: ${KEY}\n"  # line 13: the InVision connection's key


def problems(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, monkeypatch, rest, env)
    return caught.value.problems


def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rest: str, env: dict[str, str] | None = None) -> Catalog:
    (tmp_path / "pipelines.yml").write_text(CONNECTIONS + textwrap.dedent(rest), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return load_catalog(Path("pipelines.yml"), ENV if env is None else env)


IOWA = """\
    api_key: ${KEY}
pipelines:
  iowa-liquor-pda:
    connection: tailer
    account: "000099"
    environment: DEV
    configuration_type: table-to-table
    configuration_id: iowa_prepare
"""


def test_a_misspelled_key_is_one_problem_at_its_line_and_the_pipeline_stays_known(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the pipeline was dropped, and the workflow using it said "'iowa-liquor-pda' is not a pipeline"."""
    assert problems(tmp_path, monkeypatch, IOWA + """\
    expected_duraton: 5m
workflows:
  daily:
    steps:
      transform: {pipeline: iowa-liquor-pda}
""") == [
        "pipelines.yml:21: pipelines.iowa-liquor-pda.expected_duraton: unknown key (did you mean 'expected_duration'?)"
    ]


def test_a_misspelled_provider_is_one_problem_its_pipelines_and_workflows_say_nothing_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the pipeline on it was dropped, and the workflow said "'iowa-liquor-pda' is not a pipeline"."""
    assert problems(tmp_path, monkeypatch, """\
    api_key: ${KEY}
  tailer-eu:
    provider: tailr
    token: ${JWT}
pipelines:
  iowa-liquor-pda:
    connection: tailer-eu
    account: "000099"
    environment: DEV
    configuration_type: table-to-table
    configuration_id: iowa_prepare
workflows:
  daily:
    steps:
      transform: {pipeline: iowa-liquor-pda}
""") == [
        "pipelines.yml:15: connections.tailer-eu.provider: 'tailr' is not a provider (did you mean 'tailer'?); use "
        "one of rivery, tailer, invision, datakitchen"
    ]


def test_a_connection_with_a_bad_field_is_its_own_problem_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider misspelled on the connection, two pipelines and a workflow on it: one line."""
    text = (CONNECTIONS + IOWA).replace("    provider: tailer\n", "    provider: tailr\n")
    (tmp_path / "pipelines.yml").write_text(text + textwrap.dedent("""\
      other:
        connection: tailer
        account: "000099"
        environment: DEV
        configuration_type: table-to-table
        configuration_id: other_prepare
    workflows:
      daily:
        steps:
          transform: {pipeline: iowa-liquor-pda, on_success: other}
          other: {pipeline: other}
    """), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_catalog(Path("pipelines.yml"), ENV)
    assert caught.value.problems == [
        "pipelines.yml:8: connections.tailer.provider: 'tailr' is not a provider (did you mean 'tailer'?); use one "
        "of rivery, tailer, invision, datakitchen"
    ]


def test_an_unset_variable_is_said_once_whatever_uses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: one line for each use, and the pipelines on those connections were dropped."""
    assert problems(tmp_path, monkeypatch, """\
    api_key: ${TOKEN}
  rivery-eu:
    provider: rivery
    api_token: ${TOKEN}
pipelines:
  leads-ods: {connection: rivery-us, river_id: r1}
  orders-eu: {connection: rivery-eu, river_id: r2}
""", env={"JWT": ENV["JWT"]}) == [
        "pipelines.yml:6: connections.rivery-us.api_token: environment variable TOKEN is not set (also used by "
        "connections.invision.api_key, connections.rivery-eu.api_token); set it in .env or the environment"
    ]


def test_an_unset_variable_is_not_also_a_connection_without_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the Tailer connection also said it "needs exactly one of token, refresh_token…" (got none)."""
    assert problems(tmp_path, monkeypatch, "    api_key: ${KEY}\nroutes: []\n", env={"TOKEN": ENV["TOKEN"], "KEY": ENV["KEY"]}) == [
        "pipelines.yml:9: connections.tailer.token: environment variable JWT is not set; set it in .env or the "
        "environment"
    ]


def test_a_bad_default_channel_is_not_also_each_pipeline_without_a_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: the defaults were dropped, and each watched or scheduled pipeline said it had no channel."""
    (tmp_path / "pipelines.yml").write_text(
        (CONNECTIONS + "    api_key: ${KEY}\n").replace('"#data-alerts"', "data-alerts")
        + "  rivery-eu: {provider: rivery, api: v1, account_id: a1, environment_id: e1, api_token: \"${TOKEN}\"}\n"
        "pipelines:\n"
        "  orders-eu: {connection: rivery-eu, river_id: r1, watch: true}\n"
        "  leads-ods: {connection: rivery-us, river_id: r2, schedule: {cron: '0 6 * * *'}}\n"
        "routes:\n"
        "  - {tag: finance, channel: finance}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_catalog(Path("pipelines.yml"), ENV)
    assert caught.value.problems == [
        "pipelines.yml:2: defaults.channel: 'data-alerts' is not a channel: use its id (C0123ABCD) or #name in "
        "lower case",
        "pipelines.yml:19: routes[0].channel: 'finance' is not a channel: use its id (C0123ABCD) or #name in lower "
        "case",
    ]


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("owners: U0ALICE01", "pipelines.a.owners: owners must be a list, e.g. [U0ALICE01]"),
        ('watch: "yes please"', "pipelines.a.watch: watch must be true or false"),
        ("tags: ingest", "pipelines.a.tags: tags must be a list, e.g. [ingest]"),
        ("description: [a, b]", "pipelines.a.description: description must be text, e.g. a word in quotes"),
        ("expected_duration: soon", "pipelines.a.expected_duration: 'soon' is not a duration; write it like 90s, "
         "15m, 1h30m or 2d"),
        ("retry: {attempts: 0}", "pipelines.a.retry.attempts: attempts must be 1 or more"),
        ("retry: {attempts: many}", "pipelines.a.retry.attempts: attempts must be a whole number, e.g. 3"),
        ("retry: {on: [failed, broken]}", "pipelines.a.retry.on.1: on[1] must be one of failed, unknown"),
        ("retry: 3", "pipelines.a.retry: retry must be a mapping of keys to values, e.g. {key: value}"),
        ("owners: {alice: U0ALICE01}", "pipelines.a.owners: owners must be a list, e.g. [U0ALICE01, S0DATAENG]"),
        ("retry: {attempt: 3}", "pipelines.a.retry.attempt: unknown key (did you mean 'attempts'?)"),
        ("retry: {tries: 3}", "pipelines.a.retry.tries: unknown key; known keys: attempts, backoff, on, resume"),
        ("description: yes", "pipelines.a.description: description must be text: put it in quotes (YAML reads "
         "yes, no, on, off, true and false unquoted as true or false)"),
        ("schedule: {cron: '0 6 * * *', parameters: {day: 2024-01-31}}", "pipelines.a.schedule.parameters.day: day "
         "must be text: put it in quotes (YAML reads 2024-01-31 unquoted as a date)"),
        ("parameters: {day: {type: dat}}", "pipelines.a.parameters.day.type: type must be one of string, date, int, "
         "bool, choice"),
        ("parameters: {day: {required: maybe}}", "pipelines.a.parameters.day.required: required must be true or "
         "false"),
    ],
)
def test_a_wrong_value_is_said_in_plain_words_with_what_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str, said: str
) -> None:
    found = problems(tmp_path, monkeypatch, f"""\
    api_key: ${{KEY}}
pipelines:
  a:
    connection: rivery-us
    river_id: r1
    {written}
""")
    assert found == [f"pipelines.yml:18: {said}"]
    assert not any(pydantic in found[0] for pydantic in ("Input should", "unable to", "Field required", "Extra inputs"))


def test_a_missing_field_is_said_at_its_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems(tmp_path, monkeypatch, """\
    api_key: ${KEY}
pipelines:
  a:
    connection: rivery-us
""") == ["pipelines.yml:15: pipelines.a.river_id: river_id is required"]


def test_retry_on_is_the_key_on_not_yaml_s_true(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """YAML 1.1 reads a bare `on:` key as the boolean true: before, `retry: {on: [failed]}` was an error."""
    catalog = load(tmp_path, monkeypatch, """\
    api_key: ${KEY}
pipelines:
  a: {connection: rivery-us, river_id: r1, retry: {on: [failed, unknown]}}
""")
    retry = catalog.pipelines["a"].retry
    assert retry is not None and retry.on == ("failed", "unknown")


def test_watching_where_runs_cannot_be_listed_is_refused_by_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The running bot skips such a pipeline: its failures would reach nobody. Before, check said ok."""
    assert problems(tmp_path, monkeypatch, """\
    api_key: ${KEY}
pipelines:
  leads-ods: {connection: rivery-us, river_id: r1, watch: true}
  budget:
    connection: invision
    dataflow_id: d1
    watch: true
""") == [
        "pipelines.yml:15: pipelines.leads-ods.watch: cannot be watched: connection rivery-us uses Rivery's legacy "
        "API, which cannot list runs (api: v1 can); remove watch: true",
        "pipelines.yml:19: pipelines.budget.watch: cannot be watched: InVision's API cannot list runs; remove watch: "
        "true",
    ]


def test_watching_where_runs_cannot_be_listed_is_refused_also_when_the_pipeline_has_another_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two mistakes, two problems in one check: the refusal was hidden until the other was fixed (found replaying
    issue 15 on the example catalog with `owners: U0ALICE01` and `watch: true` on a legacy Rivery pipeline)."""
    assert problems(tmp_path, monkeypatch, """\
    api_key: ${KEY}
pipelines:
  leads-ods: {connection: rivery-us, river_id: r1, owners: U0ALICE01, watch: true}
  budget: {connection: invision, dataflow_id: d1, expected_duraton: 5m, watch: true}
  fine: {connection: invision, dataflow_id: d2, owners: U0ALICE01, watch: false}
""") == [
        "pipelines.yml:15: pipelines.leads-ods.owners: owners must be a list, e.g. [U0ALICE01]",
        "pipelines.yml:15: pipelines.leads-ods.watch: cannot be watched: connection rivery-us uses Rivery's legacy "
        "API, which cannot list runs (api: v1 can); remove watch: true",
        "pipelines.yml:16: pipelines.budget.expected_duraton: unknown key (did you mean 'expected_duration'?)",
        "pipelines.yml:16: pipelines.budget.watch: cannot be watched: InVision's API cannot list runs; remove watch: "
        "true",
        "pipelines.yml:17: pipelines.fine.owners: owners must be a list, e.g. [U0ALICE01]",
    ]


def test_watching_by_default_where_runs_cannot_be_listed_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = load(tmp_path, monkeypatch, """\
    api_key: ${KEY}
pipelines:
  budget: {connection: invision, dataflow_id: d1}
""")
    assert catalog.warnings == ()  # defaults.watch is false here
    text = (tmp_path / "pipelines.yml").read_text().replace('  channel: "#data-alerts"\n', '  channel: "#a"\n  watch: true\n')
    (tmp_path / "pipelines.yml").write_text(text)
    catalog = load_catalog(Path("pipelines.yml"), ENV)
    assert catalog.warnings == (
        "pipelines.budget: not watched although defaults.watch is true: InVision's API cannot list runs; set "
        "watch: false on it",
    )


def test_a_schedule_its_pipeline_or_workflow_would_refuse_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: check said ok, and every slot failed to start with a log line only."""
    assert problems(tmp_path, monkeypatch, """\
    api_key: ${KEY}
pipelines:
  orders:
    connection: tailer
    account: "000099"
    environment: DEV
    configuration_type: table-to-table
    configuration_id: orders
    parameters: {execution_date: {type: date, required: true}}
    schedule: {cron: "0 6 * * *"}
  budget:
    connection: invision
    dataflow_id: d1
    schedule: {cron: "0 6 * * *", parameters: {year: "2026"}}
workflows:
  daily:
    parameters: {size: {type: int}}
    schedule: {cron: "0 7 * * *", parameters: {size: large, colour: red}}
    steps:
      orders: {pipeline: orders, parameters: {execution_date: "2026-01-01"}}
""") == [
        "pipelines.yml:22: pipelines.orders.schedule.parameters: execution_date is required by orders and has no "
        "default: give it here, like execution_date: …",
        "pipelines.yml:26: pipelines.budget.schedule.parameters: InVision runs take no parameters; remove them",
        "pipelines.yml:30: workflows.daily.schedule.parameters.colour: daily takes no parameter 'colour'; it "
        "takes: size",
        "pipelines.yml:30: workflows.daily.schedule.parameters.size: 'large' must be a whole number written with "
        "the digits 0-9, like 42",
    ]


def test_control_characters_from_the_file_are_printed_as_escapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key is printed in the line's path: an escape sequence in it must not reach the terminal."""
    assert problems(tmp_path, monkeypatch, """\
    api_key: ${KEY}
pipelines:
  a:
    connection: rivery-us
    river_id: r1
    "watch\\e[2J\\u202e": true
""") == [
        "pipelines.yml:18: pipelines.a.watch\\x1b[2J\\u202e: unknown key (did you mean 'watch'?)"
    ]


def test_a_service_account_file_the_client_could_not_read_is_a_problem_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: check said ok; the Tailer client, made at the first call, then refused it."""
    (tmp_path / "sa.json").write_text("not json", encoding="utf-8")
    (tmp_path / "pipelines.yml").write_text(
        CONNECTIONS.replace("    token: ${JWT}\n", "    service_account_file: missing.json\n")
        + "    api_key: ${KEY}\n"
        "  tailer-eu:\n"
        "    provider: tailer\n"
        "    service_account_file: sa.json\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_catalog(Path("pipelines.yml"), ENV)
    assert caught.value.problems == [
        "pipelines.yml:9: connections.tailer.service_account_file: cannot read missing.json: No such file or "
        "directory",
        "pipelines.yml:16: connections.tailer-eu.service_account_file: sa.json: the service account key is not "
        "valid JSON",
    ]


def test_a_key_given_twice_is_a_problem_at_both_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems(tmp_path, monkeypatch, """\
    api_key: ${KEY}
pipelines:
  a:
    connection: rivery-us
    river_id: r1
    river_id: r2
""") == [
        "pipelines.yml:18: pipelines.a.river_id: the key 'river_id' is given twice (first at pipelines.yml:17); "
        "YAML would keep only the last: remove one"
    ]


def test_the_real_cli_exits_1_and_prints_each_problem_at_its_line(tmp_path: Path) -> None:
    """`python -m bot check --catalog F --catalog-only` on a broken file: the whole output."""
    (tmp_path / "broken.yml").write_text(CONNECTIONS + textwrap.dedent("""\
        api_key: ${KEY}
    pipelines:
      orders-eu:
        connection: rivery-us
        river_id: r1
        owners: U0ALICE01
        expected_duraton: 10m
      budget: {connection: invision, dataflow_id: d1, watch: true}
    workflows:
      daily:
        steps:
          ingest: {pipeline: orders-eu}
    """), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PIPELINES_FILE"))}
    env.update(ENV)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--catalog", "broken.yml", "--catalog-only", "--env-file", "none"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "pipeline-bot check: 3 problem(s)",
        "  - broken.yml:18: pipelines.orders-eu.owners: owners must be a list, e.g. [U0ALICE01]",
        "  - broken.yml:19: pipelines.orders-eu.expected_duraton: unknown key (did you mean 'expected_duration'?)",
        "  - broken.yml:20: pipelines.budget.watch: cannot be watched: InVision's API cannot list runs; remove "
        "watch: true",
    ]
