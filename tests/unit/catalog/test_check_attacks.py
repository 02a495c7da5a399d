"""`pipeline-bot check` attacked as a careless operator would: an empty credential, a variable written without
its braces, a tab, a misspelled required key, a `.env` line that cannot be read. Each through the real CLI in a
subprocess, the whole of what it prints asserted: one problem per mistake, at its place, saying what would work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

CATALOG = """\
defaults:
  channel: "C0123ABCD"
connections:
  rivery:
    provider: rivery
    api_token: {token}
pipelines:
  leads-ods:
    connection: rivery
    {river}: 5e8e1eb46b028e37b73f44f0
"""


def check(tmp_path: Path, catalog: str, dotenv: str = "") -> tuple[int, str, str]:
    """``pipeline-bot check --catalog-only`` in ``tmp_path``, with ``dotenv`` as its ``.env``."""
    (tmp_path / "pipelines.yml").write_text(catalog, encoding="utf-8")
    (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RIVERY", "PIPELINES_FILE"))}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "check", "--catalog-only"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    return result.returncode, result.stdout, result.stderr


def test_an_empty_credential_is_a_problem_not_ok(tmp_path: Path) -> None:
    """`RIVERY_API_TOKEN=` left blank in .env: every call would be refused; check said ok."""
    for blank in ("", "   "):
        code, out, err = check(
            tmp_path, CATALOG.format(token="${RIVERY_API_TOKEN}", river="river_id"), f"RIVERY_API_TOKEN={blank}\n"
        )
        assert (code, out) == (1, ""), out + err
        assert err.splitlines() == [
            "pipeline-bot check: 1 problem(s)",
            "  - pipelines.yml:6: connections.rivery.api_token: environment variable RIVERY_API_TOKEN is empty; "
            "set it in .env or the environment",
        ]


def test_a_variable_without_its_braces_is_named_as_written(tmp_path: Path) -> None:
    """`$RIVERY_API_TOKEN` or `${RIVERY_API_TOKEN`: the fix names their variable, not a made-up API_TOKEN."""
    for written in ("$RIVERY_API_TOKEN", "${RIVERY_API_TOKEN", "$(RIVERY_API_TOKEN)"):
        code, _, err = check(
            tmp_path, CATALOG.format(token=written, river="river_id"), "RIVERY_API_TOKEN=long-enough-token\n"
        )
        assert code == 1, err
        assert err.splitlines()[1:] == [
            "  - pipelines.yml:6: connections.rivery.api_token: secrets do not belong in the catalog; put it in an "
            "environment variable and write api_token: ${RIVERY_API_TOKEN}",
        ], written


def test_a_tab_is_named_in_plain_words(tmp_path: Path) -> None:
    catalog = CATALOG.format(token="${RIVERY_API_TOKEN}", river="river_id").replace("    river_id", "\triver_id")
    code, _, err = check(tmp_path, catalog, "RIVERY_API_TOKEN=long-enough-token\n")
    assert code == 1
    assert err.splitlines()[1:] == [
        "  - pipelines.yml:10: not valid YAML (column 1): a tab character; YAML indents with spaces only: replace "
        "the tab with spaces",
    ]


def test_a_misspelled_required_key_is_one_problem(tmp_path: Path) -> None:
    """`river_idd:` is the mistake; "river_id is required" as well would be the same mistake twice."""
    code, _, err = check(
        tmp_path, CATALOG.format(token="${RIVERY_API_TOKEN}", river="river_idd"), "RIVERY_API_TOKEN=long-enough-token\n"
    )
    assert code == 1
    assert err.splitlines() == [
        "pipeline-bot check: 1 problem(s)",
        "  - pipelines.yml:10: pipelines.leads-ods.river_idd: unknown key (did you mean 'river_id'?)",
    ]


def test_a_dotenv_line_that_cannot_be_read_is_one_problem_at_its_line(tmp_path: Path) -> None:
    """A quote left open in .env: python-dotenv's own warning (twice, naming no file) and then "RIVERY_API_TOKEN is
    not set; set it in .env", while it is in .env, were all a person saw."""
    dotenv = 'SLACK_ADMINS=U0123ABCD\nRIVERY_API_TOKEN="long-enough-token\n'
    code, out, err = check(tmp_path, CATALOG.format(token="${RIVERY_API_TOKEN}", river="river_id"), dotenv)
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        "pipeline-bot check: 2 problem(s)",
        "  - .env:2: not a NAME=value line (a quote left open?): it is ignored; fix it or remove it",
        "  - pipelines.yml:6: connections.rivery.api_token: environment variable RIVERY_API_TOKEN is not set; set it "
        "in .env or the environment",
    ]
