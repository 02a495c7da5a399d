"""`pipeline-bot check --online` against the InVision emulator with the mistake people make most with InVision: a
`base_url` without the site's `/invision/` path. InVision's probe asks for the status of a run that cannot exist
and took any 404 for "the key was not refused", so a wrong address was a ✓ (as was any web server that answers
404 to everything). The real CLI in a subprocess, the emulator over HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.emulators._server import EmulatorServer
from bot.emulators.slack import FakeSlack
from bot.emulators.standalone import build_emulator

ROOT = Path(__file__).resolve().parents[2]
KEY = "invision-key-never-printed"
BOT_TOKEN = "xoxb-1111-2222-attacksecret"


@pytest.fixture
async def invision() -> AsyncIterator[str]:
    server: EmulatorServer = build_emulator("invision", {"api_keys": [KEY]})
    url = await server.start()
    try:
        yield url
    finally:
        await server.stop()


async def check_online(
    tmp_path: Path, base_url: str, channel: str = "C0ALERTS", slack: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """``slack``: the Slack settings; without them the check is ``--catalog-only`` (Slack not tried)."""
    (tmp_path / "pipelines.yml").write_text(f"""
defaults:
  channel: "{channel}"
connections:
  invision: {{provider: invision, base_url: "{base_url}", api_key: "${{INVISION_API_KEY}}"}}
pipelines:
  budget: {{connection: invision, dataflow_id: 2b081248-4963-43b3-ba06-5b7403d58b4d}}
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "INVISION", "PIPELINES_FILE"))}
    env.update({"INVISION_API_KEY": KEY, "PYTHONPATH": str(ROOT), **(slack or {})})
    only = [] if slack else ["--catalog-only"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "check", "--online", *only, "--env-file", "none", cwd=tmp_path,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_an_invision_base_url_without_the_site_path_is_a_cross(tmp_path: Path, invision: str) -> None:
    code, out, err = await check_online(tmp_path, f"{invision}/")
    assert code == 1, out + err
    lines = out.splitlines()
    assert lines[1] == (
        "  ✗ connection invision (invision): InVision answered 404 Not Found to the status of a run: no InVision API "
        f"at {invision}/ (the site's address usually ends in /invision/)"
    ), out
    assert lines[2] == (
        f"      fix: check connections.invision.base_url ({invision}/) and that it can be reached from here (proxy, "
        "firewall, VPN)"
    ), out
    assert KEY not in out + err


async def test_the_right_invision_base_url_is_a_tick(tmp_path: Path, invision: str) -> None:
    code, out, err = await check_online(tmp_path, f"{invision}/invision/")
    assert code == 0, out + err
    assert out.splitlines()[1].startswith("  ✓ connection invision (invision): the API key was not refused"), out


async def test_a_channel_name_that_does_not_resolve_names_the_bot_as_slack_knows_it(
    tmp_path: Path, invision: str
) -> None:
    """The fix said "/invite @bot in it": there is no @bot; auth.test gave the bot's name (@pipeline-bot)."""
    slack = FakeSlack(bot_token=BOT_TOKEN)
    slack.add_channel("C0ALERTS", "data-alerts")
    await slack.start()
    try:
        code, out, err = await check_online(
            tmp_path, f"{invision}/invision/", channel="#nope", slack={
                "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
                "SLACK_API_URL": f"{slack.url}/api/",
            },
        )
    finally:
        await slack.stop()
    assert code == 1, out + err
    lines = out.splitlines()
    at = lines.index("  ✗ channel #nope: not found")
    assert lines[at + 1] == (
        "      fix: no channel #nope that the bot can see: check the spelling; a private channel needs the bot "
        "invited first (/invite @pipeline-bot in it); or give the channel's id (C…)"
    ), out
