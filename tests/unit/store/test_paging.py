"""PagerDuty events in the store: each alert and action once, sent in order per alert (no resolve before its
trigger), a refused one out of the way of those after it. On SQLite and PostgreSQL (the ``store`` fixture), through
the migrations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.store.paging import Page, PageState
from bot.store.store import Store

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


async def test_an_alert_and_action_is_recorded_once(store: Store) -> None:
    assert await store.paging.enqueue(7, "trigger", pipeline="orders", event={"summary": "x"}, now=NOW)
    assert not await store.paging.enqueue(7, "trigger", pipeline="orders", event={"summary": "y"}, now=NOW)
    [event] = await store.paging.of_alert(7)
    assert (event.key, event.dedup_key, event.event) == ("pd:7:trigger", "pipeline-bot/alert/7", {"summary": "x"})
    assert await store.paging.triggered(7) and not await store.paging.triggered(8)


async def test_an_event_waits_for_the_earlier_ones_of_its_alert_and_not_for_other_alerts(store: Store) -> None:
    for action in ("trigger", "acknowledge", "resolve"):
        await store.paging.enqueue(1, action, pipeline="orders", event={}, now=NOW)
    await store.paging.enqueue(2, "trigger", pipeline="leads", event={}, now=NOW)

    first = await store.paging.claim("me", now=NOW, limit=10, lease=LEASE)
    assert [(e.alert_id, e.action) for e in first] == [(1, "trigger"), (2, "trigger")]
    # the trigger failed and waits for its retry: its acknowledge and resolve wait behind it
    await store.paging.retry_later(first[0].id, not_before=NOW + timedelta(seconds=5), error="HTTP 503")
    await store.paging.sent(first[1].id, now=NOW)
    assert await store.paging.claim("me", now=NOW + timedelta(seconds=1), limit=10, lease=LEASE) == []

    [trigger] = await store.paging.claim("me", now=NOW + timedelta(seconds=5), limit=10, lease=LEASE)
    assert (trigger.action, trigger.attempts) == ("trigger", 1)
    await store.paging.dead(trigger.id, "HTTP 400: Invalid routing key")  # refused: out of the way
    [ack] = await store.paging.claim("me", now=NOW + timedelta(seconds=5), limit=10, lease=LEASE)
    assert ack.action == "acknowledge"
    await store.paging.sent(ack.id, now=NOW)
    [resolve] = await store.paging.claim("me", now=NOW + timedelta(seconds=5), limit=10, lease=LEASE)
    assert resolve.action == "resolve"


async def test_a_claimed_event_is_not_claimed_twice_until_its_lease_ends_or_is_released(store: Store) -> None:
    await store.paging.enqueue(3, "trigger", pipeline="orders", event={}, now=NOW)
    assert len(await store.paging.claim("a", now=NOW, limit=10, lease=LEASE)) == 1
    assert await store.paging.claim("b", now=NOW, limit=10, lease=LEASE) == []
    assert len(await store.paging.claim("b", now=NOW + LEASE * 2, limit=10, lease=LEASE)) == 1
    await store.paging.release("b")
    assert len(await store.paging.claim("c", now=NOW + LEASE * 2, limit=10, lease=LEASE)) == 1


async def test_the_page_of_each_alert_is_its_trigger(store: Store) -> None:
    await store.paging.enqueue(4, "trigger", pipeline="orders", event={}, now=NOW)
    await store.paging.enqueue(4, "resolve", pipeline="orders", event={}, now=NOW)
    await store.paging.enqueue(5, "trigger", pipeline="orders", event={}, now=NOW)
    [four, _, five] = await store.paging.of_alert(4) + await store.paging.of_alert(5)
    await store.paging.sent(four.id, now=NOW)
    await store.paging.dead(five.id, "refused")
    assert await store.paging.pages([4, 5, 6]) == {
        4: Page("pipeline-bot/alert/4", PageState.SENT),
        5: Page("pipeline-bot/alert/5", PageState.DEAD, "refused"),
    }
    assert await store.paging.pages([]) == {}
