"""A proxy URL's password never quoted by ``check`` (eighteenth independent pass, b).

``HTTPS_PROXY=alice:Pa55://word@proxy:3128``, a proxy written without its scheme whose password holds ``://``:
what came before ``://`` was taken for the scheme and quoted, "the proxy's scheme 'alice:pa55' is not one the bot
can use", the user name and the start of the password printed by ``check`` (and by ``run``'s refusal to start),
while no secret was known of it to redact. Run through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOG = """version: 1
defaults: {channel: "C0GENERAL", owners: ["U0ALICE"], allow_run: ["*"]}
connections:
  rivery: {provider: rivery, base_url: "http://127.0.0.1:9/", api_token: "${RIVERY_TOKEN}"}
pipelines:
  leads: {connection: rivery, river_id: r1}
"""


def check(tmp_path: Path, proxy: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pipelines.yml").write_text(CATALOG)
    (tmp_path / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOp\n"
        "SLACK_SIGNING_SECRET=5f2c9e0b7a1d4e6f8a3b2c1d0e9f8a7b\nRIVERY_TOKEN=" + "t" * 40 + "\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith(("_PROXY",)) and not k.startswith("SLACK_")}
    env.update(proxy)
    return subprocess.run([sys.executable, "-m", "bot", "check", "--catalog", "pipelines.yml"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("variable", ["HTTPS_PROXY", "ALL_PROXY", "http_proxy"])
def test_a_proxy_whose_password_holds_a_scheme_separator_is_a_problem_never_quoting_it(
    tmp_path: Path, variable: str
) -> None:
    result = check(tmp_path, {variable: "alice:Pa55://word@proxy.internal:3128"})
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert f"{variable}: " in said and "scheme" in said, said
    assert "pa55" not in said.lower() and "alice" not in said, said


def test_a_proxy_scheme_the_bot_cannot_use_is_still_named(tmp_path: Path) -> None:
    result = check(tmp_path, {"HTTPS_PROXY": "ftp://proxy.internal:2121"})
    said = result.stdout + result.stderr
    assert result.returncode == 1 and "the proxy's scheme 'ftp'" in said, said
