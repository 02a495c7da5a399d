"""The outbox family: messages sent once (a reply in a card's thread, a post of its own), each under a key that
makes it idempotent. Delivery claims the pending ones in order; a thread reply waits for its card to be posted,
and a run's message waits while an earlier one of the run to the same place is pending."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NotRequired, TypedDict, Unpack

from sqlalchemy import String, and_, case, cast, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.models import Json
from bot.store import keys
from bot.store.alert_events import EventKind
from bot.store.records import OutboxItem, OutboxKind
from bot.store.rows import claim
from bot.store.tables import alert_events, alerts, cards, outbox, runs
from bot.store.upsert import upsert_insert

__all__ = ["Message", "OutboxState", "OutboxStore", "add_message"]


class Message(TypedDict):
    """What ``enqueue`` and ``add_message`` are told of a message besides its key (one signature for both)."""

    kind: OutboxKind
    text: str
    now: datetime
    blocks: NotRequired[list[Json] | None]
    run_id: NotRequired[int | None]
    channel: NotRequired[str | None]
    card_key: NotRequired[str | None]


class OutboxState(enum.StrEnum):
    """Where an outbox message is (``outbox.state``)."""

    PENDING = "pending"  # to send (again, after ``not_before``)
    SENT = "sent"
    DEAD = "dead"  # Slack refused it for good: kept, visible, not retried


class OutboxStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def enqueue(self, key: str, **message: Unpack[Message]) -> bool:
        """Record a message to send. The same key twice is one message: returns False the second time.

        A ``thread`` reply goes under the living message ``card_key`` (a run's card by default)."""
        async with self.engine.begin() as conn:
            return await add_message(conn, key, **message)

    async def failed_runs_without(
        self, note: str, *, since: datetime, limit: int, after: int = 0
    ) -> list[tuple[int, str]]:
        """Failed runs recorded since ``since`` (of id above ``after``), whose failure was handled
        (``notified_state``), that have a provider run and no reply ``note`` yet (``keys.run_reply``), each with the
        message its reply goes under: the run's card, or for a watched run (no card) the posted alert message that
        announced it (none yet while the alert waits to be announced, none ever when it is muted). Of a watched
        pipeline's failures, only the one that opened the first alert of its message: one note per alert message,
        as one per card, so a storm (40 repeats folded into one alert, 20 pipelines' alerts grouped in one message)
        does not fill the thread, nor spend the channel's pace (a post a second) before the alerts'. Oldest first.

        Recorded, not ended: ``updated_at``, which no poll moves once a run is final. A run that ended while the bot
        was down is recorded when the bot comes back (its first poll, the watch's list) but ended (the provider's
        time) long before."""
        before, after_id = keys.run_reply_parts(note)
        key = literal(before) + cast(runs.c.id, String) + literal(after_id)
        group, between = keys.alert_group_parts()
        announced = (
            select(alerts.c.group_key)
            .select_from(alert_events.join(alerts, alerts.c.id == alert_events.c.alert_id))
            .where(
                alert_events.c.run_id == runs.c.id,
                alert_events.c.kind == EventKind.FAILED.value,  # it opened the alert
                # the first alert of its message (``keys.alert_group`` names the message by it)
                alerts.c.group_key == literal(group) + alerts.c.channel + literal(between) + cast(alerts.c.id, String),
            )
            .limit(1)
            .scalar_subquery()
        )
        # ``before`` + the id is the run's card (``keys.run_card``), which its replies are under
        thread = case((runs.c.origin == "watch", announced), else_=literal(before) + cast(runs.c.id, String))
        query = (
            select(runs.c.id, thread.label("thread"))
            .where(
                runs.c.id > after,
                runs.c.state == "failed",
                runs.c.notified_state == "failed",
                runs.c.updated_at >= since,
                runs.c.provider_run_id.is_not(None),
                thread.is_not(None),
                ~exists().where(outbox.c.key == key),
            )
            .order_by(runs.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [(int(row[0]), str(row[1])) for row in await conn.execute(query)]

    async def written_at(self, key: str) -> datetime | None:
        """When the message ``key`` was recorded (sent or not), or None if it never was."""
        query = select(outbox.c.created_at).where(outbox.c.key == key[:200])
        async with self.engine.connect() as conn:
            found: datetime | None = (await conn.execute(query)).scalar()
            return found

    async def of_run(self, run_id: int) -> list[OutboxItem]:
        """Every message written for a run, sent or not, oldest first."""
        query = select(outbox.c.id).where(outbox.c.run_id == run_id).order_by(outbox.c.id)
        async with self.engine.connect() as conn:
            ids = list((await conn.execute(query)).scalars())
            return await _items(conn, ids)

    # -- delivery ---------------------------------------------------------------------------

    async def claim(self, owner: str, *, now: datetime, limit: int, lease: timedelta) -> list[OutboxItem]:
        free = or_(outbox.c.lease_expires_at.is_(None), outbox.c.lease_expires_at < now)
        ready = or_(outbox.c.not_before.is_(None), outbox.c.not_before <= now)
        # a thread reply waits for its card to be posted
        card_posted = or_(
            outbox.c.kind.not_in((OutboxKind.THREAD.value, OutboxKind.FUNCTION.value)),
            select(cards.c.id).where(cards.c.key == outbox.c.card_key, cards.c.ts.is_not(None)).exists(),
            # a step's completion links its run's card, but does not wait for a card never to be posted (none,
            # or given up: Slack refused it for good)
            and_(
                outbox.c.kind == OutboxKind.FUNCTION.value,
                ~select(cards.c.id)
                .where(cards.c.key == outbox.c.card_key, cards.c.ts.is_(None), cards.c.sent_version < cards.c.version)
                .exists(),
            ),
        )
        # a run's messages to one place go out in order: one waits while an earlier one is pending (put off by a
        # Slack error or the pace, or held by another replica); without this the next tick sent the later ones
        earlier = outbox.alias("earlier")
        behind = (
            select(earlier.c.id)
            .where(
                earlier.c.run_id == outbox.c.run_id,
                earlier.c.id < outbox.c.id,
                earlier.c.state == OutboxState.PENDING.value,
                # the place: the card a reply goes under, else the channel of a post
                func.coalesce(earlier.c.card_key, earlier.c.channel)
                == func.coalesce(outbox.c.card_key, outbox.c.channel),
            )
            .exists()
        )
        query = (
            select(outbox.c.id)
            .where(outbox.c.state == OutboxState.PENDING.value, free, ready, card_posted, ~behind)
            .order_by(outbox.c.id)
            .limit(limit)
        )
        return await claim(self.engine, outbox, query, owner, now + lease, _items)

    async def attempt(self, item_id: int, *, now: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(attempting_since=now, attempts=outbox.c.attempts + 1)
            )

    async def sent(self, item_id: int, ts: str | None, *, now: datetime) -> bool:
        """Mark a message sent. False when another process marked it first: ours is a duplicate."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id, outbox.c.state == OutboxState.PENDING.value)
                .values(
                    state=OutboxState.SENT.value,
                    ts=ts,
                    sent_at=now,
                    attempting_since=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            return bool(result.rowcount == 1)

    async def retry_later(self, item_id: int, *, not_before: datetime, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(not_before=not_before, last_error=error[:2000], lease_owner=None, lease_expires_at=None)
            )

    async def move(self, item_id: int, channel: str) -> None:
        """Its channel refused it: post it in ``channel`` instead."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(channel=channel, attempting_since=None, lease_owner=None, lease_expires_at=None)
            )

    async def out_of_thread(self, item_id: int, channel: str) -> None:
        """A thread reply Slack refused for good (its channel takes no replies, or no post at all): a post of its
        own in ``channel`` instead, rather than lost."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(
                    kind=OutboxKind.POST.value,
                    channel=channel,
                    attempting_since=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )

    async def dead(self, item_id: int, error: str) -> None:
        """Slack refused it for good (e.g. channel archived): kept, visible, not retried."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == item_id)
                .values(
                    state=OutboxState.DEAD.value, last_error=error[:2000], lease_owner=None, lease_expires_at=None
                )
            )


async def add_message(conn: AsyncConnection, key: str, **message: Unpack[Message]) -> bool:
    """``OutboxStore.enqueue`` inside the caller's transaction (a message written with the change it tells)."""
    kind, run_id, card_key = message["kind"], message.get("run_id"), message.get("card_key")
    if kind in (OutboxKind.THREAD, OutboxKind.FUNCTION) and card_key is None and run_id is not None:
        card_key = keys.run_card(run_id)
    values = {
        "card_key": card_key,
        "key": key[:200],
        "run_id": run_id,
        "kind": str(kind),
        "channel": message.get("channel"),
        "text": message["text"],
        "blocks": message.get("blocks"),
        "state": OutboxState.PENDING.value,
        "attempts": 0,
        "last_error": "",
        "created_at": message["now"],
    }
    dialect_insert = upsert_insert(conn)
    statement = dialect_insert(outbox).values(**values).on_conflict_do_nothing(index_elements=["key"])
    result = await conn.execute(statement)
    return bool(result.rowcount)


async def _items(conn: AsyncConnection, ids: Sequence[int]) -> list[OutboxItem]:
    """The messages ``ids`` with, for a thread reply, its card's channel and ts (None while not posted)."""
    query = (
        select(outbox, cards.c.channel.label("card_channel"), cards.c.ts.label("card_ts"))
        .select_from(outbox.outerjoin(cards, and_(cards.c.key == outbox.c.card_key)))
        .where(outbox.c.id.in_(ids))
        .order_by(outbox.c.id)
    )
    return [
        OutboxItem(
            id=r["id"],
            key=r["key"],
            run_id=r["run_id"],
            kind=OutboxKind(r["kind"]),
            channel=r["channel"],
            text=r["text"],
            blocks=r["blocks"],
            attempts=r["attempts"],
            attempting_since=r["attempting_since"],
            created_at=r["created_at"],
            thread_channel=r["card_channel"],
            thread_ts=r["card_ts"],
        )
        for r in (await conn.execute(query)).mappings()
    ]
