"""Quiet polls written together: the polls whose answer changed nothing a person sees (only ``polls``,
``next_poll_at``, ``updated_at`` and the lease move) written in one transaction, one ``executemany``, instead of a
transaction each. At scale nearly every poll is one of these.

Each row is written on the condition ``RunStore.record_status`` sets (``polls``, ``final`` and ``state`` still as
the poll read them), so a run another writer changed meanwhile is not overwritten. An ``executemany`` cannot say
which rows it matched, so:

- where the driver sums the rows of an ``executemany`` (SQLite), a sum short of the batch rolls the whole batch
  back and hands every run back to its own write (rare: it takes another writer on the same run at that moment);
- where it does not (asyncpg), the batch's rows are first locked (``SELECT … FOR UPDATE``): those still as read
  are written, and can no longer change before the commit; the others are handed back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, case, literal, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from bot.store.tables import runs

__all__ = ["QuietPoll", "sooner", "write_quiet"]


@dataclass(frozen=True)
class QuietPoll:
    """A poll that changed nothing a person sees: the run as its poll read it, and what moves."""

    run_id: int
    polls: int  # as read; written as polls + 1
    state: str  # as read
    now: datetime
    next_poll_at: datetime | None
    read_next: datetime | None  # the run's next poll as read: moved since, a poll was asked for (``sooner``)


class _Instant(FunctionElement[datetime]):
    """A time compared as the instant it is: on SQLite, where times are text, ``julianday`` of it (a time written
    otherwise than by SQLAlchemy, ``datetime('now')`` by hand, is another text for the same instant)."""

    type = runs.c.next_poll_at.type
    inherit_cache = True


@compiles(_Instant)
def _instant(element: _Instant, compiler: SQLCompiler, **kw: object) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_Instant, "sqlite")
def _sqlite_instant(element: _Instant, compiler: SQLCompiler, **kw: object) -> str:
    return f"julianday({compiler.process(element.clauses, **kw)})"


def sooner(read_next: object, own_next: object) -> ColumnElement[datetime]:
    """A poll's next time as written: its own, unless a poll was asked for while it was under way (``poll_now``:
    the cancel's answer, the Refresh button), which moved the run's next poll from what the poll read, and sooner.
    Overwritten, a failure held while a cancel was on its way came out up to one interval (minutes) late.
    Compared as instants: a time the poll read, stored as another text for it, was taken for one asked for and
    kept, in the past, at every poll: the run was polled at every tick for good."""
    current = _Instant(runs.c.next_poll_at)
    read = _Instant(read_next if isinstance(read_next, ColumnElement) else literal(read_next, runs.c.next_poll_at.type))
    own = _Instant(own_next if isinstance(own_next, ColumnElement) else literal(own_next, runs.c.next_poll_at.type))
    asked = and_(current.is_distinct_from(read), current < own)
    return case((asked, runs.c.next_poll_at), else_=own_next)


class _Moved(Exception):
    """Some run of the batch changed meanwhile: roll the batch back."""


_WRITE = (
    update(runs)
    .where(
        runs.c.id == bindparam("w_id"),
        runs.c.polls == bindparam("w_polls"),
        runs.c.final.is_(False),
        runs.c.state == bindparam("w_state"),
    )
    .values(
        polls=bindparam("w_new"),
        next_poll_at=sooner(bindparam("w_read", type_=runs.c.next_poll_at.type),
                            bindparam("w_next", type_=runs.c.next_poll_at.type)),
        updated_at=bindparam("w_now"),
        lease_owner=None,
        lease_expires_at=None,
    )
)


def _params(poll: QuietPoll) -> dict[str, object]:
    return {"w_id": poll.run_id, "w_polls": poll.polls, "w_new": poll.polls + 1, "w_state": poll.state,
            "w_next": poll.next_poll_at, "w_read": poll.read_next, "w_now": poll.now}


async def write_quiet(engine: AsyncEngine, polls: Sequence[QuietPoll]) -> set[int]:
    """Write ``polls`` in one transaction. Returns the ids of the runs not written (changed meanwhile): their
    polls are to be recorded one by one (``RunStore.record_status``), which reads them again."""
    if not polls:
        return set()
    if engine.dialect.supports_sane_multi_rowcount:
        try:
            async with engine.begin() as conn:
                result = await conn.execute(_WRITE, [_params(p) for p in polls])
                if result.rowcount != len(polls):
                    raise _Moved
        except _Moved:
            return {p.run_id for p in polls}
        return set()
    async with engine.begin() as conn:
        rows = await conn.execute(
            select(runs.c.id, runs.c.polls, runs.c.final, runs.c.state)
            .where(runs.c.id.in_([p.run_id for p in polls]))
            .with_for_update()
        )
        now = {r.id: (r.polls, r.final, r.state) for r in rows}
        still = [p for p in polls if now.get(p.run_id) == (p.polls, False, p.state)]
        if still:
            await conn.execute(_WRITE, [_params(p) for p in still])
    return {p.run_id for p in polls} - {p.run_id for p in still}
