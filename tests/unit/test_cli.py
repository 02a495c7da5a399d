from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RIVERY", "TAILER", "INVISION",
                                                                     "DATAKITCHEN", "PIPELINES_FILE"))}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=clean, capture_output=True, text=True, timeout=60
    )


def test_check_passes_on_the_example_catalog() -> None:
    result = run_cli("check", "--env-file", ".env.example", "--catalog", "pipelines.example.yml")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert "5 pipeline(s)" in result.stdout


def test_check_lists_every_problem_and_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "pipelines.yml").write_text(
        "connections:\n  r: {provider: rivery, api_token: '${RIVERY_TOKEN}'}\n"
        "pipelines:\n  a: {connection: r}\n  b: {connection: nope, river_id: x}\n"
    )
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 1
    err = result.stderr
    assert "SLACK_BOT_TOKEN: not set" in err
    assert "SLACK_SIGNING_SECRET: not set" in err
    assert "connections.r.api_token: environment variable RIVERY_TOKEN is not set" in err
    assert "pipelines.a.river_id: river_id is required" in err
    assert "pipelines.b.connection: 'nope' is not a connection" in err
    assert "Traceback" not in err


def test_check_prints_warnings_and_still_passes(tmp_path: Path) -> None:
    (tmp_path / "pipelines.yml").write_text(
        "connections:\n  r: {provider: rivery, base_url: 'http://rivery.internal/api', api_token: '${RIVERY_TOKEN}'}\n"
        "pipelines:\n  a: {connection: r, river_id: abc}\n"
    )
    result = run_cli("check", "--catalog-only", cwd=tmp_path, env={"RIVERY_TOKEN": "t0ken-rivery"})
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert ("pipeline-bot check: warning: connections.r.base_url: http://rivery.internal sends the connection's "
            "credentials in clear text; use https://") in result.stderr


def test_secrets_in_settings_are_never_printed(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxp-user-token-secret-123", "SLACK_SIGNING_SECRET": "sig-secret-456"}
    result = run_cli("check", "--catalog", str(ROOT / "pipelines.example.yml"), cwd=tmp_path, env=env)
    assert result.returncode == 1
    assert "SLACK_BOT_TOKEN: should start with xoxb-" in result.stderr
    assert "xoxp-user-token-secret-123" not in result.stdout + result.stderr
    assert "sig-secret-456" not in result.stdout + result.stderr


def test_python_dash_m_and_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "check" in result.stdout and "emulate" in result.stdout


def test_emulate_serves_a_provider_on_its_own_and_runs_jobs_to_success(tmp_path: Path) -> None:
    import time

    import httpx

    scenario = tmp_path / "scenario.yml"
    scenario.write_text("default: {queued_s: 0.1, running_s: 0.3}\napi_keys: [k1]\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "emulate", "invision", "--scenario", str(scenario)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, proc.stderr.read() if proc.stderr else line
        url = line.split("listening on ")[1].split()[0]
        headers = {"x-api-key": "k1"}
        run = httpx.post(f"{url}/invision/api/pub/v1/dataflows/f1/start", headers=headers).json()
        assert run["status"] == "Pending"
        deadline = time.monotonic() + 10
        status = ""
        while time.monotonic() < deadline and status != "Succeeded":
            time.sleep(0.1)
            status = httpx.get(
                f"{url}/invision/api/pub/v1/dataflows/f1/runs/{run['runId']}/status", headers=headers
            ).json()["status"]
        assert status == "Succeeded"
        refused = httpx.post(f"{url}/invision/api/pub/v1/dataflows/f1/start", headers={"x-api-key": "k2"})
        assert refused.status_code == 401
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipes


def test_check_notes_a_pipeline_that_can_be_watched_but_not_run(tmp_path: Path) -> None:
    (tmp_path / "pipelines.yml").write_text(
        "connections:\n  t: {provider: tailer, token: '${TAILER_API_JWT}'}\n"
        "pipelines:\n"
        "  files: {connection: t, account: '000099', environment: DEV, configuration_type: storage-to-storage,\n"
        "          configuration_id: 000099-jarvis-demo, job_id: 'storage-to-storage|000099|000099-jarvis-demo|DEV|f.csv',\n"
        "          watch: true, channel: '#ops'}\n"
        "  pda: {connection: t, account: '000099', environment: DEV, configuration_type: table-to-table,\n"
        "        configuration_id: 000099_pda}\n"
    )
    result = run_cli("check", "--catalog-only", "--env-file", "none", cwd=tmp_path, env={"TAILER_API_JWT": "aaa.bbb.ccc"})
    assert result.returncode == 0, result.stderr
    assert "note: pipelines.files: not runnable: Tailer's API launches only Tables to Tables" in result.stdout
    assert "watch" in result.stdout
    assert "pipelines.pda" not in result.stdout


def _strict_emulator(provider: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "emulate", provider, "--strict"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, proc.stderr.read() if proc.stderr else line
    return proc, line.split("listening on ")[1].split()[0]


def test_emulate_strict_refuses_what_no_source_documents(tmp_path: Path) -> None:
    import httpx

    proc, url = _strict_emulator("tailer")
    try:
        identity = {"account": "000099", "environment": "DEV", "configuration_type": "table-to-table",
                    "configuration_id": "000099_pda_DEV"}
        headers = {"authorization": "Bearer a.b.c"}
        refused = httpx.post(f"{url}/v1/dag/status", json={"action": "get_by_status", "status": "FAILED", **identity},
                             headers=headers)
        assert refused.status_code == 400
        assert refused.json()["message"] == "strict: no source for the action get_by_status"
        launched = httpx.post(f"{url}/v1/dag/launch", json={"action": "launch_job", **identity}, headers=headers)
        assert launched.status_code == 200 and set(launched.json()) == {"run_id"}
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_emulate_strict_rivery_refuses_run_variables(tmp_path: Path) -> None:
    """``--strict``: run ``variables`` (no source) are refused; the documented request goes through."""
    import httpx

    proc, url = _strict_emulator("rivery")
    try:
        auth = {"Authorization": "Bearer any-token"}
        refused = httpx.post(f"{url}/api/run", json={"river_id": "r1", "variables": {"a": "1"}}, headers=auth)
        assert refused.status_code == 400
        assert refused.json()["message"].startswith("strict: no source for variables in the body of POST run")
        assert "run_id" in httpx.post(f"{url}/api/run", json={"river_id": "r1"}, headers=auth).json()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_check_notes_that_rivery_run_parameters_rely_on_an_assumption(tmp_path: Path) -> None:
    (tmp_path / "pipelines.yml").write_text(
        "connections:\n  r: {provider: rivery, api_token: '${RIVERY_TOKEN}'}\n"
        "pipelines:\n"
        "  with-params: {connection: r, river_id: x1, parameters: {load_date: {type: date}}}\n"
        "  without: {connection: r, river_id: x2}\n"
    )
    result = run_cli("check", "--catalog-only", cwd=tmp_path, env={"RIVERY_TOKEN": "t0ken-value"})
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stdout.splitlines() if "note:" in line]
    assert len(notes) == 1
    assert "pipelines.with-params declares parameters (load_date)" in notes[0]
    assert "`variables`" in notes[0] and "assumption" in notes[0]


def test_run_reports_an_unexpected_start_up_error_in_one_redacted_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever escapes Runtime.start (a driver's error quoting DATABASE_URL, a library's bug) is one line naming
    it, redacted, and exit 1; the traceback goes to the log at DEBUG only, redacted too."""
    import logging

    from bot import cli
    from bot.ops.logs import LIBRARIES
    from bot.runtime import Runtime

    password, token = "Db-Pa55word-7", "xoxb-1234-5678-SECRETVALUE"
    (tmp_path / "pipelines.yml").write_text(
        "connections:\n  r: {provider: rivery, api_token: '${RIVERY_TOKEN}'}\npipelines:\n  a: {connection: r, river_id: x}\n"
    )

    async def start(self: Runtime) -> None:
        raise ValueError(f"invalid literal for int(): '{password}@db.internal:5432' with {token}")

    monkeypatch.setattr(Runtime, "start", start)
    for name, value in {"SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": "sig-secret-4567", "LOG_LEVEL": "DEBUG",
                        "RIVERY_TOKEN": "rivery-token-1", "PIPELINES_FILE": str(tmp_path / "pipelines.yml"),
                        "DATABASE_URL": f"postgresql+asyncpg://bot:{password}@127.0.0.1:1/pb", "LOG_FORMAT": "json",
                        "PORT": "0"}.items():
        monkeypatch.setenv(name, value)
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in (*LIBRARIES, "h2")}
    try:
        code = cli.main(["run", "--env-file", str(tmp_path / "none.env")])
    finally:
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for n, saved_level in levels.items():
            logging.getLogger(n).setLevel(saved_level)
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if not line.startswith("{")]
    assert code == 1
    assert said == ["pipeline-bot: cannot start: ValueError: invalid literal for int(): '***@db.internal:5432' with "
                    "*** (LOG_LEVEL=DEBUG logs the traceback)"], err
    assert "Traceback" in err and '"level": "debug"' in err  # the traceback, in the log, at DEBUG
    assert password not in err and token not in err



def test_run_serves_on_uvloop_s_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` runs the bot on uvloop (a dependency on Linux): its loop costs less per callback and socket event,
    which at scale is most of a poll's CPU (docs/PERFORMANCE.md)."""
    import uvloop

    from bot import cli
    from bot.runtime import Runtime

    loops: list[object] = []

    async def start(self: Runtime) -> None:
        loops.append(asyncio.get_running_loop())
        raise ValueError("stop here")

    (tmp_path / "pipelines.yml").write_text(
        "connections:\n  r: {provider: rivery, api_token: '${RIVERY_TOKEN}'}\npipelines:\n  a: {connection: r, river_id: x}\n"
    )
    monkeypatch.setattr(Runtime, "start", start)
    for name, value in {"SLACK_BOT_TOKEN": "xoxb-1-2-abc", "SLACK_SIGNING_SECRET": "sig-secret-4567",
                        "RIVERY_TOKEN": "rivery-token-1", "PIPELINES_FILE": str(tmp_path / "pipelines.yml"),
                        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", "PORT": "0"}.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["run", "--env-file", str(tmp_path / "none.env")]) == 1
    assert len(loops) == 1 and isinstance(loops[0], uvloop.Loop)

def readme_configure_steps() -> list[list[str]]:
    """The commands of the README's "Configure and check" block, as written there (comments dropped)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("2. Configure and check:", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_check_in_a_folder_set_up_as_the_readme_says_validates_the_file_people_edit(tmp_path: Path) -> None:
    """The README's configure steps replayed in a fresh folder, as a person would: its `cp` lines, then its
    `pipeline-bot check`; a mistake in the pipelines.yml it made must then be found (issue 15, item 1)."""
    steps = readme_configure_steps()
    copies = [step for step in steps if step[0] == "cp"]
    checks = [step[1:] for step in steps if Path(step[0]).name == "pipeline-bot" and step[1:] == ["check"]]
    assert copies and checks, steps  # the README still says to copy the examples and check
    for name in (".env.example", "pipelines.example.yml"):  # what a fresh clone has
        shutil.copy(ROOT / name, tmp_path / name)
    for step in copies:
        subprocess.run(step, cwd=tmp_path, check=True)
    ok = run_cli(*checks[0], cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "ok: pipelines.yml:" in ok.stdout, ok.stdout
    # the copied placeholders check out, but cannot work: each is named, its value never printed
    for name in ("SLACK_BOT_TOKEN", "RIVERY_API_TOKEN", "DATAKITCHEN_PASSWORD"):
        assert f"warning: {name} still holds the example value from .env.example" in ok.stderr, ok.stderr
    assert "change-me" not in ok.stderr and "xoxb-0000000000" not in ok.stderr
    with (tmp_path / "pipelines.yml").open("a") as edited:
        edited.write("x: [\n")  # a mistake in the file the person edits must be found
    broken = run_cli(*checks[0], cwd=tmp_path)
    assert broken.returncode == 1, broken.stdout
    lines = (ROOT / "pipelines.example.yml").read_text().count("\n")  # the stream ends after the added `x: [`
    assert f"pipelines.yml:{lines + 2}: not valid YAML" in broken.stderr, broken.stderr


def test_version_is_the_installed_package_version() -> None:
    from importlib import metadata

    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"pipeline-bot {metadata.version('pipeline-bot')}"


@pytest.mark.parametrize(
    ("command", "example"),
    [
        (["run"], "pipeline-bot run --env-file .env"),
        (["check"], "pipeline-bot check --online"),
        (["emulate"], "pipeline-bot emulate rivery --port 8081 --scenario scenario.yml"),
        (["demo"], "pipeline-bot demo --open"),
        (["emulate", "tailer"], "pipeline-bot emulate tailer --port 0 --scenario scenario.yml"),
    ],
)
def test_every_subcommand_help_says_what_it_does_with_an_example_and_the_exit_codes(
    command: list[str], example: str
) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert f"example:\n  {example}\n" in text
    assert "exit codes:\n  0  ok\n  1  problems found" in text
    assert "2  usage error" in text


def test_emulate_rivery_help_lists_rivery_scenario_keys_only() -> None:
    text = run_cli("emulate", "rivery", "--help").stdout
    assert "Serve Rivery's API on this machine" in text
    flat = " ".join(text.split())
    assert "legacy_prefix" in flat and "river_runs_per_minute" in flat and "token_runs_per_minute" in flat
    assert "api_keys" not in flat and "token_ttl_s" not in flat  # InVision's, DataKitchen's


def test_every_option_has_help_text() -> None:
    """`--host` and its kind say what they are in every subcommand's --help (no bare `--host HOST`)."""
    from bot.cli import _parser

    def walk(parser: argparse.ArgumentParser, path: str) -> list[str]:
        bare = [f"{path} {a.option_strings[0]}" for a in parser._actions if a.option_strings and not a.help]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    bare += walk(sub, f"{path} {name}")
        return bare

    assert walk(_parser(), "pipeline-bot") == []


def test_a_usage_error_exits_2() -> None:
    result = run_cli("check", "--no-such-option")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-option" in result.stderr


def test_offline_check_notes_names_it_will_resolve_at_start(tmp_path: Path) -> None:
    (tmp_path / "pipelines.yml").write_text(
        "defaults: {channel: '#data-alerts', owners: ['@data-eng', alice@example.com]}\n"
        "connections:\n  r: {provider: rivery, api_token: '${RIVERY_TOKEN}'}\n"
        "pipelines:\n  a: {connection: r, river_id: abc, allow_run: [U0ALICE01]}\n"
    )
    result = run_cli("check", "--catalog-only", "--env-file", "none", cwd=tmp_path, env={"RIVERY_TOKEN": "t0ken-rivery"})
    assert result.returncode == 0, result.stderr
    assert ("note: 3 name(s) (#data-alerts, @data-eng, alice@example.com) will be resolved to Slack ids when the "
            "bot starts; `pipeline-bot check --online` resolves them now") in result.stdout
