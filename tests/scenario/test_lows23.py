"""Lows the twenty-first and twenty-second passes left: the alert's timeline never said that a person canceled the
retry of its failure ("retried by @Bob as #2", and nothing more, the failure standing); a forged Stop following on a
run waiting its turn answered as of a run at its provider."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from bot.emulators.slack import payloads
from bot.emulators.slack.server import AppResponse, Message
from bot.slack.blocks import ids
from tests.scenario.harness import FLOW, World, world
from tests.scenario.surface import answered_in_place, ask, reply_to, run_number


def _alert(w: World, words: str) -> str:
    found = [m for m in w.slack.messages("C0ALERTS") if words in m.text and not m.thread_ts]
    return json.dumps([found[-1].text, found[-1].blocks], ensure_ascii=False) if found else ""


async def test_the_alerts_timeline_says_its_failures_retry_was_canceled(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await w.command("run orders")
        await w.card_saying("orders is queued")
        w.advance(6)
        await w.card_saying("orders is running")
        w.clock.advance(31)
        failed = await w.card_saying("orders failed", timeout=15)
        await w.until(lambda: bool(_alert(w, "orders failed")), what="the failure's alert")
        await w.slack.click("C0GENERAL", failed.ts, ids.RUN_RETRY, user="U0BOB")
        await w.until(lambda: "retried by <@U0BOB>" in _alert(w, "orders failed"), what="the retry on the timeline")
        store = w.runtime.parts.store
        _, retry = sorted(await store.runs.recent("orders", 5), key=lambda r: r.id)
        await w.card_saying(f"orders is queued (run #{retry.id})")
        w.advance(6)
        await w.card_saying("orders is running", timeout=15)
        question = await ask(w, f"cancel {retry.id}")
        await answered_in_place(w, w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, ts=question.ts), question)
        await w.card_saying("orders was canceled", timeout=15)
        await w.until(lambda: "canceled by <@U0ALICE>" in _alert(w, "orders failed"), 10,
                      what="the alert's timeline saying the retry was canceled, and by whom")
        # on the retry's own line (its run linked to its card once the permalink is known)
        line = re.compile(rf"retried by <@U0BOB> as (<[^|>]+\|)?#{retry.id}>?, ⏹️ canceled by <@U0ALICE> at ")
        assert line.search(_alert(w, "orders failed")), _alert(w, "orders failed")


async def _forged_click(w: World, card: Message, action_id: str, value: str, *, user: str) -> AppResponse:
    """A correctly signed click on a button the card does not show (its action id and value made up)."""
    slack = w.slack
    channel = slack.channels[card.channel]
    element = {"type": "button", "action_id": action_id, "value": value,
               "text": {"type": "plain_text", "text": "Stop following"}}
    target = slack.state.issue_target(user, channel.id, message_ts=card.ts)
    payload = payloads.block_actions(
        token=slack.verification_token, api_app_id=slack.api_app_id, team=slack.state.team(),
        user=slack.state.user_ref(user),
        container={"type": "message", "message_ts": card.ts, "channel_id": channel.id, "is_ephemeral": False},
        trigger_id=slack.state.issue_trigger(user),
        actions=[payloads.action(element, "run_actions", value, slack.driver.action_ts())],
        channel={"id": channel.id, "name": channel.name}, response_url=slack.state.response_url(target),
    )
    return await slack.post_raw(urllib.parse.urlencode({"payload": json.dumps(payload)}), kind="block_actions")


def _retried_later(raw: dict[str, Any]) -> None:
    raw["pipelines"]["budget"]["retry"] = {"attempts": 3, "backoff": "10m"}


async def test_a_forged_stop_following_of_a_run_waiting_its_turn_says_cancel_takes_it_off_the_queue(
    tmp_path: Path,
) -> None:
    """It answered "The bot follows run #2: its connection invision is in the catalog (again). Cancel it to stop it
    at its provider" (nothing is at the provider, and InVision has no cancel), or, the connection gone, "is starting
    right now"."""
    async with world(tmp_path, catalog_edit=_retried_later) as w:
        w.emulators["invision"].state.script(FLOW, [Outcome(result="fail", queued_s=0, running_s=1, message="boom")])
        await w.command("run budget")
        card = await w.card_saying("budget")
        first = run_number(card)
        w.advance(2)
        store = w.runtime.parts.store
        waiting = None
        for _ in range(50):
            if (waiting := await store.runs.retry_of(first)) is not None:
                break
            await w.settle(0.2)
        assert waiting is not None and waiting.state == "waiting", waiting
        forged = _forged_click(w, card, ids.RUN_STOP_FOLLOWING, str(waiting.id), user="U0ALICE")
        _, refused = await reply_to(w, forged)
        assert f"Run #{waiting.id} waits its turn to start" in refused.text, refused.text
        assert "Cancel it to take it off the queue" in refused.text, refused.text
        again = await store.runs.get(waiting.id)
        assert again is not None and again.state == "waiting"
