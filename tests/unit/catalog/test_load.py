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
    assert leads.watch is False  # a legacy Rivery connection cannot list runs
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
    assert "pipelines.leads-ods.rivr_id: unknown key (did you mean 'river_id'?)" in text
    assert "river_id is required" not in text  # the same mistake: said once, by the typo's line
    assert "pipelines.other.connection: 'rivery-eu' is not a connection" in text
    assert "pipelines.Bad Name: the name is typed in Slack commands" in text
    assert "pipelines.slow.expected_duration: 'soon' is not a duration" in text
    assert "pipelines.slow.owners.0: 'alice' is not a Slack id" in text
    assert "pipelines.slow.parameters: InVision runs take no parameters" in text
    assert len(problems) >= 10


def test_a_missing_file_and_bad_yaml_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_catalog(tmp_path / "nope.yml", {})
    assert "no such file" in err.value.problems[0]
    bad = tmp_path / "bad.yml"
    bad.write_text("pipelines:\n  a: [1, 2\n")
    with pytest.raises(ConfigError) as err:
        load_catalog(bad, {})
    assert err.value.problems[0].startswith(f"{bad}:3: not valid YAML (column 1)"), err.value.problems


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


def test_bool_parameters_and_the_types_a_datakitchen_job_keeps() -> None:
    import yaml

    assert "default 'maybe': must be true or false" in "\n".join(problems_of(
        """
        connections:
          dk: {provider: datakitchen, username: bot, password: "${TOKEN}"}
        pipelines:
          p: {connection: dk, kitchen: k, recipe: r, variation: v, parameters: {full: {type: bool, default: maybe}}}
        """
    ))
    catalog = parse_catalog(yaml.safe_load(
        """
        connections:
          dk: {provider: datakitchen, username: bot, password: "${TOKEN}"}
          inv: {provider: invision, base_url: "https://x/invision/", api_key: "${TOKEN}"}
        pipelines:
          p:
            connection: dk
            kitchen: k
            recipe: r
            variation: v
            parameters: {full: {type: bool, default: "True"}, size: {type: int}, day: {type: date}, name: x}
          q: {connection: inv, dataflow_id: f1}
        """
    ), {"TOKEN": "secret-value"})
    dk = catalog.pipelines["p"]
    assert dk.parameters["full"].problem_with("false") is None
    assert dk.job.model_dump()["parameter_types"] == {"full": "bool", "size": "int"}  # sent as JSON values
    assert "parameter_types" not in catalog.pipelines["q"].job.model_dump()  # other providers: text only


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


TAILER_CATALOG = """
connections:
  t: {provider: tailer, token: "${TOKEN}"}
pipelines:
  files:
    connection: t
    account: "000099"
    environment: DEV
    configuration_type: storage-to-storage
    configuration_id: 000099-jarvis-demo
"""


def test_a_tailer_job_without_a_derivable_job_id_must_name_it() -> None:
    [problem] = problems_of(TAILER_CATALOG)
    assert problem.startswith("pipelines.files: job_id: required for configuration_type storage-to-storage")
    assert "full identity" in problem and "get_last_status" in problem


def test_a_tailer_pipeline_tailer_does_not_launch_cannot_be_scheduled_nor_a_workflow_step() -> None:
    text = TAILER_CATALOG + """\
    job_id: "storage-to-storage|000099|000099-jarvis-demo|DEV|stores-{{FD_DATE}}.csv"
    watch: true
    channel: "#ops"
    schedule: {cron: "0 6 * * *"}
workflows:
  nightly:
    steps:
      load: {pipeline: files}
"""
    problems = problems_of(text)
    assert any(p.startswith("pipelines.files.schedule: this pipeline cannot be run: Tailer's API launches only")
               for p in problems), problems
    watched = textwrap.dedent(text).replace('    schedule: {cron: "0 6 * * *"}\n', "").split("workflows:")[0]
    import yaml

    catalog = parse_catalog(yaml.safe_load(watched), {"TOKEN": "t0ken-value"})
    assert catalog.pipelines["files"].watch  # watching it is fine
    without_schedule = textwrap.dedent(text).replace('    schedule: {cron: "0 6 * * *"}\n', "")
    [step] = problems_of(without_schedule)
    assert step.startswith("workflows.nightly.steps.load.pipeline: files cannot be run: Tailer's API launches only")
# -- found by an independent pass (issue 11) ---------------------------------------------------------------------

RIVERY = "{provider: rivery, base_url: 'https://api.rivery.io', api_token: '${TOKEN}'}"


def load_problems(tmp: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    path = tmp / "pipelines.yml"
    path.write_text(textwrap.dedent(text).lstrip())
    with pytest.raises(ConfigError) as err:
        load_catalog(path, env if env is not None else {"TOKEN": "t0ken-value"})
    return err.value.problems


def test_a_key_given_twice_at_any_depth_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    problems = load_problems(
        tmp_path,
        f"""
        connections:
          r: {RIVERY}
          r: {{provider: rivery, base_url: 'https://evil.example', api_token: '${{TOKEN}}'}}
        pipelines:
          a:
            connection: r
            river_id: abc
            allow_run: [U0ALICE]
            parameters:
              day: {{type: date, type: int}}
            allow_run: ["*"]
          a:
            connection: r
            river_id: def
        pipelines:
          b: {{connection: r, river_id: x}}
        """,
    )
    path = tmp_path / "pipelines.yml"
    assert f"{path}:3: connections.r: the key 'r' is given twice (first at {path}:2)" in "\n".join(problems)
    assert any(p.startswith(f"{path}:10: pipelines.a.parameters.day.type: the key 'type' is given twice (first at "
                            f"{path}:10)") for p in problems), problems
    assert any(p.startswith(f"{path}:11: pipelines.a.allow_run: the key 'allow_run' is given twice (first at "
                            f"{path}:8)") for p in problems), problems
    assert any(p.startswith(f"{path}:12: pipelines.a: the key 'a' is given twice (first at {path}:5)")
               for p in problems), problems
    assert any(p.startswith(f"{path}:15: pipelines: the key 'pipelines' is given twice (first at {path}:4)")
               for p in problems), problems
    assert len([p for p in problems if "given twice" in p]) == 5


def test_the_same_key_in_different_mappings_and_yaml_merge_keys_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "pipelines.yml"
    path.write_text(textwrap.dedent(f"""
        connections:
          r: {RIVERY}
        pipelines:
          a: &base {{connection: r, river_id: abc, description: first}}
          b:
            <<: *base
            description: second
        """))
    catalog = load_catalog(path, {"TOKEN": "t0ken-value"})
    assert catalog.pipelines["b"].description == "second"
    assert catalog.warnings == ()


def test_plain_http_to_another_host_is_a_warning_and_to_this_machine_is_quiet() -> None:
    import yaml

    def warnings_for(url: str) -> tuple[str, ...]:
        raw = yaml.safe_load(f"connections: {{r: {{provider: rivery, base_url: '{url}', api_token: '${{T}}'}}}}")
        return parse_catalog(raw, {"T": "t0ken-rivery"}).warnings

    (warning,) = warnings_for("http://rivery.internal:8080/api")
    assert warning.startswith("connections.r.base_url: http://rivery.internal sends the connection's credentials "
                              "in clear text; use https://")
    for quiet in ("https://api.rivery.io", "http://127.0.0.1:8001/api", "http://localhost:9", "http://[::1]:9/"):
        assert warnings_for(quiet) == (), quiet


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://169.254.170.2/v2/credentials",
        "http://[fd00:ec2::254]/latest/",
        "http://[fe80::1]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./",
        "http://2852039166/",  # 169.254.169.254 as one number: the resolver takes it
        "http://0xa9.0xfe.0xa9.0xfe/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.100.100.200/latest/meta-data/",
    ],
)
def test_a_base_url_at_a_metadata_or_link_local_address_is_an_error(url: str) -> None:
    problems = problems_of(f"connections: {{r: {{provider: rivery, base_url: '{url}', api_token: '${{TOKEN}}'}}}}")
    assert len(problems) == 1, problems
    assert problems[0].startswith("connections.r.base_url: ")
    assert "is a link-local or cloud metadata address" in problems[0]


def test_a_base_url_that_is_no_http_url_is_an_error() -> None:
    problems = problems_of("connections: {r: {provider: rivery, base_url: 'ftp://files.example', api_token: '${TOKEN}'}}")
    assert problems == ["connections.r.base_url: 'ftp://files.example' is not an http(s) URL; "
                        "write it like https://host/path"]


def test_each_secret_problem_is_reported_once_without_a_field_required() -> None:
    problems = problems_of(
        """
        connections:
          inv: {provider: invision, base_url: "https://x/invision/", api_key: literally-the-key}
          dk: {provider: datakitchen, username: bot, password: "${MISSING}"}
          riv: {provider: rivery, api_token: 12345}
        """
    )
    assert sorted(problems) == sorted([
        "connections.inv.api_key: secrets do not belong in the catalog; put it in an environment variable and "
        "write api_key: ${API_KEY}",
        "connections.dk.password: environment variable MISSING is not set; set it in .env or the environment",
        "connections.riv.api_token: must be a reference to an environment variable, like ${API_TOKEN}",
    ])


@pytest.mark.parametrize("value", ["١٢٣", "１２", "12३", "-৪২"])  # Arabic-Indic, fullwidth, Devanagari, Bengali
def test_int_parameters_take_only_ascii_digits(value: str) -> None:
    from bot.catalog.model import ParameterSpec

    assert ParameterSpec(type="int").problem_with(value) == "must be a whole number written with the digits 0-9, like 42"


def test_int_parameters_take_ascii_whole_numbers_and_check_their_default() -> None:
    from bot.catalog.model import ParameterSpec

    spec = ParameterSpec(type="int")
    assert [spec.problem_with(v) for v in ("42", "-7", "+3", "007")] == [None] * 4
    problems = problems_of(
        """
        connections:
          dk: {provider: datakitchen, username: bot, password: "${TOKEN}"}
        pipelines:
          p: {connection: dk, kitchen: k, recipe: r, variation: v, parameters: {n: {type: int, default: "١٢٣"}}}
        """
    )
    assert problems == ["pipelines.p.parameters.n: default '١٢٣': must be a whole number written with the digits "
                        "0-9, like 42"]


def test_a_watched_pipeline_with_nowhere_to_alert_and_owners_nobody_can_be_mentioned_as_are_errors() -> None:
    """A watched pipeline's failures have no card: with no channel anywhere they would only reach a log line.
    Owners are mentioned in alerts: a channel id there would silently mention nobody."""
    problems = problems_of(
        """
        defaults: {owners: [C0DATAOPS1]}
        connections:
          rv: {provider: rivery, api: v1, account_id: a1, environment_id: e1, api_token: "${TOKEN}"}
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


def test_a_provider_secret_too_short_to_be_real_is_refused_without_showing_it() -> None:
    """A placeholder or a value cut short; and a secret that short could never be redacted from a message."""
    problems = problems_of(
        """
        connections:
          riv: {provider: rivery, api_token: "${RIVERY_TOKEN}"}
          dk: {provider: datakitchen, username: bot, password: "${DK_PASSWORD}"}
          inv: {provider: invision, base_url: "https://x/invision/", api_key: "${IV_KEY}"}
        """,
        {"RIVERY_TOKEN": "abc", "DK_PASSWORD": "pa55wd", "IV_KEY": "long-enough-key"},
    )
    assert sorted(problems) == sorted([
        "connections.riv.api_token: the value of RIVERY_TOKEN is shorter than 8 characters: not a real credential "
        "(a placeholder, or cut short when copied?)",
        "connections.dk.password: the value of DK_PASSWORD is shorter than 8 characters: not a real credential "
        "(a placeholder, or cut short when copied?)",
    ])


# -- second independent pass: start-up ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "api_key", "written"),
    [
        ("${INVISION_API_KEY}", "${INVISION_URL}", "'${INVISION_API_KEY}'"),  # two fields swapped
        # the user and password never quoted, even as written (a literal one beside a ${NAME}): fifteenth pass (b)
        ("ftp://u:${INVISION_API_KEY}@h/", "${INVISION_API_KEY}", "'ftp://…@h/'"),
    ],
    ids=["swapped-fields", "key-in-a-non-http-url"],
)
def test_a_url_problem_quotes_the_url_as_written_never_the_secret_it_resolved_to(
    tmp_path: Path, base_url: str, api_key: str, written: str
) -> None:
    key = "dd63a1ad-60eb-4066-8d71-1721007437b4"
    path = tmp_path / "pipelines.yml"
    path.write_text(
        "connections:\n"
        f"  inv: {{provider: invision, base_url: \"{base_url}\", api_key: \"{api_key}\"}}\n"
        "pipelines:\n  x: {connection: inv, dataflow_id: abc}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_catalog(path, {"INVISION_API_KEY": key, "INVISION_URL": "https://x.example.com/"})
    text = "\n".join(caught.value.problems)
    assert key not in text and key[:8] not in text, text
    assert f"connections.inv.base_url: {written} is not an http(s) URL" in text, text


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"connections:\n  r: {provider: [rivery]}\n",
         "pipelines.yml:2: connections.r.provider: a list is not a provider; use one of rivery, tailer, invision, "
         "datakitchen"),
        (b"pipelines:\n  caf\xe9: {}\n", "pipelines.yml:2: not UTF-8 text (byte 0xe9 at offset 16); save it as UTF-8"),
        (b"version: 1\x00\n", "pipelines.yml:1: not valid YAML (column 11): special characters are not allowed"),
        (b"pipelines: " + b"[" * 2000 + b"]" * 2000 + b"\n",
         "pipelines.yml: nested too deeply to be a catalog (brackets left open?)"),
        (b'x-a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
         b"x-b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nx-c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
         b"x-d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nx-e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
         b"x-f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\nversion: *f\n",
         "pipelines.yml:7: version: a list is not supported; this bot reads version 1"),
        (b"version: " + b"9" * 500 + b"\n", "pipelines.yml:1: version: " + "9" * 79 + "… is not supported"),
    ],
    ids=["unhashable-provider", "latin-1", "nul-byte", "deep-nesting", "alias-expansion", "long-value"],
)
def test_a_broken_file_is_one_problem_line_never_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, said: str
) -> None:
    (tmp_path / "pipelines.yml").write_bytes(content)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        load_catalog(Path("pipelines.yml"), {})
    assert any(line.startswith(said) for line in caught.value.problems), caught.value.problems
    assert all(len(line) < 400 for line in caught.value.problems)


# -- second independent pass: every URL the credentials go to is checked, console links are http(s) -------------------


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest", "http://metadata.google.internal/token"])
def test_a_tailer_token_url_at_a_metadata_address_is_an_error(url: str) -> None:
    problems = problems_of(
        f"connections: {{t: {{provider: tailer, refresh_token: '${{TOKEN}}', firebase_api_key: '${{TOKEN}}', "
        f"token_url: '{url}'}}}}"
    )
    assert len(problems) == 1, problems
    assert problems[0].startswith("connections.t.token_url: ")
    assert "is a link-local or cloud metadata address: the bot would send the connection's credentials" in problems[0]


def test_a_tailer_token_url_that_is_no_http_url_is_an_error_and_plain_http_a_warning() -> None:
    import yaml

    text = "connections: {t: {provider: tailer, token: '${TOKEN}', token_url: 'ftp://x/token'}}"
    assert problems_of(text) == [
        "connections.t.token_url: 'ftp://x/token' is not an http(s) URL; write it like https://host/path"
    ]
    raw = yaml.safe_load(text.replace("ftp://x/token", "http://firebase.internal/token"))
    (warning,) = parse_catalog(raw, {"TOKEN": "t0ken-value"}).warnings
    assert warning.startswith("connections.t.token_url: http://firebase.internal sends the connection's credentials")


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,hi", "ftp://files.example/", "not a url"])
def test_a_console_url_must_be_http_because_it_becomes_a_slack_button(url: str) -> None:
    problems = problems_of(
        f"connections: {{r: {{provider: rivery, api_token: '${{TOKEN}}', console_url: '{url}'}}}}"
    )
    assert problems == [f"connections.r.console_url: {url!r} is not an http(s) URL; write it like https://host/path"]


def test_a_scheduled_pipeline_or_workflow_with_nowhere_to_show_its_runs_is_an_error() -> None:
    """Nobody asks for a schedule's run: with no channel anywhere it got no card and its failure no alert, only a
    log line (found by the third independent pass). A workflow's own channel shows its steps."""
    problems = problems_of(
        """
        connections:
          rv: {provider: rivery, api_token: "${TOKEN}"}
        pipelines:
          nightly: {connection: rv, river_id: r1, schedule: {cron: "0 6 * * *"}}
          routed: {connection: rv, river_id: r2, schedule: {cron: "0 6 * * *"}, tags: [finance]}
          manual: {connection: rv, river_id: r3}
        workflows:
          chain:
            schedule: {cron: "0 7 * * *"}
            steps:
              first: {pipeline: manual}
        routes:
          - {tag: finance, channel: "#finance"}
        """
    )
    assert "pipelines.nightly: scheduled but no channel for its runs; set channel or defaults.channel" in problems
    assert "workflows.chain: scheduled but no channel for its runs; set channel or defaults.channel" in problems
    assert not [p for p in problems if p.startswith(("pipelines.routed", "pipelines.manual"))]
