"""Names instead of ids in the catalog (issue 15, item 7): ``#channel``, ``@user-group-handle`` and people by
e-mail are resolved to ids when the bot starts, against the fake Slack's conversations.list, usergroups.list and
users.lookupByEmail; a name that does not resolve stops the start with one line naming the entry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.emulators.slack import FakeSlack
from tests.scenario.harness import bot_command, bot_env, world


def by_name(raw: dict[str, Any]) -> None:
    raw["defaults"].update(channel="#data-alerts", owners=["@data-eng"], allow_change=["alice@example.com"])
    raw["pipelines"]["iowa-pda"]["channel"] = "#data-ops"
    raw["pipelines"]["leads-ods"]["owners"] = ["bob@example.com", "S0DATAENG"]


async def test_names_are_ids_by_the_time_any_part_reads_the_catalog(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=by_name) as w:
        for catalog in (w.runtime.catalog, w.runtime.services.catalog):
            assert catalog.defaults.channel == "C0ALERTS"
            assert catalog.defaults.owners == ("S0DATAENG",)
            assert catalog.defaults.allow_change == ("U0ALICE",)
            assert catalog.pipelines["iowa-pda"].channel == "C0OPS"
            assert catalog.pipelines["leads-ods"].owners == ("U0BOB", "S0DATAENG")
            assert catalog.channel_for(catalog.pipelines["budget"]) == "C0ALERTS"
        lookups = w.slack.calls_to("conversations.list")
        assert lookups and lookups[0].params["types"] == "public_channel,private_channel"


async def test_a_name_that_does_not_resolve_stops_the_start_naming_the_entry(tmp_path: Path) -> None:
    catalog = tmp_path / "pipelines.yml"
    catalog.write_text(
        'defaults: {channel: "#nowhere", owners: [nobody@example.com]}\n'
        'connections:\n  r: {provider: rivery, base_url: "http://127.0.0.1:9/api", api_token: "${RIVERY_TOKEN}"}\n'
        "pipelines:\n  leads: {connection: r, river_id: r1}\n"
    )
    async with FakeSlack() as slack:
        env = bot_env(SLACK_BOT_TOKEN=slack.bot_token, SLACK_SIGNING_SECRET=slack.signing_secret,
                      SLACK_API_URL=slack.api_url, PIPELINES_FILE=str(catalog), HOST="127.0.0.1", PORT="0",
                      DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
        proc = await asyncio.create_subprocess_exec(
            *bot_command(tmp_path, "run"), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 1, text
    assert "pipeline-bot: cannot start: 2 name(s) in the catalog do not resolve: " in text
    assert "defaults.channel: no channel #nowhere that the bot can see" in text
    assert "defaults.owners, pipelines.leads.owners: no person in this workspace with the e-mail nobody@example.com" in text
    assert "Traceback" not in text
