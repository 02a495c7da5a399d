from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.catalog.load import load_catalog, parse_catalog
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_ENV = {k: v or "" for k, v in dotenv_values(ROOT / ".env.example").items()}


def problems_of(text: str, env: dict[str, str] | None = None, tmp: Path | None = None) -> list[str]:
    import yaml

    with pytest.raises(ConfigError) as err:
        parse_catalog(yaml.safe_load(textwrap.dedent(text)), env if env is not None else {"TOKEN": "t0ken-value"})
    return err.value.problems


def test_the_example_catalog_is_valid_and_covers_every_provider() -> None:
    catalog = load_catalog(ROOT / "pipelines.example.yml", EXAMPLE_ENV)
    assert set(catalog.by_provider()) == {"rivery", "tailer", "invision", "datakitchen"}
    leads = catalog.pipelines["leads-ods"]
    assert leads.provider == "rivery"
    assert leads.job.model_dump()["river_id"] == "5e8e1eb46b028e37b73f44f0"
    assert leads.expected_duration == timedelta(minutes=10)
    assert leads.watch is True
    assert leads.owners == ("U0ALICE01",)
    # defaults apply where a pipeline says nothing
    assert catalog.pipelines["orders-eu"].owners == ("S0DATAENG",)
    # routing: own channel, then rules, then the default
    assert catalog.channel_for(catalog.pipelines["budget-consolidation"]) == "#finance-data"
    assert catalog.channel_for(catalog.pipelines["sales-dashboard"]) == "#analytics-ops"
    assert catalog.channel_for(catalog.pipelines["orders-eu"]) == "#finance-data"
    assert catalog.channel_for(catalog.pipelines["leads-ods"]) == "#data-alerts"
    # secrets were resolved from the environment and stay secret
    token = catalog.connections["rivery-us"].model_dump()["api_token"]
    assert token.get_secret_value() == "rivery-token-example"
    assert "rivery-token-example" not in repr(catalog.connections["rivery-us"])


def test_every_problem_is_listed_with_its_path() -> None:
    problems = problems_of(
        """
        connectons: {}
        connections:
          riv:
            provider: rivery
            api_token: ${MISSING_TOKEN}
          dk:
            provider: datakitchn
          inv:
            provider: invision
            base_url: https://x/invision/
            api_key: literally-the-key
        pipelines:
          leads-ods:
            connection: riv
            rivr_id: abc
          other:
            connection: rivery-eu
          Bad Name:
            connection: riv
          slow:
            connection: inv
            dataflow_id: f1
            expected_duration: soon
            owners: [alice]
            parameters: {day: "2024-01-01"}
        """
    )
    text = "\n".join(problems)
    assert "connectons: unknown key (did you mean 'connections'?)" in text
    assert "connections.riv.api_token: environment variable MISSING_TOKEN is not set" in text
    assert "connections.dk.provider: 'datakitchn' is not a provider (did you mean 'datakitchen'?)" in text
    assert "connections.inv.api_key: secrets do not belong in the catalog" in text
    assert "pipelines.leads-ods.river_id: field required" in text
    assert "pipelines.leads-ods.rivr_id: unknown key (did you mean 'river_id'?)" in text
    assert "pipelines.other.connection: 'rivery-eu' is not a connection" in text
    assert "pipelines.Bad Name: the name is typed in Slack commands" in text
    assert "pipelines.slow.expected_duration: 'soon' is not a duration" in text
    assert "pipelines.slow.owners.0: 'alice' is not a Slack id" in text
    assert "pipelines.slow.parameters: InVision runs take no parameters" in text
    assert len(problems) >= 11


def test_a_missing_file_and_bad_yaml_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_catalog(tmp_path / "nope.yml", {})
    assert "no such file" in err.value.problems[0]
    bad = tmp_path / "bad.yml"
    bad.write_text("pipelines:\n  a: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_catalog(bad, {})
    assert "not valid YAML at line" in err.value.problems[0]


def test_parameters_are_typed_and_defaults_checked() -> None:
    problems = problems_of(
        """
        connections:
          dk: {provider: datakitchen, username: bot, password: "${TOKEN}"}
        pipelines:
          p:
            connection: dk
            kitchen: k
            recipe: r
            variation: v
            parameters:
              size: {type: choice}
              day: {type: date, default: tomorrow}
              "bad name": x
        """
    )
    text = "\n".join(problems)
    assert "type choice needs a list of choices" in text
    assert "default 'tomorrow': must be a date like 2024-01-31" in text
    assert "parameter name 'bad name'" in text


def test_short_parameter_form_and_routes() -> None:
    import yaml

    catalog = parse_catalog(
        yaml.safe_load(
            """
            defaults: {channel: "#d"}
            routes: [{pipeline: "ingest-*", channel: "#ingest"}]
            connections:
              dk: {provider: datakitchen, username: bot, password: "${TOKEN}"}
            pipelines:
              ingest-a: {connection: dk, kitchen: k, recipe: r, variation: v, parameters: {limit: 10}}
            """
        ),
        {"TOKEN": "secret-value"},
    )
    p = catalog.pipelines["ingest-a"]
    assert p.parameters["limit"].default == "10"
    assert catalog.channel_for(p) == "#ingest"


def test_a_watched_pipeline_with_nowhere_to_alert_and_owners_nobody_can_be_mentioned_as_are_errors() -> None:
    """A watched pipeline's failures have no card: with no channel anywhere they would only reach a log line.
    Owners are mentioned in alerts: a channel id there would silently mention nobody."""
    problems = problems_of(
        """
        defaults: {owners: [C0DATAOPS1]}
        connections:
          rv: {provider: rivery, api_token: "${TOKEN}"}
        pipelines:
          watched: {connection: rv, river_id: r1, watch: true}
          routed: {connection: rv, river_id: r2, watch: true, tags: [finance]}
          quiet: {connection: rv, river_id: r3, owners: [U0BOB, G0GROUPS1]}
        routes:
          - {tag: finance, channel: "#finance"}
        """
    )
    assert "pipelines.watched: watched but no channel for alerts; set channel or defaults.channel" in problems
    assert not [p for p in problems if p.startswith("pipelines.routed")]  # a route gives it one
    assert not [p for p in problems if p.startswith("pipelines.quiet:")]  # not watched: its card shows it
    assert any(p.startswith("defaults.owners: 'C0DATAOPS1' cannot be mentioned") for p in problems)
    assert any(p.startswith("pipelines.quiet.owners: 'G0GROUPS1' cannot be mentioned") for p in problems)
    assert len(problems) == 3, problems
