"""The people an alert pings can act on it: a pipeline's owners (named, or members of a user group) may
acknowledge, retry and mute (up to 24 h) its failures; whoever started a run may cancel it. All re-checked when
the button is clicked (a user group's members looked up in Slack then), audited with the right used, and every
refusal says what right it takes and who has it. Through the signed endpoint and the fake Slack."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.emulators._core import ManualClock, Outcome
from bot.emulators.slack import FakeSlack, payloads
from bot.emulators.slack.server import Message
from bot.slack.blocks import ids
from bot.store.records import AuditEntry
from tests.scenario.harness import FAILING_RIVER, World, catalog_text, make_emulators, running_world
from tests.scenario.surface import ask, audit_of, reply_to, run_number

ERIN = "U0ERIN"  # an owner of orders by being in the user group S0NIGHT
BOB = "U0BOB"  # an owner of orders by name
NIGHT = "S0NIGHT"
_SUFFIX = re.compile(r":\d+$")


def _orders_owned(raw: dict[str, Any]) -> None:
    """orders: owned by bob and the night group; only alice may run or change it."""
    raw["pipelines"]["orders"].update(owners=[BOB, NIGHT], allow_run=["U0ALICE"])


@asynccontextmanager
async def owned_world(tmp: Path, **overrides: Any) -> AsyncIterator[World]:
    slack = FakeSlack()
    slack.add_user(ERIN, "erin", real_name="Erin Night")
    slack.state.add_usergroup(NIGHT, "night-shift", [ERIN])
    clock = ManualClock()
    async with running_world(
        tmp, clock, make_emulators(clock), slack, catalog_text, catalog_edit=_orders_owned, **overrides
    ) as w:
        yield w


def _element(message: Message, action_id: str) -> str:
    for _, element in payloads.interactive_elements(message.blocks):
        if _SUFFIX.sub("", element["action_id"]) == action_id:
            return str(element["action_id"])
    raise LookupError(f"no {action_id} on {message.text!r}")


async def _orders_failed(w: World) -> tuple[int, Message]:
    """alice runs orders, it fails: its run number and its alert (Acknowledge, Retry, Mute)."""
    w.emulators["rivery"].state.script(
        FAILING_RIVER, Outcome(result="fail", queued_s=1, running_s=2, message="Table orders_raw not found")
    )
    await w.command("run orders")
    await w.card_saying("orders is queued")
    w.advance(5)
    card = await w.card_saying("orders failed")

    def alert() -> list[Message]:
        return [m for m in w.slack.messages("C0ALERTS") if "orders" in m.text and ids.RUN_ACK in str(m.blocks)]

    await w.until(lambda: bool(alert()), what="the alert of orders")
    return run_number(card), alert()[0]


async def _click(w: World, alert: Message, action_id: str, *, user: str, value: Any = None) -> None:
    response = await w.slack.click("C0ALERTS", alert.ts, _element(alert, action_id), user=user, value=value)
    assert response.ok and response.within_deadline


async def _audited(w: World, user: str, action: str, timeout: float = 5.0) -> AuditEntry:
    """The latest audit entry of ``user``'s ``action``, once there is one (the click's work is a task)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [e for e in await audit_of(w, user) if e.action == action]
        if found:
            return found[-1]
        assert asyncio.get_running_loop().time() < deadline, f"no {action} by {user} in the audit log"
        await asyncio.sleep(0.05)


async def _refused(w: World, alert: Message, action_id: str, *, user: str, value: Any = None) -> str:
    send = w.slack.click("C0ALERTS", alert.ts, _element(alert, action_id), user=user, value=value)
    _, reply = await reply_to(w, send, user=user, channel="C0ALERTS")
    assert reply.text.startswith("⚠️"), reply.text
    return reply.text


@pytest.mark.parametrize("owner", [BOB, ERIN], ids=["owner-by-id", "owner-by-group"])
async def test_an_owner_acknowledges_mutes_up_to_the_cap_and_retries(tmp_path: Path, owner: str) -> None:
    async with owned_world(tmp_path) as w:
        run, alert = await _orders_failed(w)
        store = w.runtime.store
        assert store is not None
        triggers = len(w.emulators["rivery"].state.requests_to("trigger"))

        await _click(w, alert, ids.RUN_ACK, user=owner)
        await _audited(w, owner, "acknowledge")
        acked = await store.runs.get(run)
        assert acked is not None and acked.acknowledged_by == owner

        # a week is over the owners' cap: refused, saying the cap and who may mute for longer
        refusal = await _refused(w, alert, ids.RUN_MUTE, user=owner, value=ids.mute_value(run, 7 * 86400))
        assert "for up to 24 h" in refusal and "`allow_change` (<@U0ALICE>)" in refusal and "<@U0CAROL>" in refusal
        assert not await store.mutes.active(now=w.runtime.now())
        refusal = (await ask(w, "mute orders 2d", user=owner)).text
        assert "for up to 24 h" in refusal and "<@U0ALICE>" in refusal
        # a day is the cap itself: muted
        send = w.slack.click(
            "C0ALERTS", alert.ts, _element(alert, ids.RUN_MUTE), user=owner, value=ids.mute_value(run, 86400)
        )
        _, muted = await reply_to(w, send, user=owner, channel="C0ALERTS")
        assert "is muted until" in muted.text
        assert list(await store.mutes.active(now=w.runtime.now())) == ["orders"]

        await _click(w, alert, ids.RUN_RETRY, user=owner)
        await w.until(
            lambda: len(w.emulators["rivery"].state.requests_to("trigger")) == triggers + 1, what="the retry's trigger"
        )
        await _audited(w, owner, "retry")

        entries = [(e.action, e.outcome, e.right) for e in await audit_of(w, owner)]
        assert entries == [
            ("acknowledge", "ok", "owner"),
            ("mute", "refused", None),
            ("mute", "refused", None),
            ("mute", "ok", "owner"),
            ("run", "ok", "owner"),  # the retry's run: let through by being an owner, not by allow_run
            ("retry", "ok", "owner"),
        ], entries
        # alice has allow_change: no cap, and her right is recorded as such
        assert "is muted until" in (await ask(w, "mute orders 1w")).text
        assert [(e.action, e.right) for e in await audit_of(w, "U0ALICE")][-1] == ("mute", "allow_change")
