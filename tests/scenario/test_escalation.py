"""Escalation (issue 14, item 7) through the signed endpoint and the fake Slack, with a short ``escalate_after``: an
alert nobody acknowledges pings its owners once more in its thread, then ``escalate_to``, each on its timeline;
acknowledged, muted or resolved in time, it pings nobody; a restart between the pings sends each once.

The bot's clock is the real one (the emulators' manual clock only moves the runs along), so the waits here are
real seconds: ``escalate_after`` is a few of them."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.emulators._core import Outcome
from bot.emulators.slack.server import Message
from bot.slack.blocks import ids
from tests.scenario.harness import FAILING_RIVER, World, world

FAIL = Outcome(result="fail", queued_s=0, running_s=1, message="Table not found", failed_tasks=("load",))
SUCCEED = Outcome(queued_s=0, running_s=1)
ONCALL = "S0ONCALL"
REMINDER = "nobody has acknowledged it yet. <@U0BOB>: can one of you take it?"
ESCALATED = f"📣 Escalated to <!subteam^{ONCALL}>: *orders* on Rivery failed"


def escalating(after: str) -> Callable[[dict[str, Any]], None]:
    def edit(raw: dict[str, Any]) -> None:
        raw["pipelines"]["orders"].update({"escalate_after": after, "escalate_to": [ONCALL]})

    return edit


def shown(message: Message) -> str:
    texts = []
    for block in message.blocks:
        if block.get("type") == "section":
            texts.append(block["text"]["text"])
        elif block.get("type") == "context":
            texts.extend(e.get("text", "") for e in block.get("elements", []))
    return "\n".join(texts)


def pings(w: World, alert: Message) -> list[str]:
    """The escalation replies in the alert's thread, oldest first."""
    replies = [m.text for m in w.thread(alert)]
    return [text for text in replies if "acknowledged it yet" in text]


def timeline(w: World, alert: Message) -> list[str]:
    text = shown(w.slack.message("C0ALERTS", alert.ts))
    if "*Timeline*" not in text:
        return []
    lines = text[text.index("*Timeline*") :].splitlines()[1:]
    return [re.sub(r"^<!date\^\d+\^\{time\}\|[^>]+> ", "", line) for line in lines]


async def failed_alert(w: World) -> Message:
    """Run orders (it fails) and wait for its alert in C0ALERTS."""
    w.emulators["rivery"].state.script(FAILING_RIVER, [FAIL, SUCCEED])
    await w.command("run orders", user="U0CAROL")
    await w.card_saying("orders")
    w.advance(2)
    await w.card_saying("failed")
    w.advance(2)

    def posted() -> list[Message]:
        return [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text]

    await w.until(lambda: bool(posted()), 10, what="the alert of orders")
    [alert] = posted()
    return alert


async def test_an_alert_nobody_acknowledges_pings_its_owners_again_then_escalates(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=escalating("2s")) as w:
        alert = await failed_alert(w)
        await w.until(lambda: len(pings(w, alert)) == 1, 10, what="the owners pinged again")
        [reminder] = pings(w, alert)
        assert "⏰ *orders* on Rivery failed" in reminder and REMINDER in reminder
        await w.until(lambda: len(pings(w, alert)) == 2, 10, what="the escalation to escalate_to")
        assert pings(w, alert)[1].startswith(ESCALATED)
        assert "its owners were pinged again and nobody has acknowledged it yet" in pings(w, alert)[1]
        await w.until(lambda: any(line.startswith("📣") for line in timeline(w, alert)), 10, what="the timeline")
        lines = timeline(w, alert)
        assert lines[1:] == [
            "⏰ not acknowledged: owners pinged again (<@U0BOB>)",
            f"📣 escalated to <!subteam^{ONCALL}>",
        ]
        assert lines[0].startswith("❌ failed")
        assert shown(w.slack.message("C0ALERTS", alert.ts)).startswith("🔴 *orders*")  # still open, unacknowledged
        await asyncio.sleep(3)  # well past another escalate_after: nothing after escalate_to
        assert len(pings(w, alert)) == 2 and len(timeline(w, alert)) == 3


async def test_an_alert_acknowledged_in_time_pings_nobody(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=escalating("3s")) as w:
        alert = await failed_alert(w)
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_ACK, user="U0BOB")
        await w.until(lambda: "acknowledged by <@U0BOB>" in shown(w.slack.message("C0ALERTS", alert.ts)), 10)
        await asyncio.sleep(7)  # past both pings' times
        assert pings(w, alert) == []
        assert [line.split(" ")[0] for line in timeline(w, alert)] == ["❌", "🙋"]


async def test_a_muted_alert_pings_nobody(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=escalating("3s")) as w:
        alert = await failed_alert(w)
        store = w.runtime.store
        [failed] = await store.runs.recent("orders")
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_MUTE, user="U0BOB", value=ids.mute_value(failed.id, 3600))
        await w.until(lambda: any(line.startswith("🔕") for line in timeline(w, alert)), 10, what="the mute")
        await asyncio.sleep(7)
        assert pings(w, alert) == []


async def test_a_resolved_alert_pings_nobody(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=escalating("8s")) as w:
        alert = await failed_alert(w)
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_RETRY, user="U0ALICE")
        await w.until(lambda: len(w.cards("C0GENERAL")) == 2, 15, what="the retry's card")
        w.advance(3)
        await w.until(lambda: "recovered" in shown(w.slack.message("C0ALERTS", alert.ts)), 15, what="the resolution")
        assert pings(w, alert) == [], "resolved later than escalate_after: the machine is too slow for this test"
        store = w.runtime.store
        now = w.runtime.now()
        [opened] = await store.alerting.alerts_between(now - timedelta(hours=1), now + timedelta(seconds=1))
        wait = (opened.first_at.timestamp() + 10) - w.runtime.now().timestamp()
        await asyncio.sleep(max(wait, 0))  # past the first ping's time, and then some
        assert pings(w, alert) == []
        assert timeline(w, alert)[-1].startswith("🟢 resolved")


async def test_a_restart_between_the_pings_sends_each_once(tmp_path: Path) -> None:
    async with world(tmp_path, catalog_edit=escalating("2s")) as w:
        alert = await failed_alert(w)
        await w.until(lambda: len(pings(w, alert)) == 1, 10, what="the owners pinged again")
        await w.restart()
        await w.until(lambda: len(pings(w, alert)) == 2, 10, what="the escalation, after the restart")
        await w.restart()  # a second start finds nothing owed
        await asyncio.sleep(3)
        texts = pings(w, alert)
        assert len(texts) == 2 and REMINDER in texts[0] and texts[1].startswith(ESCALATED)
        escalations = [line for line in timeline(w, alert) if line.startswith(("⏰", "📣"))]
        assert len(escalations) == 2


async def test_an_alert_muted_then_unmuted_and_still_unacknowledged_pings_its_owners(tmp_path: Path) -> None:
    """The tenth pass: a mute is not an acknowledgement. Muted for an hour by mistake and unmuted at once ("its
    failures alert again"), the alert nobody took is pinged as any other; a mute silenced its escalation for good."""
    async with world(tmp_path, catalog_edit=escalating("3s")) as w:
        alert = await failed_alert(w)
        store = w.runtime.store
        [failed] = await store.runs.recent("orders")
        await w.slack.click("C0ALERTS", alert.ts, ids.RUN_MUTE, user="U0BOB", value=ids.mute_value(failed.id, 3600))
        await w.until(lambda: any(line.startswith("🔕") for line in timeline(w, alert)), 10, what="the mute")
        await w.command("unmute orders", user="U0BOB")
        for _ in range(250):  # the command's work runs after its ack
            if "orders" not in await store.mutes.active(now=w.runtime.now()):
                break
            await asyncio.sleep(0.02)
        assert "orders" not in await store.mutes.active(now=w.runtime.now()), "not unmuted"
        await w.until(lambda: len(pings(w, alert)) == 1, 15, what="the owners pinged again once unmuted")
        assert REMINDER in pings(w, alert)[0]
