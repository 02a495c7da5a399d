from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Insert
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.models import RunState, RunStatus, TaskStatus
from bot.store.messages import write_message
from bot.store.records import NewRun, OutboxKind, RunOrigin, StoredState
from bot.store.store import AlreadyRetried, Store
from bot.store.tables import cards, metadata

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def new_run(**kw: object) -> NewRun:
    values: dict[str, object] = {
        "provider": "rivery", "connection": "rivery-us", "job": {"river_id": "r1"}, "parameters": {"a": "1"},
        "origin": "slack", "pipeline": "leads-ods", "started_by": "U0ALICE", "channel": "C0ALERTS",
    }
    values.update(kw)
    return NewRun(**values)  # type: ignore[arg-type]


async def test_migrations_create_exactly_the_declared_schema(store: Store) -> None:
    def diff(sync_conn: object) -> list[object]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_a_run_moves_through_its_states_and_keeps_its_history(store: Store) -> None:
    run = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    assert run.state == "starting"
    assert run.run_state is None
    run = await store.starts.record_triggered(run.id, "p-1", now=NOW, next_poll_at=NOW + timedelta(seconds=5))
    assert run.run_state is RunState.QUEUED

    running = RunStatus("p-1", RunState.RUNNING, "R", tasks=(TaskStatus("load", RunState.RUNNING, "R"),))
    change = await store.runs.record_status(run.id, running, now=NOW + timedelta(seconds=5),
                                       next_poll_at=NOW + timedelta(seconds=10))
    assert change is not None and change.before == "queued" and change.after == "running"
    assert change.run.started_at == NOW + timedelta(seconds=5)
    # the same answer again is no change
    assert await store.runs.record_status(run.id, running, now=NOW + timedelta(seconds=10),
                                     next_poll_at=NOW + timedelta(seconds=15)) is None

    done = RunStatus("p-1", RunState.FAILED, "E", message="disk full")
    change = await store.runs.record_status(run.id, done, now=NOW + timedelta(seconds=15), next_poll_at=None)
    assert change is not None
    assert change.run.final and change.run.next_poll_at is None
    assert change.run.ended_at == NOW + timedelta(seconds=15)
    assert change.run.duration(NOW) == timedelta(seconds=10)
    history = [(state, raw) for _, state, raw, _ in await store.runs.events(run.id)]
    assert history == [("queued", ""), ("running", "R"), ("failed", "E")]


async def test_records_read_back_as_the_enums_whose_values_were_stored(store: Store) -> None:
    run = await store.runs.create(new_run(origin=RunOrigin.SCHEDULE), now=NOW, next_poll_at=None)
    assert run.state is StoredState.STARTING and run.origin is RunOrigin.SCHEDULE and run.run_state is None
    run = await store.starts.record_triggered(run.id, "p-1", now=NOW, next_poll_at=NOW)
    await store.runs.mark_notified(run.id, run.state)
    run = await store.runs.get(run.id) or pytest.fail("the run is gone")
    assert run.state is StoredState.QUEUED and run.notified_state is StoredState.QUEUED
    assert run.run_state is RunState.QUEUED
    async with store.engine.connect() as conn:  # the same strings as before the enums: no migration
        stored = (await conn.exec_driver_sql(f"SELECT state, origin, notified_state FROM runs WHERE id = {run.id}"))
        assert tuple(stored.one()) == ("queued", "schedule", "queued")
    await store.outbox.enqueue("k", kind=OutboxKind.THREAD, text="t", run_id=run.id, now=NOW)
    [item] = await store.outbox.of_run(run.id)
    assert item.kind is OutboxKind.THREAD


async def test_a_provider_error_marks_the_run_unknown_since_the_first_miss(store: Store) -> None:
    run = await store.runs.create(new_run(provider_run_id="p-2"), now=NOW, next_poll_at=NOW)
    first = await store.runs.record_poll_error(run.id, "503", now=NOW, next_poll_at=NOW + timedelta(seconds=30))
    second = await store.runs.record_poll_error(run.id, "503", now=NOW + timedelta(minutes=1),
                                           next_poll_at=NOW + timedelta(minutes=2))
    assert first.unknown_since == second.unknown_since == NOW
    assert second.state == "queued" and not second.final
    back = await store.runs.record_status(run.id, RunStatus("p-2", RunState.QUEUED, "W"),
                                     now=NOW + timedelta(minutes=3), next_poll_at=NOW)
    assert back is not None and back.run.unknown_since is None


async def test_a_poll_written_against_the_run_it_claimed_reads_it_again_when_it_changed_meanwhile(
    store: Store,
) -> None:
    """The poller writes a status against the run as it claimed it (no read before, none after when nothing a
    person sees changed); a run ended or recorded by another writer since is read again, never overwritten."""
    lease = timedelta(seconds=30)
    running = RunStatus("p-1", RunState.RUNNING, "R")
    ended = await store.runs.create(new_run(provider_run_id="p-1"), now=NOW, next_poll_at=NOW)
    watched = await store.runs.create(new_run(provider_run_id="p-2"), now=NOW, next_poll_at=NOW)
    quiet = await store.runs.create(new_run(provider_run_id="p-3"), now=NOW, next_poll_at=NOW)
    claimed = {r.id: r for r in await store.runs.claim_due("a", now=NOW, limit=10, lease=lease)}
    later = NOW + timedelta(seconds=5)

    await store.runs.finish(ended.id, RunState.UNKNOWN, "the bot stopped following it", now=NOW)
    assert await store.runs.record_status(ended.id, running, now=later, next_poll_at=later, read=claimed[ended.id]) \
        is None
    still = await store.runs.get(ended.id)
    assert still is not None and still.final and still.state == "unknown"

    first = await store.runs.record_status(watched.id, running, now=NOW, next_poll_at=later)  # the watcher
    assert first is not None and first.after == "running"
    assert await store.runs.record_status(watched.id, running, now=later, next_poll_at=later,
                                          read=claimed[watched.id]) is None  # one change, reported once
    again = await store.runs.get(watched.id)
    assert again is not None and again.polls == 2 and again.next_poll_at == later

    change = await store.runs.record_status(quiet.id, running, now=later, next_poll_at=later, read=claimed[quiet.id])
    assert change is not None and change.before == "queued" and change.run.state == "running"
    assert await store.runs.record_status(quiet.id, running, now=later, next_poll_at=NOW + timedelta(seconds=35),
                                          read=change.run) is None
    polled = await store.runs.get(quiet.id)
    assert polled is not None and polled.next_poll_at == NOW + timedelta(seconds=35) and polled.polls == 2


async def test_due_runs_are_claimed_once_until_the_lease_expires(store: Store) -> None:
    for i in range(3):
        await store.runs.create(new_run(provider_run_id=f"p-{i}"), now=NOW, next_poll_at=NOW)
    lease = timedelta(seconds=30)
    first = await store.runs.claim_due("a", now=NOW, limit=2, lease=lease)
    second = await store.runs.claim_due("b", now=NOW, limit=10, lease=lease)
    assert len(first) == 2 and len(second) == 1
    assert not {r.id for r in first} & {r.id for r in second}
    assert await store.runs.claim_due("b", now=NOW + timedelta(seconds=5), limit=10, lease=lease) == []
    # a dead replica's lease expires and another takes over
    taken = await store.runs.claim_due("b", now=NOW + timedelta(seconds=31), limit=10, lease=lease)
    assert {r.id for r in taken} == {r.id for r in first} | {r.id for r in second}


async def test_runs_due_soon_are_claimed_for_a_batch_only_on_its_connections_and_handed_back(store: Store) -> None:
    lease = timedelta(seconds=30)
    soon = [await store.runs.create(new_run(provider_run_id=f"s-{i}"), now=NOW, next_poll_at=NOW + timedelta(seconds=i))
            for i in (5, 20)]
    await store.runs.create(new_run(provider_run_id="late"), now=NOW, next_poll_at=NOW + timedelta(minutes=5))
    await store.runs.create(new_run(provider_run_id="other", connection="dk"), now=NOW,
                            next_poll_at=NOW + timedelta(seconds=2))
    held = await store.runs.create(new_run(provider_run_id="held"), now=NOW, next_poll_at=NOW + timedelta(seconds=1))
    assert [r.id for r in await store.runs.claim_due("b", now=NOW + timedelta(seconds=1), limit=1, lease=lease)] == [
        held.id]
    taken = await store.runs.claim_soon("a", ["rivery-us"], until=NOW + timedelta(seconds=30), now=NOW, limit=10,
                                        lease=lease)
    assert {r.id for r in taken} == {r.id for r in soon}  # not the late one, another connection's, or one held
    assert await store.runs.claim_soon("b", ["rivery-us"], until=NOW + timedelta(seconds=30), now=NOW, limit=10,
                                       lease=lease) == []
    await store.runs.release("a", [soon[0].id])
    again = await store.runs.claim_soon("b", ["rivery-us"], until=NOW + timedelta(seconds=30), now=NOW, limit=10,
                                        lease=lease)
    assert [r.id for r in again] == [soon[0].id]


async def test_a_run_is_retried_once(store: Store) -> None:
    failed = await store.runs.create(new_run(provider_run_id="p-9"), now=NOW, next_poll_at=None)
    retry = await store.runs.create(new_run(retry_of=failed.id, attempt=2), now=NOW, next_poll_at=None)
    with pytest.raises(AlreadyRetried) as err:
        await store.runs.create(new_run(retry_of=failed.id, attempt=2), now=NOW, next_poll_at=None)
    assert err.value.retry.id == retry.id


async def test_a_card_changes_only_when_its_content_does(store: Store) -> None:
    run = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "queued"}}]
    assert await store.cards.write_run_card(run.id, "C1", "queued", blocks, now=NOW)
    assert not await store.cards.write_run_card(run.id, "C1", "queued", blocks, now=NOW)
    [card] = await store.cards.claim("a", now=NOW, limit=10, lease=timedelta(seconds=30))
    assert (card.version, card.sent_version, card.ts) == (1, 0, None)
    await store.cards.sent(card.id, card.version, "111.222")
    assert await store.cards.claim("a", now=NOW, limit=10, lease=timedelta(seconds=30)) == []
    assert await store.cards.write_run_card(run.id, "C1", "running", blocks, now=NOW)
    [card] = await store.cards.claim("a", now=NOW, limit=10, lease=timedelta(seconds=30))
    assert (card.version, card.sent_version, card.ts) == (2, 1, "111.222")
    assert (await store.runs.of_message("C1", "111.222")).id == run.id  # type: ignore[union-attr]


async def test_a_card_another_writer_creates_first_is_changed_not_refused(store: Store) -> None:
    """Two write a run's first card at once (under load, its first poll and the command that started it): the one
    that finds it created between its look and its insert changes it instead of failing on the unique key."""
    run = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    queued = [{"type": "section", "text": {"type": "mrkdwn", "text": "queued"}}]
    running = [{"type": "section", "text": {"type": "mrkdwn", "text": "running"}}]

    class OtherWriterFirst:
        """Our transaction's connection; the other writer commits the card just before our insert."""

        def __init__(self, conn: AsyncConnection) -> None:
            self.conn = conn
            self.raced = False

        async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.raced and isinstance(statement, Insert) and statement.table is cards:
                self.raced = True
                assert await store.cards.write_run_card(run.id, "C1", "queued", queued, now=NOW)
            return await self.conn.execute(statement, *args, **kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.conn, name)

    async with store.engine.begin() as conn:
        racing = OtherWriterFirst(conn)
        assert await write_message(cast(AsyncConnection, racing), f"run:{run.id}", "C1", "running", running,
                                   now=NOW, run_id=run.id)
    assert racing.raced
    card = await store.cards.of_run(run.id)
    assert card is not None and (card.text, card.blocks, card.version) == ("running", running, 2)


async def test_outbox_keys_make_messages_idempotent_and_threads_wait_for_their_card(store: Store) -> None:
    run = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    assert await store.outbox.enqueue("run:1:failed", kind=OutboxKind.THREAD, text="details", run_id=run.id, now=NOW)
    assert not await store.outbox.enqueue("run:1:failed", kind=OutboxKind.THREAD, text="details", run_id=run.id, now=NOW)
    assert await store.outbox.enqueue("notice", kind=OutboxKind.POST, channel="C1", text="hello", now=NOW)
    lease = timedelta(seconds=30)
    claimed = await store.outbox.claim("a", now=NOW, limit=10, lease=lease)
    assert [i.key for i in claimed] == ["notice"]  # the thread reply waits for the card
    await store.cards.write_run_card(run.id, "C1", "t", [], now=NOW)
    card = await store.cards.of_run(run.id)
    assert card is not None
    await store.cards.sent(card.id, 1, "5.5")
    [item] = await store.outbox.claim("b", now=NOW, limit=10, lease=lease)
    assert (item.key, item.thread_channel, item.thread_ts) == ("run:1:failed", "C1", "5.5")
    await store.outbox.sent(item.id, "6.6", now=NOW)
    assert await store.unsent() == 0 + 0 + 0 + 1  # "notice" is still leased, not sent


async def test_audit_entries_are_kept(store: Store) -> None:
    await store.audit.record(user_id="U1", action="run", target="leads-ods", outcome="refused", now=NOW, detail="not allowed")
    [entry] = await store.audit.entries()
    assert (entry.user_id, entry.action, entry.outcome, entry.detail) == ("U1", "run", "refused", "not allowed")


async def test_nul_in_free_text_is_dropped_not_refused_on_either_database(store: Store) -> None:
    # PostgreSQL refuses U+0000 in text: a provider message or a typed target carrying one failed every write
    await store.audit.record(user_id="U1", action="run", target="rivery:a\x00b", outcome="refused", now=NOW,
                      detail="typed \x00 here")
    [entry] = await store.audit.entries()
    assert (entry.target, entry.detail) == ("rivery:ab", "typed  here")
    run = await store.runs.create(new_run(provider_run_id="p-0"), now=NOW, next_poll_at=NOW)
    done = RunStatus("p-0", RunState.FAILED, "E\x00", message="disk\x00 full",
                     tasks=(TaskStatus("lo\x00ad", RunState.FAILED, "E", message="x\x00"),))
    change = await store.runs.record_status(run.id, done, now=NOW, next_poll_at=None)
    assert change is not None and change.run.message == "disk full" and change.run.raw_status == "E"
    # a poll error is written to a run still followed (an ended run keeps what it ended with)
    polled = await store.runs.create(new_run(provider_run_id="p-1"), now=NOW, next_poll_at=NOW)
    failed = await store.runs.record_poll_error(polled.id, "bad\x00 answer", now=NOW, next_poll_at=NOW)
    assert failed.last_error == "bad answer"


async def test_mutes_hold_until_they_expire(store: Store) -> None:
    await store.mutes.mute("leads-ods", until=NOW + timedelta(hours=1), user_id="U1", now=NOW)
    assert (await store.mutes.active(now=NOW + timedelta(minutes=59)))["leads-ods"] == (NOW + timedelta(hours=1), "U1")
    assert "leads-ods" not in await store.mutes.active(now=NOW + timedelta(hours=1, seconds=1))
    assert await store.mutes.unmute("leads-ods", now=NOW + timedelta(minutes=30)) == []  # no open alert to tell
    assert await store.mutes.unmute("leads-ods", now=NOW + timedelta(minutes=31)) is None  # ended already
    assert "leads-ods" not in await store.mutes.active(now=NOW + timedelta(minutes=30))


async def test_a_change_recorded_but_never_shown_is_found_again(store: Store) -> None:
    run = await store.runs.create(new_run(provider_run_id="p-n"), now=NOW, next_poll_at=NOW)
    await store.runs.mark_notified(run.id, StoredState.QUEUED)
    done = RunStatus("p-n", RunState.FAILED, "E")
    await store.runs.record_status(run.id, done, now=NOW, next_poll_at=None)  # …and the process dies here
    [found] = await store.runs.unnotified(older_than=NOW + timedelta(seconds=1))
    assert (found.id, found.state, found.notified_state) == (run.id, "failed", "queued")
    await store.runs.mark_notified(run.id, StoredState.FAILED)
    assert await store.runs.unnotified(older_than=NOW + timedelta(seconds=1)) == []


async def test_a_change_never_shown_is_found_while_the_run_is_still_polled(store: Store) -> None:
    """Polls that bring nothing new keep touching the run: its unshown change must be found all the same."""
    run = await store.runs.create(new_run(provider_run_id="p-r"), now=NOW, next_poll_at=NOW)
    await store.runs.mark_notified(run.id, StoredState.QUEUED)
    running = RunStatus("p-r", RunState.RUNNING, "R")
    await store.runs.record_status(run.id, running, now=NOW, next_poll_at=NOW)  # …the card write fails here
    for second in range(1, 30):
        await store.runs.record_status(run.id, running, now=NOW + timedelta(seconds=second), next_poll_at=NOW)
    assert await store.runs.unnotified(older_than=NOW - timedelta(seconds=1)) == []  # too fresh: maybe in progress
    [found] = await store.runs.unnotified(older_than=NOW + timedelta(seconds=10))
    assert (found.id, found.state, found.notified_state) == (run.id, "running", "queued")


async def test_a_run_the_watcher_records_while_its_trigger_is_recorded_is_absorbed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The watcher lists the new run right between the trigger's look for a copy and its update: the
    update meets the copy's unique key, looks again and absorbs it instead of failing the command."""
    mine = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    absorb = store.starts._absorb_watched_copy
    raced: list[int] = []

    async def watcher_between(conn: AsyncConnection, run_id: int, provider_run_id: str) -> None:
        await absorb(conn, run_id, provider_run_id)
        if not raced:
            copy = await store.runs.create(new_run(provider_run_id=provider_run_id, origin="watch", started_by=""),
                                          now=NOW, next_poll_at=NOW)
            raced.append(copy.id)

    monkeypatch.setattr(store.starts, "_absorb_watched_copy", watcher_between)
    run = await store.starts.record_triggered(mine.id, "p-9", now=NOW, next_poll_at=NOW)
    assert raced and run.id == mine.id and run.provider_run_id == "p-9"
    assert await store.runs.get(raced[0]) is None
    found = await store.runs.find("rivery-us", "p-9")
    assert found is not None and found.id == mine.id


async def test_leases_left_by_a_failed_tick_are_handed_back_and_a_retry_being_started_is_not_taken_again(
    store: Store,
) -> None:
    lease = timedelta(seconds=60)
    polled = await store.runs.create(new_run(provider_run_id="p-l"), now=NOW, next_poll_at=NOW)
    failed = await store.runs.create(new_run(provider_run_id="p-f"), now=NOW, next_poll_at=None)
    await store.runs.create(new_run(retry_of=failed.id, attempt=2, start_at=NOW), now=NOW, next_poll_at=None)
    [claimed] = await store.runs.claim_due("a", now=NOW, limit=10, lease=lease)
    [starting] = await store.starts.claim_waiting("a", now=NOW, limit=10, lease=lease)
    assert claimed.id == polled.id and starting.state == "starting"
    await store.runs.release_leases("a")  # the tick failed midway
    # another process may poll the first at once; the retry being started is nobody else's to start again
    assert [r.id for r in await store.runs.claim_due("b", now=NOW, limit=10, lease=lease)] == [polled.id]
    assert await store.starts.claim_waiting("b", now=NOW, limit=10, lease=lease) == []


async def test_a_card_drawn_before_its_run_ended_never_overwrites_the_final_one(store: Store) -> None:
    """Found by CI (the SIGKILL fault run): the stuck warning refreshed the card from the run its tick had read, after
    the poller had ended the run and written its final card; the card said "may be stuck" for ever."""
    run = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    run = await store.starts.record_triggered(run.id, "p-1", now=NOW, next_poll_at=NOW)
    done = RunStatus("p-1", RunState.SUCCEEDED, "S")
    await store.runs.record_status(run.id, done, now=NOW + timedelta(seconds=5), next_poll_at=None)
    final = [{"type": "section", "text": {"type": "mrkdwn", "text": "succeeded"}}]
    stale = [{"type": "section", "text": {"type": "mrkdwn", "text": "may be stuck"}}]
    assert await store.cards.write_run_card(run.id, "C1", "succeeded", final, now=NOW, final=True)
    assert not await store.cards.write_run_card(run.id, "C1", "may be stuck", stale, now=NOW, final=False)
    card = await store.cards.of_run(run.id)
    assert card is not None and card.text == "succeeded" and card.version == 1


async def test_of_two_drawings_of_a_card_the_one_started_later_is_kept(store: Store) -> None:
    """Found by CI (tests/scenario/test_home.py): the alert's link redrew the card from a run read before a click
    acknowledged it, wrote last, and the card lost "is on it" for good."""
    run = await store.runs.create(new_run(), now=NOW, next_poll_at=None)
    earlier, later = await store.cards.draw_ticket(run.id), await store.cards.draw_ticket(run.id)
    assert later > earlier
    acked = [{"type": "section", "text": {"type": "mrkdwn", "text": "is on it"}}]
    stale = [{"type": "section", "text": {"type": "mrkdwn", "text": "failed"}}]
    assert await store.cards.write_run_card(run.id, "C1", "is on it", acked, now=NOW, ticket=later)
    assert not await store.cards.write_run_card(run.id, "C1", "failed", stale, now=NOW, ticket=earlier)
    card = await store.cards.of_run(run.id)
    assert card is not None and card.text == "is on it"
    # a drawing started after both is written
    assert await store.cards.write_run_card(run.id, "C1", "failed", stale, now=NOW,
                                            ticket=await store.cards.draw_ticket(run.id))
