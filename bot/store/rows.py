"""What the table families share: rows turned into records, and the claim of rows under a lease.

A claim sets a lease (an owner and an expiry) on the rows it picks. On PostgreSQL the rows are picked with
``FOR UPDATE SKIP LOCKED`` so several replicas never take the same row; a dead replica's leases expire and
another one takes over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select

from bot.models import RunState, TaskStatus
from bot.store.records import CardRecord, RunOrigin, RunRecord, StoredState
from bot.store.tables import cards, run_events, runs

__all__ = [
    "add_event",
    "card_of_row",
    "cards_by_ids",
    "claim",
    "claim_returning",
    "fetch_run",
    "is_postgres",
    "run_of_row",
    "runs_by_ids",
    "select_runs",
    "task_json",
]

R = TypeVar("R")


def is_postgres(engine: AsyncEngine | AsyncConnection) -> bool:
    return engine.dialect.name == "postgresql"


async def claim(
    engine: AsyncEngine,
    table: Table,
    query: Select[int],
    owner: str,
    until: datetime,
    fetch: Callable[[AsyncConnection, Sequence[int]], Awaitable[list[R]]],
) -> list[R]:
    """Lease the rows whose ids ``query`` selects to ``owner`` until ``until``; ``fetch`` reads them back."""
    if is_postgres(engine):
        query = query.with_for_update(skip_locked=True)
    async with engine.begin() as conn:
        ids = list((await conn.execute(query)).scalars())
        if not ids:
            return []
        await conn.execute(update(table).where(table.c.id.in_(ids)).values(lease_owner=owner, lease_expires_at=until))
        return await fetch(conn, ids)


async def claim_returning(
    engine: AsyncEngine,
    table: Table,
    query: Select[int],
    owner: str,
    until: datetime,
    convert: Callable[[RowMapping], R],
    fetch: Callable[[AsyncConnection, Sequence[int]], Awaitable[list[R]]],
) -> list[R]:
    """``claim`` in one statement, ``UPDATE … RETURNING`` (a tick's claim at scale: one round trip, not three), in
    the order of the rows' ids as ``claim`` returns them. On PostgreSQL the rows are picked in a ``MATERIALIZED`` CTE
    with ``FOR UPDATE SKIP LOCKED``: evaluated once, so the rows updated are exactly the rows locked and picked (a
    ``WHERE id IN (subquery)`` may be planned as a join that runs its subquery again, each run skipping other
    locks), and two replicas never take the same row. Where the database has no ``UPDATE … RETURNING`` (SQLite
    before 3.35) it is ``claim``, with ``fetch``."""
    if not engine.dialect.update_returning:
        return await claim(engine, table, query, owner, until, fetch)
    if is_postgres(engine):
        picked = query.with_for_update(skip_locked=True).cte("picked")
        if (engine.dialect.server_version_info or (12,)) >= (12,):  # before 12 every CTE is materialized (no keyword)
            picked = picked.prefix_with("MATERIALIZED")
        statement = update(table).where(table.c.id == picked.c.id)
    else:  # one writer at a time: the subquery and the update see the same rows
        statement = update(table).where(table.c.id.in_(query.scalar_subquery()))
    statement = statement.values(lease_owner=owner, lease_expires_at=until).returning(*table.c)
    async with engine.begin() as conn:
        rows = (await conn.execute(statement)).mappings().all()
    return [convert(r) for r in sorted(rows, key=lambda r: r["id"])]


# -- runs -----------------------------------------------------------------------------------


async def fetch_run(conn: AsyncConnection, run_id: int) -> RunRecord:
    row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().one()
    return run_of_row(row)


async def select_runs(engine: AsyncEngine, query: Select[*tuple[object, ...]]) -> list[RunRecord]:
    async with engine.connect() as conn:
        return [run_of_row(r) for r in (await conn.execute(query)).mappings()]


async def runs_by_ids(conn: AsyncConnection, ids: Sequence[int]) -> list[RunRecord]:
    rows = (await conn.execute(select(runs).where(runs.c.id.in_(ids)).order_by(runs.c.id))).mappings()
    return [run_of_row(r) for r in rows]


async def add_event(conn: AsyncConnection, run_id: int, at: datetime, state: str, raw: str, message: str) -> None:
    """A line of the run's history (``run_events``), inside the caller's transaction."""
    await conn.execute(
        insert(run_events).values(run_id=run_id, at=at, state=state, raw_status=raw, message=message[:4000])
    )


def task_json(task: TaskStatus) -> dict[str, str]:
    return {"name": task.name, "state": task.state.value, "raw_status": task.raw_status, "message": task.message}


def run_of_row(row: RowMapping) -> RunRecord:
    notified = row["notified_state"]
    return RunRecord(
        id=row["id"],
        pipeline=row["pipeline"],
        provider=row["provider"],
        connection=row["connection"],
        job=row["job"] or {},
        parameters=row["parameters"] or {},
        provider_run_id=row["provider_run_id"],
        state=StoredState(row["state"]),
        raw_status=row["raw_status"],
        message=row["message"],
        warning=row["warning"],
        tasks=tuple(
            TaskStatus(name=t["name"], state=RunState(t["state"]), raw_status=t["raw_status"], message=t["message"])
            for t in row["tasks"] or []
        ),
        extra=row["extra"] or {},
        final=bool(row["final"]),
        origin=RunOrigin(row["origin"]),
        started_by=row["started_by"],
        channel=row["channel"],
        retry_of=row["retry_of"],
        attempt=row["attempt"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        next_poll_at=row["next_poll_at"],
        polls=row["polls"],
        unknown_since=row["unknown_since"],
        last_error=row["last_error"],
        acknowledged_by=row["acknowledged_by"],
        acknowledged_at=row["acknowledged_at"],
        cancel_requested_by=row["cancel_requested_by"],
        cancel_pending_since=row["cancel_pending_since"],
        cancel_asks=row["cancel_asks"] or 0,
        cancel_unconfirmed=bool(row["cancel_unconfirmed"]),
        notified_state=None if notified is None else StoredState(notified),
        workflow_run_id=row["workflow_run_id"],
        step=row["step"],
    )


# -- cards ----------------------------------------------------------------------------------


async def cards_by_ids(conn: AsyncConnection, ids: Sequence[int]) -> list[CardRecord]:
    rows = (await conn.execute(select(cards).where(cards.c.id.in_(ids)).order_by(cards.c.id))).mappings()
    return [card_of_row(r) for r in rows]


def card_of_row(row: RowMapping) -> CardRecord:
    return CardRecord(
        id=row["id"],
        key=row["key"],
        run_id=row["run_id"],
        channel=row["channel"],
        ts=row["ts"],
        text=row["text"],
        blocks=row["blocks"],
        version=row["version"],
        sent_version=row["sent_version"],
        attempting_since=row["attempting_since"],
        attempts=row["attempts"],
    )
