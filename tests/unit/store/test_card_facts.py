"""What a card asks the store beyond its run: whether an alert counts the run (Acknowledge and Mute have
something to act on) and when a message was recorded (the stuck warning, for the card's header).

Each test runs on SQLite and on PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

from bot.models import RunState
from bot.store import keys
from bot.store.records import OutboxKind
from bot.store.store import Store
from tests.unit.store.test_alert_resolution import PIPELINE, at, ended, failure, started


async def test_counts_run_is_true_only_for_a_run_an_alert_of_its_pipeline_counts(store: Store) -> None:
    counted = await ended(store, await started(store, 0), RunState.UNKNOWN, 5)
    other = await ended(store, await started(store, 1), RunState.UNKNOWN, 6)
    assert not await store.alerting.counts_run(PIPELINE, counted.id, since=counted.created_at)
    await failure(store, counted, 7)
    assert await store.alerting.counts_run(PIPELINE, counted.id, since=counted.created_at)
    assert not await store.alerting.counts_run(PIPELINE, other.id, since=other.created_at)
    assert not await store.alerting.counts_run("another-pipeline", counted.id, since=counted.created_at)
    # a later failure counted in the same alert keeps the first counted
    later = await ended(store, await started(store, 8), RunState.FAILED, 9)
    await failure(store, later, 10)
    assert await store.alerting.counts_run(PIPELINE, counted.id, since=counted.created_at)


async def test_written_at_is_when_a_message_was_first_recorded(store: Store) -> None:
    run = await started(store, 0)
    key = keys.run_stuck(run.id)
    assert await store.outbox.written_at(key) is None
    assert await store.outbox.enqueue(key, kind=OutboxKind.THREAD, run_id=run.id, text="may be stuck", now=at(3))
    assert not await store.outbox.enqueue(key, kind=OutboxKind.THREAD, run_id=run.id, text="again", now=at(9))
    assert await store.outbox.written_at(key) == at(3)
    assert await store.outbox.written_at(keys.run_stuck(run.id + 1)) is None
