from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import EXAMPLE_VALUES, Settings, environment, load_settings, unfilled_placeholders
from bot.errors import ConfigError


@pytest.mark.parametrize("value", ["U0ALICE,U0BOB", " U0ALICE , U0BOB ", '["U0ALICE", "U0BOB"]'])
def test_admins_as_a_comma_list_or_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str) -> None:
    monkeypatch.setenv("SLACK_ADMINS", value)
    assert load_settings(env_file=None, secrets_dir=tmp_path).slack_admins == ["U0ALICE", "U0BOB"]


def test_settings_come_from_env_file_and_secrets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "PORT"):
        monkeypatch.delenv(name, raising=False)
    env = tmp_path / ".env"
    env.write_text("PORT=4000\nRIVERY_TOKEN=from-dotenv\n")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "slack_bot_token").write_text("xoxb-from-secret-file")
    settings = load_settings(env_file=env, secrets_dir=secrets)
    assert settings.port == 4000
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-from-secret-file"
    assert "xoxb-from-secret-file" not in repr(settings)
    assert environment(env)["RIVERY_TOKEN"] == "from-dotenv"
    monkeypatch.setenv("RIVERY_TOKEN", "from-environment")
    assert environment(env)["RIVERY_TOKEN"] == "from-environment"  # the environment wins, as for settings


def test_bad_values_name_their_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PORT", "eighty")
    monkeypatch.setenv("SLACK_COMMAND", "pipeline")
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, secrets_dir=tmp_path)
    text = "\n".join(err.value.problems)
    assert "PORT:" in text
    assert "SLACK_COMMAND: Value error, must start with '/'" in text or "SLACK_COMMAND:" in text


@pytest.mark.parametrize(("value", "seconds"), [("10", 10.0), ("1.5", 1.5), (" 0.25 ", 0.25), ("0", 0.0)])
def test_durations_are_set_in_seconds_and_read_as_timedelta(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, seconds: float
) -> None:
    monkeypatch.setenv("ALERT_GROUP_SECONDS", value)
    monkeypatch.setenv("LEASE_SECONDS", value if seconds else "60")
    settings = load_settings(env_file=None, secrets_dir=tmp_path)
    assert settings.alert_group_seconds == timedelta(seconds=seconds)
    assert settings.lease_seconds == timedelta(seconds=seconds or 60)
    assert Settings(poll_interval_seconds=2).poll_interval_seconds == timedelta(seconds=2)  # code may say either
    assert Settings(poll_interval_seconds=timedelta(seconds=2)).poll_interval_seconds == timedelta(seconds=2)


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("ALERT_GROUP_SECONDS", "ten", "ALERT_GROUP_SECONDS: must be a number of seconds, 0 or more, e.g. 10"),
        ("ALERT_GROUP_SECONDS", "-1", "ALERT_GROUP_SECONDS: must be a number of seconds, 0 or more, e.g. 10"),
        ("ALERT_GROUP_SECONDS", "inf", "ALERT_GROUP_SECONDS: must be a number of seconds, 0 or more, e.g. 10"),
        ("ALERT_GROUP_SECONDS", "1e400", "ALERT_GROUP_SECONDS: must be a number of seconds, 0 or more, e.g. 10"),
        ("LEASE_SECONDS", "0", "LEASE_SECONDS: must be a number of seconds, above 0, e.g. 60"),
        ("POLL_INTERVAL_SECONDS", "PT5S", "POLL_INTERVAL_SECONDS: must be a number of seconds, above 0, e.g. 5"),
    ],
)
def test_a_bad_duration_is_refused_in_plain_words(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, secrets_dir=tmp_path)
    assert err.value.problems == [problem]


@pytest.mark.parametrize(
    ("name", "value", "line"),
    [
        ("PORT", "eighty", "PORT: must be a whole number, e.g. 3000"),
        ("POLL_INTERVAL_SECONDS", "0", "POLL_INTERVAL_SECONDS: must be a number of seconds, above 0, e.g. 5"),
        ("HTTP_READ_TIMEOUT_SECONDS", "soon", "HTTP_READ_TIMEOUT_SECONDS: must be a number of seconds, above 0, e.g. 10"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR"),
        ("SLACK_ADMINS", "[U0ALICE", "SLACK_ADMINS: is not a JSON list; write the ids separated by commas, like "
         "U0ALICE01,U0BOB0002"),
        ("SLACK_COMMAND", "pipeline", "SLACK_COMMAND: must start with '/', have no spaces and be at most 32 "
         "characters, like /pipeline"),
    ],
)
def test_a_setting_that_cannot_be_read_is_said_in_plain_words(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, line: str
) -> None:
    """Not pydantic's "Input should be a valid integer, unable to parse string as an integer"."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=None, secrets_dir=tmp_path)
    assert err.value.problems == [line]


def test_a_setting_from_the_dotenv_file_is_said_at_its_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PORT", raising=False)
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    env = tmp_path / ".env"
    env.write_text("# settings\nPORT=3000\nexport port = eighty\nlog_level=loud\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(env_file=env, secrets_dir=tmp_path)
    assert err.value.problems == [
        f"{env}:3: PORT: must be a whole number, e.g. 3000",
        f"{env}:4: LOG_LEVEL: must be one of DEBUG, INFO, WARNING, ERROR",
    ]


def test_problems_explain_modes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-wrong")
    monkeypatch.setenv("SLACK_ADMINS", "alice")
    problems = load_settings(env_file=None, secrets_dir=tmp_path).problems()
    assert any(p.startswith("SLACK_APP_TOKEN: should start with xapp-") for p in problems)
    assert any("SLACK_ADMINS: 'alice' is not a Slack user id" in p for p in problems)
    assert not any(p.startswith("SLACK_SIGNING_SECRET") for p in problems)  # Socket Mode needs none


# -- found by an independent pass (issue 11) ---------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def settings_problems(tmp_path: Path, **env: str) -> list[str]:
    from bot.config import Settings

    values = {"slack_bot_token": "xoxb-test", "slack_signing_secret": "s3cret-signing", **env}
    return Settings(_env_file=None, _secrets_dir=tmp_path, **values).problems()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("postgresql://bot:pa55word@db/pipeline_bot", "DATABASE_URL: use postgresql+asyncpg://… (got postgresql://)"),
        ("postgres://bot:pa55word@db/pipeline_bot", "DATABASE_URL: use postgresql+asyncpg://… (got postgres://)"),
        ("postgresql+psycopg2://bot:pa55word@db/x", "DATABASE_URL: use postgresql+asyncpg://… (got postgresql+psycopg2://)"),
        ("sqlite:///pipeline-bot.db", "DATABASE_URL: use sqlite+aiosqlite:///… (got sqlite://)"),
        ("sqlite+pysqlite:///pipeline-bot.db", "DATABASE_URL: use sqlite+aiosqlite:///… (got sqlite+pysqlite://)"),
        ("postgresql+asyncpg://bot:pa55word@db:port/x", "DATABASE_URL: cannot be read as a URL"),
        ("mysql://bot:pa55word@db/x", "DATABASE_URL: mysql:// is not a database the bot can use; use sqlite+aiosqlite"),
        # second independent pass
        ("postgres+asyncpg://bot:pa55word@db/x", "DATABASE_URL: use postgresql+asyncpg://… (got postgres+asyncpg://)"),
        ("postgresql+asyncpg://bot:pa55@word@db/x", "DATABASE_URL: the password must be percent-encoded"),
        ("postgresql+asyncpg://bot:pa55word@db/x?sslmode=require", "DATABASE_URL: asyncpg takes ssl=require"),
        ("postgresql+asyncpg://bot:pa55word@db:70000/x", "DATABASE_URL: port 70000 is out of range (1-65535)"),
        ("sqlite+aiosqlite:///bot.db?timeout=abc", "DATABASE_URL: ?timeout= must be a number of seconds"),
        ("sqlite+aiosqlite://", "DATABASE_URL: an in-memory SQLite database is lost when the bot stops"),
        ("sqlite+aiosqlite:///:memory:", "DATABASE_URL: an in-memory SQLite database is lost when the bot stops"),
        ("sqlite+aiosqlite:///file:bot.db?uri=true", "DATABASE_URL: SQLite URI filenames (file:…, ?uri=true) are not"),
    ],
)
def test_database_urls_the_bot_cannot_open_say_which_form_to_use(tmp_path: Path, url: str, problem: str) -> None:
    (found,) = settings_problems(tmp_path, database_url=url)
    assert found.startswith(problem), found
    assert "pa55word" not in found and "word@db" not in found


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:///pipeline-bot.db", "sqlite+aiosqlite:////data/bot.db",
            "postgresql+asyncpg://bot:pw@db:5432/pipeline_bot", "postgresql+asyncpg://bot@db/pipeline_bot"],
)
def test_database_urls_the_bot_can_open_pass(tmp_path: Path, url: str) -> None:
    assert settings_problems(tmp_path, database_url=url) == []


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("xoxb-123 456-abc", "contains a space, a line break or a control character"),
        ("xoxb-123-456-abc\n", "contains a space, a line break or a control character"),
        ("xoxb-123\t456", "contains a space, a line break or a control character"),
        ("xoxb-123\x00456", "contains a space, a line break or a control character"),
        ('"xoxb-123-456"', "is wrapped in quotes (Docker's --env-file keeps them): remove them"),
        ("xoxb–123-456", "contains a character that is not plain ASCII"),
    ],
)
def test_a_slack_token_with_spaces_or_quotes_is_refused_without_showing_it(
    tmp_path: Path, token: str, problem: str
) -> None:
    for name, value in (("SLACK_BOT_TOKEN", token), ("SLACK_SIGNING_SECRET", token),
                        ("SLACK_APP_TOKEN", token.replace("xoxb", "xapp"))):
        (found,) = settings_problems(tmp_path, **{name.lower(): value})
        assert found.startswith(f"{name}: {problem}"), found
        assert "123" not in found


def test_the_fake_tokens_of_the_tests_and_the_demo_pass(tmp_path: Path) -> None:
    assert settings_problems(tmp_path, slack_bot_token="xoxb-test") == []
    assert settings_problems(tmp_path, slack_bot_token="xoxb-0000000000-0000000000000-example") == []


# -- found by a second independent pass ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [("slack_signing_secret", "abc"), ("slack_signing_secret", "s3cret"), ("slack_bot_token", "xoxb-1"),
     ("slack_app_token", "xapp-1")],
)
def test_a_slack_secret_too_short_to_be_real_is_refused_without_showing_it(
    tmp_path: Path, name: str, value: str
) -> None:
    (found,) = settings_problems(tmp_path, **{name: value})
    assert found == (f"{name.upper()}: is shorter than 8 characters: not a real Slack token or secret (a "
                     "placeholder, or cut short when copied?): copy it again from the app's settings"), found


@pytest.mark.parametrize(
    "url",
    ["postgresql+asyncpg://bot:p@ss@db.internal/pb", "postgresql+asyncpg://bot:p@ss:Secret123@db.internal:5432/pb"],
)
def test_a_database_password_with_an_unencoded_at_sign_is_refused_without_showing_it(tmp_path: Path, url: str) -> None:
    """SQLAlchemy reads ``bot:p@ss@db`` as password ``p`` at host ``ss@db``: the engine would quote that host."""
    (found,) = settings_problems(tmp_path, database_url=url)
    assert found.startswith("DATABASE_URL: "), found
    assert "must be percent-encoded in the URL (@ as %40" in found, found
    assert "ss@db" not in found and "Secret123" not in found


def test_a_dotenv_file_that_is_not_utf8_is_one_problem_naming_its_line(tmp_path: Path) -> None:
    from bot.config import environment, load_settings
    from bot.errors import ConfigError

    env_file = tmp_path / ".env"
    env_file.write_bytes(b"SLACK_BOT_TOKEN=xoxb-1\nOWNER=Ren\xe9\n")
    for read in (lambda: load_settings(env_file, secrets_dir=tmp_path), lambda: environment(env_file)):
        with pytest.raises(ConfigError) as caught:
            read()
        assert caught.value.problems == [f"{env_file}:2: not UTF-8 text (byte 0xe9); save the file as UTF-8"]


# -- second independent pass: SLACK_API_URL receives the bot token ---------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://169.254.169.254/", "SLACK_API_URL: 169.254.169.254 is a link-local or cloud metadata address: "
                                    "the bot would send the bot token there"),
        ("http://metadata.google.internal/api/", "SLACK_API_URL: metadata.google.internal is a link-local"),
        ("ftp://x/", "SLACK_API_URL: 'ftp://x/' is not an http(s) URL; write it like https://host/path"),
        ("not a url", "SLACK_API_URL: 'not a url' is not an http(s) URL"),
    ],
)
def test_a_slack_api_url_the_bot_token_must_not_go_to_is_refused(tmp_path: Path, url: str, problem: str) -> None:
    (found,) = settings_problems(tmp_path, slack_api_url=url)
    assert found.startswith(problem), found


def test_a_slack_api_url_over_plain_http_off_this_machine_is_a_warning(tmp_path: Path) -> None:
    from bot.config import Settings

    def settings(url: str) -> Settings:
        values = {"slack_bot_token": "xoxb-test", "slack_signing_secret": "s3cret-signing", "slack_api_url": url}
        return Settings(_env_file=None, _secrets_dir=tmp_path, **values)  # type: ignore[arg-type]

    plain = settings("http://slack.internal/api/")
    assert plain.problems() == []
    (warning,) = plain.warnings()
    assert warning.startswith("SLACK_API_URL: http://slack.internal sends the bot token in clear text")
    for quiet in ("https://slack.com/api/", "http://127.0.0.1:9/api/", "http://localhost:1/api/"):
        assert settings(quiet).problems() == [] and settings(quiet).warnings() == [], quiet


def test_the_known_placeholders_are_exactly_those_of_env_example() -> None:
    from dotenv import dotenv_values

    example = Path(__file__).resolve().parents[2] / ".env.example"
    assert {k: v for k, v in dotenv_values(example).items() if v} == EXAMPLE_VALUES


def test_only_a_value_equal_to_its_own_placeholder_is_unfilled() -> None:
    env = {
        "SLACK_BOT_TOKEN": EXAMPLE_VALUES["SLACK_BOT_TOKEN"],
        "RIVERY_API_TOKEN": "a-real-token",
        "OTHER": EXAMPLE_VALUES["DATAKITCHEN_PASSWORD"],  # another variable's placeholder is a value like any
    }
    assert unfilled_placeholders(env) == ["SLACK_BOT_TOKEN"]
