"""Escalation (catalog ``escalate_after``): the open alerts nobody acknowledged, and each ping, once.

An alert's ``escalations`` counts the pings sent since it last (re)opened: 1, its owners once more; 2,
``escalate_to``. A ping is ONE transaction over three families: the alert's count moved from n to n + 1 (a
compare-and-set: a second replica, or this one after a restart, finds it moved and sends nothing), the thread reply
recorded in the outbox under its key, and the timeline's line. So a crash before the commit sends nothing and the
next tick tries again; after it, the reply is owed and delivered once, whoever delivers it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.models import Json
from bot.store.alert_events import AlertEvent, EventKind, add_event, event_of_row
from bot.store.alerting import Alert, AlertKind, AlertState, alert_of_row
from bot.store.outbox import add_message
from bot.store.records import OutboxKind
from bot.store.tables import alert_events, alerts, mutes

__all__ = ["LAST_STEP", "EscalationStore", "Unanswered", "answered"]

#: the owners once more, then ``escalate_to``: nothing after that
LAST_STEP = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Unanswered:
    """An open alert nobody has acknowledged since it last opened (a muted pipeline's are skipped while muted)."""

    alert: Alert
    escalations: int  # pings sent since it last opened
    waiting_since: datetime  # when the wait for the next ping began: its last ping, its reopening, first_at, or
    # the end of its pipeline's mute (a mute holds the pings; ended, the alert gets its full ``escalate_after``)
    opened_at: datetime  # when it last opened: its first failure, or its reopening


def answered(events: Sequence[AlertEvent]) -> bool:
    """Whether someone took the alert since it last (re)opened: acknowledged it. A mute is not taking it: it holds
    the pings while it lasts (``EscalationStore.escalate``, ``Escalator.tick``); unmuted or ended, the alert nobody
    took is pinged as any other (counted as taken, one mute silenced the alert's escalation for good)."""
    taken = False
    for event in events:
        if event.kind is EventKind.ACKNOWLEDGED:
            taken = True
        elif event.kind in (EventKind.REOPENED, EventKind.RESOLVED):
            taken = False
    return taken


class _NotOwed(Exception):
    """Leaves the transaction (rolled back): the ping is not owed after all."""


class EscalationStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def unanswered(self, pipelines: Collection[str]) -> list[Unanswered]:
        """The open, unmuted failure alerts of ``pipelines`` with a ping still to come and nobody on them. Only
        announced ones (``group_key`` set): the ping is a reply in the thread of the message that announced it."""
        if not pipelines:
            return []
        query = (
            select(alerts)
            .where(
                alerts.c.kind == AlertKind.FAILURE.value,
                alerts.c.pipeline.in_(sorted(pipelines)),
                alerts.c.state == AlertState.OPEN.value,
                alerts.c.recovered_at.is_(None),
                alerts.c.muted.is_(False),
                alerts.c.group_key.is_not(None),
                alerts.c.escalations < LAST_STEP,
            )
            .order_by(alerts.c.id)
        )
        async with self.engine.connect() as conn:
            rows = list((await conn.execute(query)).mappings())
            events = await _events(conn, [r["id"] for r in rows])
            ended = select(mutes.c.pipeline, mutes.c.until).where(mutes.c.pipeline.in_(sorted(pipelines)))
            mute_ends = {r["pipeline"]: r["until"] for r in (await conn.execute(ended)).mappings()}
        return [
            Unanswered(
                alert=alert_of_row(row),
                escalations=int(row["escalations"]),
                # a mute still on is skipped by the tick; one ended restarts the wait (pinging at its end, at once,
                # told the owners nothing the mute had not kept from them)
                waiting_since=max(row["escalated_at"] or row["first_at"], mute_ends.get(row["pipeline"], _EPOCH)),
                opened_at=_opened(row["first_at"], events.get(row["id"], [])),
            )
            for row in rows
            if not answered(events.get(row["id"], []))
        ]

    async def escalate(
        self,
        alert_id: int,
        *,
        step: int,
        key: str,
        card_key: str,
        text: str,
        blocks: list[Json],
        pinged: Sequence[str],
        now: datetime,
    ) -> bool:
        """Send ping ``step`` (1 or 2) of the alert: its thread reply under ``card_key`` and its timeline line, once.
        False, with nothing written, when it is no longer owed: sent already (another replica, a tick before a
        restart), the alert resolved or muted, or someone acknowledged it since it was read."""
        kind = EventKind.REMINDED if step == 1 else EventKind.ESCALATED
        try:
            async with self.engine.begin() as conn:
                moved = await conn.execute(
                    update(alerts)
                    .where(
                        alerts.c.id == alert_id,
                        alerts.c.escalations == step - 1,
                        alerts.c.state == AlertState.OPEN.value,
                        alerts.c.recovered_at.is_(None),
                        alerts.c.muted.is_(False),
                    )
                    .values(escalations=step, escalated_at=now)
                )
                if moved.rowcount != 1:
                    return False
                if answered((await _events(conn, [alert_id])).get(alert_id, [])):
                    raise _NotOwed  # acknowledged between the read and now: the count moved back
                if await _muted(conn, alert_id, now):
                    raise _NotOwed  # its pipeline muted between the read and now
                written = await add_message(
                    conn, key, kind=OutboxKind.THREAD, text=text, blocks=blocks, card_key=card_key, now=now
                )
                if not written:
                    raise _NotOwed  # the key is taken: this ping was recorded already
                await add_event(conn, alert_id, kind, at=now, detail=" ".join(pinged))
        except _NotOwed:
            return False
        return True


async def _muted(conn: AsyncConnection, alert_id: int, now: datetime) -> bool:
    pipeline = select(alerts.c.pipeline).where(alerts.c.id == alert_id).scalar_subquery()
    query = select(mutes.c.pipeline).where(mutes.c.pipeline == pipeline, mutes.c.until > now)
    return (await conn.execute(query)).first() is not None


def _opened(first_at: datetime, events: Sequence[AlertEvent]) -> datetime:
    reopened = [e.at for e in events if e.kind is EventKind.REOPENED]
    return reopened[-1] if reopened else first_at


async def _events(conn: AsyncConnection, alert_ids: list[int]) -> dict[int, list[AlertEvent]]:
    found: dict[int, list[AlertEvent]] = {}
    if not alert_ids:
        return found
    query = select(alert_events).where(alert_events.c.alert_id.in_(alert_ids)).order_by(alert_events.c.id)
    for row in (await conn.execute(query)).mappings():
        found.setdefault(row["alert_id"], []).append(event_of_row(row))
    return found
