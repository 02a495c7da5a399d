"""``pipeline-bot check --online`` as a person runs it: the real CLI in a subprocess, against the real emulators
(HTTP servers) and the fake Slack, with one provider down (a closed port) and one channel the bot is not in
(issue 15, item 6), and names instead of ids in the catalog (item 7)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.load import parse_catalog
from bot.checks.online import online_checks
from bot.emulators._server import EmulatorServer
from bot.emulators.slack import FakeSlack
from bot.emulators.standalone import build_emulator

ROOT = Path(__file__).resolve().parents[2]
BOT_TOKEN = "xoxb-1111-2222-checkonlinesecret"
RIVERY_TOKEN = "rivery-token-never-printed"
INVISION_KEY = "invision-key-never-printed"
TAILER_JWT = "aaaa.bbbb.tailer-never-printed"
DK_PASSWORD = "dk-password-never-printed"
SECRETS = (BOT_TOKEN, RIVERY_TOKEN, INVISION_KEY, TAILER_JWT, DK_PASSWORD)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there any more: a provider that is down


@dataclass
class World:
    slack: FakeSlack
    urls: dict[str, str]


@pytest.fixture
async def world() -> AsyncIterator[World]:
    scenarios: dict[str, dict[str, Any]] = {
        "rivery": {"tokens": [RIVERY_TOKEN]},
        "tailer": {"tokens": [TAILER_JWT]},
        "invision": {"api_keys": [INVISION_KEY]},
        "datakitchen": {"users": {"bot@example.com": DK_PASSWORD}},
    }
    servers: dict[str, EmulatorServer] = {k: build_emulator(k, v) for k, v in scenarios.items()}
    urls = {k: await s.start() for k, s in servers.items()}
    slack = FakeSlack(bot_token=BOT_TOKEN)
    slack.add_user("U0ALICE01", "alice", email="alice01@example.com")
    slack.add_usergroup("S0DATAENG", "data-eng", ["U0ALICE01"])
    slack.add_channel("C0ALERTS", "data-alerts")
    slack.add_channel("C0OUTSIDE", "outside", member=False)
    await slack.start()
    try:
        yield World(slack, urls)
    finally:
        await slack.stop()
        for server in servers.values():
            await server.stop()


def catalog(urls: dict[str, str], *, down: bool, pipeline_channel: str) -> str:
    rivery_url = f"http://127.0.0.1:{closed_port()}/api" if down else f"{urls['rivery']}/api"
    return f"""
defaults:
  channel: "#data-alerts"
  owners: ["@data-eng"]
connections:
  rivery: {{provider: rivery, base_url: "{rivery_url}", api_token: "${{RIVERY_API_TOKEN}}"}}
  tailer: {{provider: tailer, base_url: "{urls['tailer']}", token: "${{TAILER_API_JWT}}"}}
  invision: {{provider: invision, base_url: "{urls['invision']}/invision/", api_key: "${{INVISION_API_KEY}}"}}
  datakitchen: {{provider: datakitchen, base_url: "{urls['datakitchen']}", username: bot@example.com,
                password: "${{DATAKITCHEN_PASSWORD}}"}}
pipelines:
  leads: {{connection: rivery, river_id: r1, owners: [alice01@example.com]}}
  pda: {{connection: tailer, account: "000099", environment: DEV, configuration_type: table-to-table,
        configuration_id: "000099_pda"}}
  budget: {{connection: invision, dataflow_id: flow-1, channel: "{pipeline_channel}"}}
  sales: {{connection: datakitchen, kitchen: production, recipe: sales, variation: daily, owners: [U0ALICE01]}}
"""


async def check_online(
    tmp_path: Path, world: World, text: str, **more: str
) -> tuple[int, str, str, float]:
    (tmp_path / "pipelines.yml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "RIVERY", "TAILER", "INVISION",
                                                                     "DATAKITCHEN", "PIPELINES_FILE"))}
    env.update({
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
        "SLACK_API_URL": f"{world.slack.url}/api/", "RIVERY_API_TOKEN": RIVERY_TOKEN, "TAILER_API_JWT": TAILER_JWT,
        "INVISION_API_KEY": INVISION_KEY, "DATAKITCHEN_PASSWORD": DK_PASSWORD, **more,
    })
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "check", "--online", "--env-file", "none", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode(), time.monotonic() - started


async def test_a_provider_down_and_a_channel_without_the_bot_are_each_a_cross_with_its_fix(
    tmp_path: Path, world: World
) -> None:
    code, out, err, took = await check_online(tmp_path, world, catalog(world.urls, down=True,
                                                                       pipeline_channel="C0OUTSIDE"))
    assert code == 1, out + err
    assert took < 30
    lines = out.splitlines()
    down = next(i for i, line in enumerate(lines) if "✗ connection rivery (rivery)" in line)
    assert lines[down + 1].strip().startswith("fix: check connections.rivery.base_url")
    assert "✓ connection tailer (tailer): listed the recent runs" in out
    assert "✓ connection invision (invision): the API key was not refused" in out
    assert "✓ connection datakitchen (datakitchen): listed the recent runs" in out
    assert "✓ Slack auth.test: the token is the bot @pipeline-bot of team Fake Team" in out
    assert "✓ channel #data-alerts: #data-alerts exists and the bot is in it" in out
    outside = next(i for i, line in enumerate(lines) if "✗ channel C0OUTSIDE: the bot is not in #outside" in line)
    assert lines[outside + 1].strip() == "fix: invite the bot with /invite @pipeline-bot in #outside"
    assert "✓ user group @data-eng: user group @data-eng (S0DATAENG)" in out
    assert "✓ person alice01@example.com: alice (U0ALICE01)" in out
    assert "✓ person U0ALICE01: alice (U0ALICE01)" in out
    assert "2 of 10 check(s) failed" in err
    for secret in SECRETS:
        assert secret not in out + err


V1 = """
  rivery-v1: {{provider: rivery, api: v1, base_url: "{url}", account_id: {account}, environment_id: env,
              api_token: "${{RIVERY_API_TOKEN}}"}}
"""


def with_v1(text: str, url: str, account: str) -> str:
    """A Rivery v1 connection (its probe reads the account's statistics) and a pipeline that uses it."""
    text = text.replace("\npipelines:\n", V1.format(url=url, account=account) + "pipelines:\n")
    return text + "  orders: {connection: rivery-v1, river_id: r2}\n"


async def test_everything_reachable_passes(tmp_path: Path, world: World) -> None:
    text = with_v1(catalog(world.urls, down=False, pipeline_channel="#data-alerts"), world.urls["rivery"], "acc")
    code, out, err, _ = await check_online(tmp_path, world, text)
    assert code == 0, out + err
    assert "✗" not in out
    assert "✓ connection rivery (rivery): the API token belongs to account acc" in out
    assert "✓ connection rivery-v1 (rivery): read the statistics of account acc" in out
    assert "pipeline-bot check --online: ok: 10 check(s)" in out


async def test_a_v1_connection_with_a_wrong_account_is_a_cross(tmp_path: Path, world: World) -> None:
    text = with_v1(catalog(world.urls, down=False, pipeline_channel="#data-alerts"), world.urls["rivery"], "other")
    code, out, err, _ = await check_online(tmp_path, world, text)
    assert code == 1, out + err
    assert "✗ connection rivery-v1 (rivery): Rivery does not know it." in out, out


async def test_names_that_do_not_resolve_and_a_wrong_key_are_crosses(tmp_path: Path, world: World) -> None:
    text = catalog(world.urls, down=False, pipeline_channel="#nowhere").replace(
        '"@data-eng"', '"@no-such-group", nobody@example.com')
    code, out, err, _ = await check_online(tmp_path, world, text, INVISION_API_KEY="a-wrong-key-0123456789")
    assert code == 1, out + err
    assert "✗ channel #nowhere: not found" in out
    assert "no channel #nowhere that the bot can see" in out
    assert "✗ user group @no-such-group: not found" in out
    assert "✗ person nobody@example.com: not found" in out
    assert "✗ connection invision (invision)" in out
    assert "fix: check the credentials of connections.invision" in out


async def test_a_provider_that_never_answers_costs_its_deadline_and_no_more() -> None:
    """A host that accepts the connection and then says nothing (a black-holing proxy): the check gives up at
    its own deadline while the others finish, instead of waiting the connection's 30 s timeout."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # never answered

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    silent = parse_catalog({
        "connections": {"slow": {"provider": "invision", "base_url": f"http://127.0.0.1:{port}/invision/",
                                 "api_key": "${KEY}"}},
        "pipelines": {"flow": {"connection": "slow", "dataflow_id": "f1"}},
    }, env={"KEY": "k" * 16})
    started = time.monotonic()
    try:
        results = await online_checks(silent, None, deadline=0.5)
    finally:
        server.close()
        for writer in held:
            writer.close()
    assert time.monotonic() - started < 5
    assert [(r.item, r.ok, r.said) for r in results] == [("connection slow (invision)", False, "no answer within 0.5 s")]
    assert results[0].fix.startswith("check connections.slow.base_url")


async def test_slack_unreachable_is_one_cross_and_the_connections_are_still_tried(world: World) -> None:
    plain = parse_catalog({
        "defaults": {"channel": "#data-alerts"},
        "connections": {"inv": {"provider": "invision", "base_url": f"{world.urls['invision']}/invision/",
                                "api_key": "${KEY}"}},
        "pipelines": {"flow": {"connection": "inv", "dataflow_id": "f1"}},
    }, env={"KEY": INVISION_KEY})
    nowhere = AsyncWebClient(token=BOT_TOKEN, base_url=f"http://127.0.0.1:{closed_port()}/api/")
    results = await online_checks(plain, nowhere, deadline=5)
    assert [(r.item, r.ok) for r in results] == [("connection inv (invision)", True), ("Slack auth.test", False)]
    assert results[1].said.startswith("cannot be reached (ClientConnectorError")
    assert results[1].fix == "check SLACK_API_URL and that Slack can be reached from here"


async def test_pagerduty_is_not_tried_and_the_check_says_so_without_the_key(tmp_path: Path, world: World) -> None:
    """Issue 14, item 8: the Events API has no harmless call; the check names PagerDuty as not tried."""
    key = "e93facc04764012d7bfb002500d5d1a6"
    text = catalog(world.urls, down=False, pipeline_channel="#data-alerts").replace(
        '  owners: ["@data-eng"]\n', '  owners: ["@data-eng"]\n  pagerduty: {routing_key: "${PD_ROUTING_KEY}"}\n', 1
    )
    code, out, err, _ = await check_online(tmp_path, world, text, PD_ROUTING_KEY=key)
    assert code == 0, out + err
    assert (
        "✓ PagerDuty: not tried: the Events API has no harmless call (any event pages someone); 4 pipeline(s) page it "
        "(leads, pda, budget, sales)" in out
    ), out
    assert key not in out + err


async def test_escalate_to_groups_are_checked_like_the_owners(world: World) -> None:
    """Issue 14, item 7: ``escalate_to`` (defaults and a pipeline's) names user groups that must exist."""
    escalating = parse_catalog({
        "defaults": {"channel": "#data-alerts", "escalate_after": "15m", "escalate_to": ["@data-eng"]},
        "connections": {"inv": {"provider": "invision", "base_url": f"{world.urls['invision']}/invision/",
                                "api_key": "${KEY}"}},
        "pipelines": {"flow": {"connection": "inv", "dataflow_id": "f1", "owners": ["U0ALICE01"],
                               "escalate_to": ["S0NOGROUP"]}},
    }, env={"KEY": INVISION_KEY})
    client = AsyncWebClient(token=BOT_TOKEN, base_url=f"{world.slack.url}/api/")
    results = {r.item: r for r in await online_checks(escalating, client, deadline=5)}
    assert results["user group @data-eng"].ok and results["user group @data-eng"].said == "user group @data-eng (S0DATAENG)"
    missing = results["user group S0NOGROUP"]
    assert not missing.ok and missing.said == "no user group S0NOGROUP"
    assert missing.fix.startswith("check the id at pipelines.flow.escalate_to:")
