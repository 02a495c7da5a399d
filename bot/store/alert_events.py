"""An alert's timeline: what happened to it (failed, acknowledged, retried, muted, resolved, reopened), one row
each in ``alert_events``.

Each event is written inside the transaction of the state change it records (a run acknowledged, a retry's row
created, a mute set, a failure counted, a success resolving), through the functions taking a connection here; the
``AlertEvents`` family reads them for rendering.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.records import STOPPED_BY, StoredState
from bot.store.tables import alert_events, alerts, cards, runs

__all__ = [
    "CANCELED_RETRIES",
    "AlertEvent",
    "AlertEvents",
    "EventKind",
    "add_event",
    "alert_counting",
    "event_of_row",
    "note_pipeline",
    "note_run",
]

_FAILURE = "failure"
_UNRESOLVED = ("pending", "open")
RECENT_ALERTS = 5  # a run's alert is among its pipeline's last few


class EventKind(enum.StrEnum):
    """What happened to an alert (``alert_events.kind``)."""

    FAILED = "failed"  # the failure that opened it
    REPEATED = "repeated"  # the pipeline failed again while it was open
    REOPENED = "reopened"  # a failure again after it was resolved, within the suppression interval
    ACKNOWLEDGED = "acknowledged"
    RETRIED = "retried"  # run_id: the retry; actor null: the retry policy's
    MUTED = "muted"  # detail: the end of the mute (ISO 8601)
    UNMUTED = "unmuted"  # the mute was lifted before its end
    RESOLVED = "resolved"  # run_id: the run whose success resolved it
    REMINDED = "reminded"  # not acknowledged in time: its owners pinged once more; detail: the ids pinged
    ESCALATED = "escalated"  # still not acknowledged: ``escalate_to`` pinged; detail: the ids pinged


@dataclass(frozen=True, slots=True)
class AlertEvent:
    id: int
    alert_id: int
    at: datetime
    kind: EventKind
    actor: str | None
    run_id: int | None
    detail: str


async def add_event(
    conn: AsyncConnection,
    alert_id: int,
    kind: EventKind,
    *,
    at: datetime,
    actor: str | None = None,
    run_id: int | None = None,
    detail: str = "",
) -> None:
    await conn.execute(
        insert(alert_events).values(
            alert_id=alert_id, at=at, kind=kind.value, actor=actor, run_id=run_id, detail=detail[:500]
        )
    )


async def alert_counting(conn: AsyncConnection, run_id: int) -> int | None:
    """The failure alert (of its pipeline's last few) that counts failed run ``run_id``, if any."""
    pipeline = select(runs.c.pipeline).where(runs.c.id == run_id).scalar_subquery()
    query = (
        select(alerts.c.id, alerts.c.runs)
        .where(alerts.c.kind == _FAILURE, alerts.c.pipeline == pipeline)
        .order_by(alerts.c.id.desc())
        .limit(RECENT_ALERTS)
    )
    for row in (await conn.execute(query)).mappings():
        if run_id in (row["runs"] or []):
            return int(row["id"])
    return None


async def note_run(
    conn: AsyncConnection,
    run_id: int,
    kind: EventKind,
    *,
    at: datetime,
    actor: str | None,
    about: int | None = None,
    detail: str = "",
) -> int | None:
    """An event on the alert of failed run ``run_id`` (none: nothing alerted, nothing written). ``about``: the run
    the event names (a retry), else ``run_id``. Returns the alert's id."""
    alert_id = await alert_counting(conn, run_id)
    if alert_id is None and kind is EventKind.RETRIED:
        alert_id = await _alert_retried_as(conn, run_id)
        if alert_id is None:
            alert_id = await _alert_past_canceled(conn, run_id)
    if alert_id is not None:
        await add_event(conn, alert_id, kind, at=at, actor=actor, run_id=about or run_id, detail=detail)
    return alert_id


async def _alert_retried_as(conn: AsyncConnection, run_id: int) -> int | None:
    """The alert whose failure was retried as ``run_id``: a retry of a retry (the policy's, after a person's retry
    failed) goes on the story of the alert that began it."""
    query = (
        select(alert_events.c.alert_id)
        .where(alert_events.c.run_id == run_id, alert_events.c.kind == EventKind.RETRIED.value)
        .order_by(alert_events.c.id.desc())
        .limit(1)
    )
    found = (await conn.execute(query)).scalar()
    return int(found) if found is not None else None


#: how many retries canceled a Retry looks past (here, any canceled; ``Notifier.retried``, the resume's attempt: those
#: canceled before they started): the policy's attempts and people's retries of one failure
CANCELED_RETRIES = 20


async def _alert_past_canceled(conn: AsyncConnection, run_id: int) -> int | None:
    """The alert of the failure a Retry retried past its retries canceled: the new run retries the last canceled one
    (one retry per run: a Retry past those canceled before they started, or on the card of one canceled at the
    provider), which no alert counts, nor names when it was the policy's retry of a failure held for it (made before
    the alert was), so the Retry was told on none."""
    for _ in range(CANCELED_RETRIES):
        row = (
            await conn.execute(
                select(runs.c.retry_of, runs.c.state, runs.c.final, runs.c.extra).where(runs.c.id == run_id)
            )
        ).mappings().first()
        # canceled, or no longer followed (a person ended it, its connection gone): no outcome of its own either
        canceled = row is not None and row["final"] and (
            row["state"] == StoredState.CANCELED.value or bool((row["extra"] or {}).get(STOPPED_BY))
        )
        if row is None or not canceled or row["retry_of"] is None:
            return None
        run_id = int(row["retry_of"])
        alert_id = await alert_counting(conn, run_id) or await _alert_retried_as(conn, run_id)
        if alert_id is not None:
            return alert_id
    return None


async def note_pipeline(
    conn: AsyncConnection, pipeline: str, kind: EventKind, *, at: datetime, actor: str | None, detail: str = ""
) -> list[int]:
    """An event on each unresolved failure alert of ``pipeline`` (a mute applies to them all)."""
    query = select(alerts.c.id).where(
        alerts.c.kind == _FAILURE,
        alerts.c.pipeline == pipeline,
        alerts.c.state.in_(_UNRESOLVED),
        alerts.c.recovered_at.is_(None),
    )
    ids = [int(i) for i in (await conn.execute(query)).scalars()]
    for alert_id in ids:
        await add_event(conn, alert_id, kind, at=at, actor=actor, detail=detail)
    return ids


class AlertEvents:
    """Reading the timelines, and the links a message about an alert shows."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def of_alerts(self, alert_ids: list[int]) -> dict[int, list[AlertEvent]]:
        """Each alert's events, oldest first."""
        found: dict[int, list[AlertEvent]] = {i: [] for i in alert_ids}
        if not alert_ids:
            return found
        query = select(alert_events).where(alert_events.c.alert_id.in_(alert_ids)).order_by(alert_events.c.id)
        async with self.engine.connect() as conn:
            for row in (await conn.execute(query)).mappings():
                found[row["alert_id"]].append(event_of_row(row))
        return found

    async def alert_of_run(self, run_id: int) -> int | None:
        async with self.engine.connect() as conn:
            return await alert_counting(conn, run_id)

    async def involving(self, run_id: int) -> list[int]:
        """The alerts that count failed run ``run_id`` or whose timeline names it (a retry, a resolving run)."""
        async with self.engine.connect() as conn:
            named = select(alert_events.c.alert_id).where(alert_events.c.run_id == run_id).distinct()
            ids = {int(i) for i in (await conn.execute(named)).scalars()}
            counting = await alert_counting(conn, run_id)
        return sorted(ids | ({counting} if counting is not None else set()))

    async def permalinks(self, keys: list[str]) -> dict[str, str]:
        """The permalinks of the living messages ``keys`` that have one (fetched once posted)."""
        if not keys:
            return {}
        query = select(cards.c.key, cards.c.permalink).where(cards.c.key.in_(keys), cards.c.permalink.is_not(None))
        async with self.engine.connect() as conn:
            return {row.key: row.permalink for row in await conn.execute(query)}


def event_of_row(row: RowMapping) -> AlertEvent:
    return AlertEvent(
        id=row["id"],
        alert_id=row["alert_id"],
        at=row["at"],
        kind=EventKind(row["kind"]),
        actor=row["actor"],
        run_id=row["run_id"],
        detail=row["detail"] or "",
    )
