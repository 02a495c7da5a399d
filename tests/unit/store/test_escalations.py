"""Each escalation ping is written once, with its thread reply and its timeline line, on SQLite and PostgreSQL (the
``store`` fixture): a second replica (or a tick after a restart) asking for the same ping gets False and writes
nothing; an acknowledgement, a mute or a resolution takes the alert off the list; a reopening starts it over."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.models import RunState
from bot.store import keys
from bot.store.alert_events import EventKind
from bot.store.escalations import Unanswered
from bot.store.store import Store
from tests.unit.store.test_alert_resolution import PIPELINE, WINDOW, at, ended, failure, started


def render(key: str, group: list[Any]) -> tuple[str, str, list[dict[str, Any]]]:
    return key, "alert", []


async def posted_alert(store: Store) -> Unanswered:
    run = await ended(store, await started(store, 0), RunState.FAILED, 5)
    await failure(store, run, 5)
    await store.alerting.flush(now=at(5) + WINDOW, window=WINDOW, render=render)
    [waiting] = await store.escalations.unanswered([PIPELINE])
    return waiting


async def ping(store: Store, waiting: Unanswered, step: int, when: float) -> bool:
    alert = waiting.alert
    assert alert.group_key is not None
    return await store.escalations.escalate(
        alert.id,
        step=step,
        key=keys.escalation(alert.id, step, waiting.waiting_since),
        card_key=alert.group_key,
        text=f"ping {step}",
        blocks=[],
        pinged=["U0BOB"] if step == 1 else ["S0ONCALL"],
        now=at(when),
    )


async def kinds(store: Store, alert_id: int) -> list[EventKind]:
    return [e.kind for e in (await store.alert_events.of_alerts([alert_id]))[alert_id]]


async def test_each_ping_is_written_once_whoever_asks_for_it(store: Store) -> None:
    waiting = await posted_alert(store)
    assert waiting.escalations == 0 and waiting.waiting_since == waiting.alert.first_at == at(5)
    assert await ping(store, waiting, 1, 20)
    assert not await ping(store, waiting, 1, 21)  # a second replica read the same row: nothing more
    [after] = await store.escalations.unanswered([PIPELINE])
    assert after.escalations == 1 and after.waiting_since == at(20)  # the next wait begins at the first ping
    assert await ping(store, after, 2, 40)
    assert not await ping(store, after, 2, 41)
    assert await store.escalations.unanswered([PIPELINE]) == []  # nothing after escalate_to
    assert await kinds(store, waiting.alert.id) == [EventKind.FAILED, EventKind.REMINDED, EventKind.ESCALATED]
    [reminded, escalated] = [e for e in (await store.alert_events.of_alerts([waiting.alert.id]))[waiting.alert.id]][1:]
    assert (reminded.detail, escalated.detail) == ("U0BOB", "S0ONCALL")
    texts = [item.text for item in await store.outbox.claim("me", now=at(50), limit=10, lease=timedelta(seconds=30))]
    assert texts == []  # thread replies wait for the alert's message to be posted
    assert await store.unsent() >= 2


async def test_an_acknowledgement_between_the_read_and_the_ping_leaves_nothing_written(store: Store) -> None:
    waiting = await posted_alert(store)
    [run_id] = waiting.alert.runs
    await store.runs.acknowledge(run_id, "U0BOB", now=at(10))
    assert not await ping(store, waiting, 1, 20)  # read before the acknowledgement, sent after it: not owed
    assert await store.escalations.unanswered([PIPELINE]) == []
    assert await kinds(store, waiting.alert.id) == [EventKind.FAILED, EventKind.ACKNOWLEDGED]
    assert await store.unsent() == 1  # the alert's own message only: no reply was recorded


async def test_a_mute_and_a_resolution_take_the_alert_off_the_list(store: Store) -> None:
    waiting = await posted_alert(store)
    await store.mutes.mute(PIPELINE, until=at(3600), user_id="U0ALICE", now=at(10))
    assert not await ping(store, waiting, 1, 20)  # muted: no ping while it lasts
    await store.mutes.unmute(PIPELINE, now=at(25))
    # a mute is not an acknowledgement (the tenth pass): unmuted, the alert nobody took is still waiting
    assert [u.alert.id for u in await store.escalations.unanswered([PIPELINE])] == [waiting.alert.id]
    assert await store.escalations.unanswered(["another"]) == []

    # the next one resolved before its ping
    await store.alerting.recover(
        PIPELINE, (await ended(store, await started(store, 30), RunState.SUCCEEDED, 40)).id, now=at(40)
    )
    assert not await ping(store, waiting, 1, 50)


async def test_the_wait_for_a_ping_starts_again_when_a_mute_ends(store: Store) -> None:
    """Issue 11's lows (found by the tenth pass): an alert nobody took, muted for longer than ``escalate_after`` and
    then unmuted (or its mute run out), was pinged at the very next tick: its wait was counted from its failure. The
    mute held the pings; ended, the alert gets its whole ``escalate_after`` from the end of the mute."""
    waiting = await posted_alert(store)  # failed at 5 s
    assert waiting.waiting_since == at(5)
    await store.mutes.mute(PIPELINE, until=at(3600), user_id="U0ALICE", now=at(10))
    await store.mutes.unmute(PIPELINE, now=at(900))
    [after] = await store.escalations.unanswered([PIPELINE])
    assert after.waiting_since == at(900), after.waiting_since  # not 5 s: 15 minutes of escalate_after gone
    await store.mutes.mute(PIPELINE, until=at(1200), user_id="U0ALICE", now=at(1000))  # muted again, and it runs out
    [after] = await store.escalations.unanswered([PIPELINE])
    assert after.waiting_since == at(1200)
    assert await ping(store, after, 1, 1300)
    [pinged] = await store.escalations.unanswered([PIPELINE])
    assert pinged.waiting_since == at(1300)  # the next wait begins at the ping, after the mute's end


async def test_a_reopened_alert_starts_its_escalation_over(store: Store) -> None:
    waiting = await posted_alert(store)
    assert await ping(store, waiting, 1, 20)
    success = await ended(store, await started(store, 30), RunState.SUCCEEDED, 40)
    await store.alerting.recover(PIPELINE, success.id, now=at(40))
    assert await store.escalations.unanswered([PIPELINE]) == []
    again = await ended(store, await started(store, 50), RunState.FAILED, 55)
    reopened = await failure(store, again, 55)
    assert reopened.id == waiting.alert.id
    [fresh] = await store.escalations.unanswered([PIPELINE])
    assert fresh.escalations == 0 and fresh.waiting_since == at(55) and fresh.opened_at == at(55)
    assert keys.escalation(fresh.alert.id, 1, fresh.waiting_since) != keys.escalation(
        waiting.alert.id, 1, waiting.waiting_since
    )
    assert await ping(store, fresh, 1, 70)  # the reopened incident's own first ping
