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
from tests.scenario.harness import FAILING_RIVER, RIVER, World, catalog_text, make_emulators, running_world
from tests.scenario.surface import add_stranger, ask, audit_of, reply_to, run_number

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
        # an owner may lift a mute (more alerts, never fewer), even one longer than they could have set
        assert "is no longer muted" in (await ask(w, "unmute orders", user=owner)).text
        assert not await store.mutes.active(now=w.runtime.now())
        assert [(e.action, e.right) for e in await audit_of(w, owner)][-1] == ("unmute", "owner")


async def test_a_stranger_is_refused_each_action_with_the_rights_it_takes_and_who_has_them(tmp_path: Path) -> None:
    async with owned_world(tmp_path) as w:
        dave = add_stranger(w)
        run, alert = await _orders_failed(w)
        store = w.runtime.store
        assert store is not None
        triggers = len(w.emulators["rivery"].state.requests_to("trigger"))

        said = await _refused(w, alert, ids.RUN_ACK, user=dave)
        assert said.startswith(
            "⚠️ You may not acknowledge failures of *orders*: that takes being "
            f"`allow_change` (<@U0ALICE>), an owner (<@{BOB}>, <!subteam^{NIGHT}>), "
            "or an admin (<@U0CAROL>)."
        ), said
        said = await _refused(w, alert, ids.RUN_RETRY, user=dave)
        assert (
            f"You may not retry *orders*: that takes being `allow_change` (<@U0ALICE>), an owner (<@{BOB}>, "
            f"<!subteam^{NIGHT}>), `allow_run` (<@U0ALICE>), or an admin (<@U0CAROL>)." in said
        ), said
        said = await _refused(w, alert, ids.RUN_MUTE, user=dave, value=ids.mute_value(run, 3600))
        assert said.startswith("⚠️ You may not mute *orders*: that takes being `allow_change`"), said
        assert f"an owner (<@{BOB}>, <!subteam^{NIGHT}>)" in said
        said = (await ask(w, "mute orders 1h", user=dave)).text
        assert said.startswith("⚠️ You may not mute *orders*"), said

        failed = await store.runs.get(run)
        assert failed is not None and failed.acknowledged_by is None
        assert not await store.mutes.active(now=w.runtime.now())
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == triggers
        assert [(e.action, e.outcome, e.right) for e in await audit_of(w, dave)] == [
            ("acknowledge", "refused", None),
            ("retry", "refused", None),
            ("mute", "refused", None),
            ("mute", "refused", None),
        ]


async def test_whoever_started_a_run_may_cancel_it_and_nobody_else_without_rights(tmp_path: Path) -> None:
    async with owned_world(tmp_path) as w:
        dave = add_stranger(w)  # may run leads-ods (allow_run: everyone), owns nothing, may change nothing
        w.emulators["rivery"].state.script(RIVER, Outcome(queued_s=1, running_s=10_000))
        await w.command("run leads-ods", user=dave)
        await w.command("run leads-ods", user=dave)
        await w.until(lambda: len([c for c in w.cards() if "leads-ods is queued" in c.text]) == 2, what="two cards")
        w.advance(5)
        await w.until(lambda: len([c for c in w.cards() if "leads-ods is running" in c.text]) == 2, what="running")
        first, second = sorted((c for c in w.cards() if "leads-ods is running" in c.text), key=run_number)

        # erin owns orders, not leads-ods, and did not start these runs: refused by button and by command
        send = w.slack.click("C0GENERAL", first.ts, ids.RUN_CANCEL, user=ERIN)
        _, said = await reply_to(w, send, user=ERIN)
        assert said.text.startswith(
            f"⚠️ You may not cancel run #{run_number(first)} of *leads-ods*: that takes "
            f"being `allow_change` (<@U0ALICE>), who started the run (<@{dave}>), "
            "or an admin (<@U0CAROL>)."
        ), said.text
        said = await ask(w, f"cancel {run_number(second)}", user=ERIN)
        assert said.text.startswith(f"⚠️ You may not cancel run #{run_number(second)}"), said.text
        assert not said.action_ids  # no confirmation to click
        assert not w.emulators["rivery"].state.requests_to("cancel")

        # dave started them: his Cancel button, and his command and its confirmation
        send = w.slack.click("C0GENERAL", first.ts, ids.RUN_CANCEL, user=dave)
        _, said = await reply_to(w, send, user=dave)
        assert said.text.startswith(f"Asked Rivery to cancel run #{run_number(first)}"), said.text
        question = await ask(w, f"cancel {run_number(second)}", user=dave)
        assert question.action_ids == [ids.OP_CONFIRM, ids.OP_DISMISS]
        before = len(w.slack.ephemerals("C0GENERAL", dave)) + len(w.slack.responses(dave))
        await w.slack.click_ephemeral("C0GENERAL", ids.OP_CONFIRM, user=dave, ts=question.ts)
        await w.until(
            lambda: len(w.slack.ephemerals("C0GENERAL", dave)) + len(w.slack.responses(dave)) > before,
            what="the confirmation's answer",
        )
        await w.until(lambda: len(w.emulators["rivery"].state.requests_to("cancel")) == 2, what="two cancels")

        assert [(e.action, e.outcome, e.right) for e in await audit_of(w, ERIN)] == [
            ("cancel", "refused", None),
            ("cancel", "refused", None),
        ]
        assert [(e.action, e.target, e.right) for e in await audit_of(w, dave) if e.action == "cancel"] == [
            ("cancel", f"#{run_number(first)}", "starter"),
            ("cancel", f"#{run_number(second)}", "starter"),
        ]


async def test_someone_removed_from_the_owners_group_after_the_alert_is_refused_at_click(tmp_path: Path) -> None:
    async with owned_world(tmp_path, usergroup_cache_seconds=0.3) as w:
        run, alert = await _orders_failed(w)
        await _click(w, alert, ids.RUN_ACK, user=ERIN)  # still in the group: the members are looked up and kept
        assert (await _audited(w, ERIN, "acknowledge")).right == "owner"

        w.slack.state.add_usergroup(NIGHT, "night-shift", [])  # erin leaves the night shift
        await asyncio.sleep(0.5)  # longer than the members are kept: the next click asks Slack again
        triggers = len(w.emulators["rivery"].state.requests_to("trigger"))
        said = await _refused(w, alert, ids.RUN_RETRY, user=ERIN)
        assert said.startswith("⚠️ You may not retry *orders*"), said
        said = await _refused(w, alert, ids.RUN_MUTE, user=ERIN, value=ids.mute_value(run, 3600))
        assert said.startswith("⚠️ You may not mute *orders*"), said
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == triggers
        assert w.runtime.store is not None and not await w.runtime.store.mutes.active(now=w.runtime.now())
        assert [(e.action, e.outcome) for e in await audit_of(w, ERIN)][-2:] == [
            ("retry", "refused"),
            ("mute", "refused"),
        ]
        lookups = [c for c in w.slack.calls if c.method == "usergroups.users.list"]
        assert len(lookups) >= 2, "the group's members were not asked again"
