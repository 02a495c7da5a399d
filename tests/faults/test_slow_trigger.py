"""A provider that starts a run at once but answers the trigger late (a slow gateway, a long TLS handshake on
the way back): meanwhile passive watch lists the new run. It is the run just started from Slack, not a run
started outside Slack: its card must follow it to its end, and it must be tracked once."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from bot.emulators._server import EmulatorServer
from tests.faults import QUEUED_S, RUNNING_S, cards, channels, fault_world, wait
from tests.scenario.surface import OUR_FAULT

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _late_trigger_answers(emulators: dict[str, EmulatorServer]) -> None:
    tailer = emulators["tailer"]
    original: Handler = tailer.on_launch  # type: ignore[attr-defined]

    async def launch(request: web.Request) -> web.StreamResponse:
        response = await original(request)  # the run exists at the provider from here on
        await asyncio.sleep(1.5)  # … and its id reaches the bot 1.5 s later (passive watch lists every 0.3 s)
        return response

    tailer.on_launch = launch  # type: ignore[attr-defined]


async def test_a_run_listed_by_passive_watch_before_its_trigger_answered_is_tracked_once(tmp_path: Path) -> None:
    chans = channels(1)
    async with fault_world(tmp_path, chans, prepare=_late_trigger_answers) as w:
        assert (await w.command("run iowa-pda", channel=chans[0])).ok  # iowa-pda is watched
        await wait(lambda: len(cards(w.slack, chans)) == 1, 15, "the card", w.slack)
        await w.settle(2.0)
        w.advance(QUEUED_S + RUNNING_S + 1)
        await wait(lambda: "succeeded" in cards(w.slack, chans)[0].text, 20, "the card showing the end", w.slack)

        with sqlite3.connect(tmp_path / "bot.db") as db:
            tracked = db.execute("select origin, state from runs where pipeline = 'iowa-pda'").fetchall()
        assert tracked == [("slack", "succeeded")]
        replies = [e.text for e in w.slack.ephemerals(chans[0], "U0ALICE")]
        assert not [r for r in replies if any(bad in r for bad in OUR_FAULT)], replies
