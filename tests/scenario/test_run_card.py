"""/pipeline run → one card, kept current to the end; exactly the expected Slack calls."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from tests.scenario.harness import RIVER, world


async def test_run_posts_one_card_and_follows_it_to_success(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        response = await w.command("run leads-ods load_date=2026-11-01")
        assert response.ok
        assert response.within_deadline
        card = await w.card_saying("queued")
        rivery = w.emulators["rivery"]
        [trigger] = rivery.state.requests_to("trigger")
        assert trigger.body["river_id"] == RIVER
        assert trigger.body["variables"] == {"load_date": "2026-11-01"}

        w.advance(6)
        await w.card_saying("running")
        w.advance(31)
        done = await w.card_saying("succeeded")
        assert done.ts == card.ts
        await w.settle()

        posts = [c for c in w.slack.calls_to("chat.postMessage") if c.ok]
        assert len(posts) == 1  # one card, nothing else
        message = w.slack.message(card.channel, card.ts)
        versions = [*(v.blocks for v in message.edits), message.blocks]
        assert all(a != b for a, b in pairwise(versions)), "an update without a change"
        updates_before = len(w.slack.calls_to("chat.update"))
        await w.settle(0.6)  # the run is over: nothing more is sent
        assert len(w.slack.calls_to("chat.update")) == updates_before
        assert "<@U0ALICE>" in str(message.blocks)  # who started it
