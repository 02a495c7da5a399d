"""PagerDuty events of alerts, sent once each and in order per alert (``pagerduty_events``).

An event is recorded before any call, under the key ``pd:{alert_id}:{action}`` (``…:{episode}`` once the alert was
reopened: ``episode`` counts its reopenings, each a new incident on PagerDuty, resolved in its turn): the same intent
recorded twice (a retried notification, a repeat, two replicas) is one event. The sender claims the due ones
under a lease; an event waits while an earlier event of its alert is still pending, so PagerDuty never gets a
resolve before its trigger. The routing key is not stored: the sender reads it from the catalog when it sends.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.models import Json
from bot.store.rows import claim
from bot.store.tables import alert_events, alerts, pagerduty_events
from bot.store.upsert import upsert_insert

__all__ = [
    "Page",
    "PageAction",
    "PageEvent",
    "PageState",
    "PagingStore",
    "add_page",
    "dedup_key",
    "episode_of",
    "event_key",
    "triggered_in",
]

PageAction = Literal["trigger", "acknowledge", "resolve"]


class PageState(enum.StrEnum):
    """Where a PagerDuty event is (``pagerduty_events.state``)."""

    PENDING = "pending"  # to send (again, after ``not_before``)
    SENT = "sent"  # PagerDuty answered 202
    DEAD = "dead"  # PagerDuty refused it (400), or nothing left to send it with: kept, with the reason


def dedup_key(alert_id: int) -> str:
    """PagerDuty's ``dedup_key`` of an alert: one incident per Slack alert."""
    return f"pipeline-bot/alert/{alert_id}"


def event_key(alert_id: int, action: PageAction, episode: int = 0) -> str:
    """The event's key: the first episode keeps the key events had before reopenings were paged."""
    return f"pd:{alert_id}:{action}" + (f":{episode}" if episode else "")


@dataclass(frozen=True, slots=True)
class PageEvent:
    id: int
    key: str
    alert_id: int
    action: PageAction
    pipeline: str
    dedup_key: str
    event: Json
    state: PageState
    attempts: int
    last_error: str
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Page:
    """What the Slack alert says of its page: the trigger's dedup key, state and, refused, PagerDuty's reason; when
    PagerDuty took the incident's acknowledgement and its resolve (their events sent after this trigger)."""

    dedup_key: str
    state: PageState
    error: str = ""
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None


class PagingStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def episode(self, alert_id: int, *, upto: datetime | None = None) -> int:
        """How many times the alert was reopened (before its resolution at ``upto``): a resolved incident is not
        reopened on PagerDuty, so each reopening is an incident of its own, on the same dedup key."""
        async with self.engine.connect() as conn:
            return await episode_of(conn, alert_id, upto=upto)

    async def enqueue(
        self,
        alert_id: int,
        action: PageAction,
        *,
        pipeline: str,
        event: Json,
        now: datetime,
        episode: int = 0,
    ) -> bool:
        """Record an event to send. The same alert, action and episode twice is one event: False the second time."""
        async with self.engine.begin() as conn:
            return await add_page(conn, alert_id, action, pipeline=pipeline, event=event, now=now, episode=episode)

    async def triggered(self, alert_id: int, episode: int = 0) -> bool:
        """Whether the alert was paged (its episode's trigger recorded): only then are acknowledge and resolve sent."""
        async with self.engine.connect() as conn:
            return await triggered_in(conn, alert_id, episode)

    async def of_alert(self, alert_id: int) -> list[PageEvent]:
        """Every event of an alert, oldest first."""
        query = select(pagerduty_events).where(pagerduty_events.c.alert_id == alert_id).order_by(pagerduty_events.c.id)
        async with self.engine.connect() as conn:
            return [_event(r) for r in (await conn.execute(query)).mappings()]

    async def pages(self, alert_ids: Iterable[int] | None = None) -> dict[int, Page]:
        """The page of each alert paged, by alert id: of ``alert_ids``, or (None) of the alerts still pending, the
        ones the next flush announces."""
        t = pagerduty_events
        query = select(t.c.id, t.c.alert_id, t.c.action, t.c.dedup_key, t.c.state, t.c.last_error, t.c.sent_at)
        if alert_ids is None:
            pending = select(alerts.c.id).where(alerts.c.state == "pending")
            query = query.where(t.c.alert_id.in_(pending))
        else:
            ids = list(alert_ids)
            if not ids:
                return {}
            query = query.where(t.c.alert_id.in_(ids))
        query = query.order_by(t.c.id)  # a reopened alert's latest trigger is its page now, and what follows it
        found: dict[int, Page] = {}
        async with self.engine.connect() as conn:
            for r in (await conn.execute(query)).mappings():
                alert_id, action, state = r["alert_id"], r["action"], PageState(r["state"])
                if action == "trigger":
                    found[alert_id] = Page(r["dedup_key"], state, r["last_error"])
                elif alert_id in found and state is PageState.SENT and action == "acknowledge":
                    found[alert_id] = replace(found[alert_id], acknowledged_at=r["sent_at"])
                elif alert_id in found and state is PageState.SENT:
                    found[alert_id] = replace(found[alert_id], resolved_at=r["sent_at"])
        return found

    # -- sending ----------------------------------------------------------------------------

    async def claim(self, owner: str, *, now: datetime, limit: int, lease: timedelta) -> list[PageEvent]:
        """Due events, oldest first, none behind an earlier pending event of its alert (order per alert)."""
        t = pagerduty_events
        earlier = pagerduty_events.alias("earlier")
        waiting = (
            select(earlier.c.id)
            .where(earlier.c.alert_id == t.c.alert_id, earlier.c.id < t.c.id)
            .where(earlier.c.state == PageState.PENDING.value)
            .exists()
        )
        query = (
            select(t.c.id)
            .where(
                t.c.state == PageState.PENDING.value,
                (t.c.lease_expires_at.is_(None)) | (t.c.lease_expires_at < now),
                (t.c.not_before.is_(None)) | (t.c.not_before <= now),
                ~waiting,
            )
            .order_by(t.c.id)
            .limit(limit)
        )
        return await claim(self.engine, t, query, owner, now + lease, _events)

    async def sent(self, event_id: int, *, now: datetime) -> None:
        await self._set(event_id, state=PageState.SENT.value, sent_at=now, attempts=pagerduty_events.c.attempts + 1)

    async def retry_later(self, event_id: int, *, not_before: datetime, error: str) -> None:
        await self._set(
            event_id, not_before=not_before, last_error=error[:2000], attempts=pagerduty_events.c.attempts + 1
        )

    async def dead(self, event_id: int, error: str) -> None:
        """Refused for good (kept, visible, not retried); the events after it go on."""
        await self._set(
            event_id, state=PageState.DEAD.value, last_error=error[:2000], attempts=pagerduty_events.c.attempts + 1
        )

    async def release(self, owner: str) -> None:
        """Hand back the events ``owner`` claimed (a tick that failed midway, a stop)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(pagerduty_events)
                .where(pagerduty_events.c.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    async def _set(self, event_id: int, **values: object) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(pagerduty_events)
                .where(pagerduty_events.c.id == event_id)
                .values(lease_owner=None, lease_expires_at=None, **values)
            )


async def add_page(
    conn: AsyncConnection,
    alert_id: int,
    action: PageAction,
    *,
    pipeline: str,
    event: Json,
    now: datetime,
    episode: int = 0,
) -> bool:
    """Record an event in ``conn``'s transaction (the alert's change that calls for it: recorded together, a crash
    between the two cannot lose it). The same key twice is one event: False the second time."""
    values = {
        "key": event_key(alert_id, action, episode),
        "alert_id": alert_id,
        "action": action,
        "pipeline": pipeline,
        "dedup_key": dedup_key(alert_id),
        "event": event,
        "state": PageState.PENDING.value,
        "attempts": 0,
        "last_error": "",
        "created_at": now,
    }
    insert = upsert_insert(conn)
    statement = insert(pagerduty_events).values(**values).on_conflict_do_nothing(index_elements=["key"])
    return bool((await conn.execute(statement)).rowcount)


async def episode_of(conn: AsyncConnection, alert_id: int, *, upto: datetime | None = None) -> int:
    """``PagingStore.episode`` in ``conn``'s transaction.

    Counted in the order the events were recorded (reopening and resolution are serialized per pipeline), not by
    their times: each is read before the pipeline's lock (and from each replica's clock), so a success that waited
    for the lock while the alert was reopened resolved it "before" its reopening (the resolve went to the incident
    ended already, the new one stayed open)."""
    t = alert_events
    query = select(func.count()).select_from(t).where(t.c.alert_id == alert_id, t.c.kind == "reopened")
    if upto is not None:
        resolution = (
            select(func.max(t.c.id))
            .where(t.c.alert_id == alert_id, t.c.kind == "resolved", t.c.at == upto)
            .scalar_subquery()
        )
        query = query.where(or_(t.c.id < resolution, and_(resolution.is_(None), t.c.at <= upto)))
    return int((await conn.execute(query)).scalar_one())


async def triggered_in(conn: AsyncConnection, alert_id: int, episode: int = 0) -> bool:
    """``PagingStore.triggered`` in ``conn``'s transaction."""
    query = select(pagerduty_events.c.id).where(pagerduty_events.c.key == event_key(alert_id, "trigger", episode))
    return (await conn.execute(query)).first() is not None


async def _events(conn: AsyncConnection, ids: Sequence[int]) -> list[PageEvent]:
    query = select(pagerduty_events).where(pagerduty_events.c.id.in_(ids)).order_by(pagerduty_events.c.id)
    return [_event(r) for r in (await conn.execute(query)).mappings()]


def _event(row: RowMapping) -> PageEvent:
    return PageEvent(
        id=row["id"],
        key=row["key"],
        alert_id=row["alert_id"],
        action=row["action"],
        pipeline=row["pipeline"],
        dedup_key=row["dedup_key"],
        event=dict(row["event"] or {}),
        state=PageState(row["state"]),
        attempts=row["attempts"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
    )
