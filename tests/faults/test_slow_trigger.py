"""A provider that starts a run at once but answers the trigger late (a slow gateway, a long TLS handshake on
the way back): meanwhile passive watch lists the new run. It is the run just started from Slack, not a run
started outside Slack: its card must follow it to its end, and it must be tracked once."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select, update

from bot.emulators._core import Fault
from bot.emulators._server import EmulatorServer
from bot.emulators.slack.server import Message
from bot.store.tables import runs
from tests.faults import QUEUED_S, RUNNING_S, cards, channels, fault_world, wait
from tests.scenario.harness import World
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


# -- a trigger slower than the start's lease (issue 11, defect 2) -------------------------------------------------
#
# A run being started is leased by the process starting it, and the lease is renewed while the trigger is
# pending. Recovery gives up only starts whose lease expired (their owner is gone), never starts that are merely
# old. Here the lease is 1 s (recovery runs every second) and the trigger answers after 4 s: a minute-long trigger
# against the default 60 s lease, in a few seconds. Each test also runs recovery itself while the trigger is
# pending, as the runtime's job does once a start is older than any age cutoff (30 s before this fix).

LEASE_S = 1.0
TRIGGER_S = 4.0
GIVEN_UP = "The bot stopped while starting this run"


def _slow_rivery_trigger(emulators: dict[str, EmulatorServer]) -> None:
    emulators["rivery"].state.add_fault(Fault(route="trigger", kind="delay", delay=TRIGGER_S, times=1))


async def _runs(w: World) -> list[tuple[int, str, str | None, bool]]:
    """(id, state, provider run id, final) of every run, read through the bot's own engine: a second
    connection writing to the SQLite file from the event loop's thread could wait on the bot's own writes."""
    assert w.runtime.store is not None
    query = select(runs.c.id, runs.c.state, runs.c.provider_run_id, runs.c.final).order_by(runs.c.id)
    async with w.runtime.store.engine.connect() as conn:
        return [(r.id, r.state, r.provider_run_id, bool(r.final)) for r in await conn.execute(query)]


async def _until_runs(w: World, predicate: Callable[[list[tuple[int, str, str | None, bool]]], bool], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while not predicate(await _runs(w)):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}: {await _runs(w)}"
        await asyncio.sleep(0.05)


async def _triggers_sent(w: World, n: int) -> None:
    await w.until(lambda: len(w.emulators["rivery"].state.requests_to("trigger")) >= n, 10, f"{n} trigger(s) sent")


def _alerted(w: World, pipeline: str) -> bool:
    return any(pipeline in m.text or pipeline in json.dumps(m.blocks) for m in w.slack.messages("C0ALERTS"))


async def _shows_its_failure(w: World, channel: str) -> Message:
    """The card of ``orders`` reaches the provider's real outcome, with its details and the failure alert."""
    card = await w.card_saying("orders", channel, timeout=15)

    def now_shown() -> Message:
        return next(m for m in w.cards(channel) if m.ts == card.ts)

    w.advance(QUEUED_S + RUNNING_S + 1)
    await wait(lambda: "failed" in now_shown().text, 20, "the card showing the failure", w.slack)
    await wait(lambda: _alerted(w, "orders"), 10, "the failure alert", w.slack)
    await wait(lambda: any("boom" in json.dumps(m.blocks) for m in w.thread(card)), 10, "the details", w.slack)
    return now_shown()


async def test_a_trigger_slower_than_the_lease_is_not_given_up_and_its_failure_is_shown(tmp_path: Path) -> None:
    chans = channels(1)
    async with fault_world(tmp_path, chans, prepare=_slow_rivery_trigger, lease_seconds=LEASE_S) as w:
        assert (await w.command("run orders", channel=chans[0])).ok
        await _triggers_sent(w, 1)
        await asyncio.sleep(2.5 * LEASE_S)  # the start outlives its first lease; recovery runs meanwhile
        assert await w.runtime.recovery.recover_starting(timedelta(0)) == []  # its owner is alive
        [(_, state, _, final)] = await _runs(w)
        assert (state, final) == ("starting", False)

        card = await _shows_its_failure(w, chans[0])
        notes = [m.text for m in w.thread(card)]
        assert not [n for n in notes if GIVEN_UP in n], notes
        assert [(s, p is not None, f) for _, s, p, f in await _runs(w)] == [("failed", True, True)]
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == 1


async def test_a_run_given_up_while_its_trigger_was_pending_resumes_tracking_when_it_answers(tmp_path: Path) -> None:
    chans = channels(1)
    async with fault_world(tmp_path, chans, prepare=_slow_rivery_trigger, lease_seconds=LEASE_S) as w:
        assert (await w.command("run orders", channel=chans[0])).ok
        await _triggers_sent(w, 1)
        # its starter looks gone (an event loop or a database stalled for longer than a lease, another replica's
        # view): the lease is someone's that expired, so the trigger still pending here cannot renew it
        assert w.runtime.store is not None
        async with w.runtime.store.engine.begin() as conn:
            await conn.execute(update(runs).values(lease_owner="gone", lease_expires_at=datetime(2000, 1, 1, tzinfo=UTC)))
        await w.runtime.recovery.recover_starting(timedelta(0))
        given_up = await w.card_saying("unknown", chans[0], timeout=10)
        await wait(lambda: any(GIVEN_UP in m.text for m in w.thread(given_up)), 10, "the give-up note", w.slack)

        # the trigger answers: the run is tracked again, and its real outcome is shown
        await _until_runs(w, lambda found: found[0][2] is not None, "the trigger's answer")
        await wait(lambda: any("Tracking resumed" in m.text for m in w.thread(given_up)), 10, "the note", w.slack)
        card = await _shows_its_failure(w, chans[0])
        assert card.ts == given_up.ts  # the same card, not a second one
        assert [(s, p is not None, f) for _, s, p, f in await _runs(w)] == [("failed", True, True)]


async def test_triggers_waiting_behind_the_connection_limit_are_not_given_up(tmp_path: Path) -> None:
    def one_call_at_a_time(raw: dict[str, Any]) -> None:
        raw["connections"]["rivery"]["max_concurrency"] = 1

    chans = channels(1)
    async with fault_world(
        tmp_path, chans, prepare=_slow_rivery_trigger, lease_seconds=LEASE_S, catalog_edit=one_call_at_a_time
    ) as w:
        assert (await w.command("run leads-ods", channel=chans[0])).ok
        assert (await w.command("run orders", channel=chans[0])).ok
        await _triggers_sent(w, 1)
        await _until_runs(w, lambda found: len(found) == 2, "both runs recorded")
        await asyncio.sleep(2.5 * LEASE_S)  # one trigger pending at the provider, the other waiting for the slot
        assert len(w.emulators["rivery"].state.requests_to("trigger")) == 1  # the second is still waiting
        assert await w.runtime.recovery.recover_starting(timedelta(0)) == []
        assert [(s, f) for _, s, _, f in await _runs(w)] == [("starting", False)] * 2

        card = await _shows_its_failure(w, chans[0])
        assert "failed" in card.text
        await wait(lambda: any("succeeded" in c.text for c in w.cards(chans[0])), 10, "the other card", w.slack)
        notes = [m.text for c in w.cards(chans[0]) for m in w.thread(c)]
        assert not [n for n in notes if GIVEN_UP in n], notes
        assert sorted(s for _, s, _, _ in await _runs(w)) == ["failed", "succeeded"]
