"""The subscriptions family: channels subscribed to a pipeline's, a tag's or a provider's runs (``/pipeline
subscribe``), and the people told when the runs they start end (``/pipeline notify me``)."""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.tables import subscriptions
from bot.store.upsert import upsert_insert

__all__ = ["Level", "SubjectKind", "Subscription", "SubscriptionStore"]


class SubjectKind(enum.StrEnum):
    """What a subscription follows (``subscriptions.kind``)."""

    PIPELINE = "pipeline"
    TAG = "tag"
    PROVIDER = "provider"
    STARTED = "started"  # the runs a person starts: ``target`` and ``channel`` are their user id


class Level(enum.StrEnum):
    """What a subscribed channel hears (``subscriptions.level``)."""

    FAILURES = "failures"  # the failure alerts
    ALL = "all"  # and a short note when any run ends


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    kind: SubjectKind
    target: str
    channel: str
    level: Level
    created_by: str
    created_at: datetime


class SubscriptionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = upsert_insert(engine)

    async def add(
        self, kind: SubjectKind, target: str, *, channel: str, level: Level, user_id: str, now: datetime
    ) -> tuple[Subscription, bool]:
        """Subscribe ``channel``; subscribing again changes the level. Returns it and whether it is new."""
        async with self.engine.begin() as conn:
            statement = (
                self._insert(subscriptions)
                .values(
                    kind=kind.value,
                    target=target,
                    channel=channel,
                    level=level.value,
                    created_by=user_id,
                    created_at=now,
                )
                .on_conflict_do_nothing(index_elements=["kind", "target", "channel"])
            )
            created = bool((await conn.execute(statement)).rowcount)
            where = _same(kind, target, channel)
            if not created:
                await conn.execute(update(subscriptions).where(where).values(level=level.value))
            row = (await conn.execute(select(subscriptions).where(where))).mappings().one()
            return _from(row), created

    async def remove(self, kind: SubjectKind, target: str, *, channel: str) -> Subscription | None:
        """The subscription removed, or None when there was none."""
        async with self.engine.begin() as conn:
            where = _same(kind, target, channel)
            row = (await conn.execute(select(subscriptions).where(where))).mappings().first()
            if row is not None:
                await conn.execute(subscriptions.delete().where(subscriptions.c.id == row["id"]))
            return _from(row) if row is not None else None

    async def remove_id(self, subscription_id: int) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(subscriptions.delete().where(subscriptions.c.id == subscription_id))
            return bool(result.rowcount)

    async def get(self, subscription_id: int) -> Subscription | None:
        async with self.engine.connect() as conn:
            query = select(subscriptions).where(subscriptions.c.id == subscription_id)
            row = (await conn.execute(query)).mappings().first()
        return _from(row) if row is not None else None

    async def listed(self, *, user_id: str | None = None, limit: int = 200) -> list[Subscription]:
        """Channel subscriptions (not "notify me"), oldest first; ``user_id``: only those this person made."""
        query = select(subscriptions).where(subscriptions.c.kind != SubjectKind.STARTED.value)
        if user_id is not None:
            query = query.where(subscriptions.c.created_by == user_id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(subscriptions.c.id).limit(limit))).mappings()
            return [_from(r) for r in rows]

    async def matching(self, pipeline: str, tags: Collection[str], provider: str) -> list[Subscription]:
        """The channel subscriptions that cover a run of ``pipeline`` (by its name, one of its tags, its provider)."""
        covers = [
            and_(subscriptions.c.kind == SubjectKind.PIPELINE.value, subscriptions.c.target == pipeline),
            and_(subscriptions.c.kind == SubjectKind.PROVIDER.value, subscriptions.c.target == provider),
        ]
        if tags:
            covers.append(and_(subscriptions.c.kind == SubjectKind.TAG.value, subscriptions.c.target.in_(list(tags))))
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(select(subscriptions).where(or_(*covers)).order_by(subscriptions.c.id))
            ).mappings()
            return [_from(r) for r in rows]

    async def notify_me(self, user_id: str, *, on: bool, now: datetime) -> bool:
        """Switch a person's "notify me" on or off; False when it already was."""
        if on:
            _, created = await self.add(
                SubjectKind.STARTED, user_id, channel=user_id, level=Level.ALL, user_id=user_id, now=now
            )
            return created
        return await self.remove(SubjectKind.STARTED, user_id, channel=user_id) is not None

    async def listed_started(self, user_id: str) -> list[Subscription]:
        """The person's "notify me" (a list of one, or empty)."""
        async with self.engine.connect() as conn:
            query = select(subscriptions).where(_same(SubjectKind.STARTED, user_id, user_id))
            return [_from(r) for r in (await conn.execute(query)).mappings()]

    async def notifies(self, user_id: str) -> bool:
        """Whether the runs ``user_id`` starts DM them when they end."""
        async with self.engine.connect() as conn:
            query = select(subscriptions.c.id).where(_same(SubjectKind.STARTED, user_id, user_id))
            return (await conn.execute(query)).first() is not None


def _same(kind: SubjectKind, target: str, channel: str) -> ColumnElement[bool]:
    return and_(
        subscriptions.c.kind == kind.value, subscriptions.c.target == target, subscriptions.c.channel == channel
    )


def _from(row: RowMapping) -> Subscription:
    return Subscription(
        id=row["id"],
        kind=SubjectKind(row["kind"]),
        target=row["target"],
        channel=row["channel"],
        level=Level(row["level"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
    )
