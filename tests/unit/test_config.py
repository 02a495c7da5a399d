from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import environment, load_settings
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


def test_problems_explain_modes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xoxb-wrong")
    monkeypatch.setenv("SLACK_ADMINS", "alice")
    problems = load_settings(env_file=None, secrets_dir=tmp_path).problems()
    assert any(p.startswith("SLACK_APP_TOKEN: should start with xapp-") for p in problems)
    assert any("SLACK_ADMINS: 'alice' is not a Slack user id" in p for p in problems)
    assert not any(p.startswith("SLACK_SIGNING_SECRET") for p in problems)  # Socket Mode needs none
