"""Slack requests already taken, shared by every replica through the database.

A request is claimed by inserting its key: the insert that succeeds is the claim, one statement, so the check
costs one round trip before the ack. A claim is ``held`` while its attempt answers, then ``answered``. A held
claim older than ``hold`` was never answered (its attempt failed, or its process died): a repeat may take it
over, so Slack's retry of a request nobody answered is still processed.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.tables import slack_requests

__all__ = ["RequestLedger"]

HELD, ANSWERED = "held", "answered"
#: how long a claim's statement waits for SQLite's write lock, on its own connection setting: the claim must be
#: answered within the caller's timeout (``replays.CLAIM_TIMEOUT``, 2 s), and a cancelled statement cannot be
#: interrupted (the rollback waits for it), so SQLite must give up by itself first. PostgreSQL's statement is
#: cancelled with the task.
SQLITE_BUSY_MS = 1500
SQLITE_DEFAULT_BUSY_MS = 30000  # bot.store.engine's, restored before the connection goes back to the pool


class RequestLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
        self._sqlite = engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def _quick(self) -> AsyncIterator[AsyncConnection]:
        """A transaction whose statements give up on SQLite's write lock after ``SQLITE_BUSY_MS``."""
        async with self.engine.connect() as conn:
            if not self._sqlite:
                async with conn.begin():
                    yield conn
                return
            await conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
            await conn.commit()
            try:
                async with conn.begin():
                    yield conn
            finally:
                try:
                    await conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_DEFAULT_BUSY_MS}")
                    await conn.commit()
                except BaseException:  # not restored: this connection is not reused
                    await conn.invalidate()
                    raise

    async def claim(self, key: str, *, now: datetime, hold: timedelta, keep: timedelta) -> str | None:
        """The claim's token when this caller takes ``key``; None when it is answered or held by another attempt.

        ``keep``: how long the key is remembered. ``hold``: how long an unanswered claim blocks repeats."""
        token = secrets.token_hex(16)
        values = {"key": key, "state": HELD, "token": token, "claimed_at": now, "expires_at": now + keep}
        async with self._quick() as conn:
            inserted = await conn.execute(
                self._insert(slack_requests).values(**values).on_conflict_do_nothing(index_elements=["key"])
            )
            if inserted.rowcount:
                return token
            taken_over = await conn.execute(
                update(slack_requests)
                .where(
                    slack_requests.c.key == key,
                    slack_requests.c.state == HELD,
                    slack_requests.c.claimed_at < now - hold,
                )
                .values(token=token, claimed_at=now, expires_at=now + keep)
            )
            return token if taken_over.rowcount else None

    async def renew(self, key: str, token: str, *, now: datetime) -> bool:
        """The attempt holding ``key`` is still at work: its claim is fresh as of ``now``. False if it is not its
        claim any more (answered, given back, or taken over)."""
        async with self._quick() as conn:
            result = await conn.execute(
                update(slack_requests)
                .where(slack_requests.c.key == key, slack_requests.c.token == token, slack_requests.c.state == HELD)
                .values(claimed_at=now)
            )
            return bool(result.rowcount)

    async def answered(self, key: str, token: str) -> None:
        """The attempt holding ``key`` answered: repeats are refused from now on."""
        async with self._quick() as conn:
            await conn.execute(
                update(slack_requests)
                .where(slack_requests.c.key == key, slack_requests.c.token == token)
                .values(state=ANSWERED)
            )

    async def release(self, key: str, token: str) -> None:
        """The attempt holding ``key`` failed before answering: the next delivery of it is processed."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(slack_requests).where(
                    slack_requests.c.key == key, slack_requests.c.token == token, slack_requests.c.state == HELD
                )
            )

    async def prune(self, *, now: datetime) -> int:
        """Forget keys past their time; returns how many."""
        async with self.engine.begin() as conn:
            result = await conn.execute(delete(slack_requests).where(slack_requests.c.expires_at < now))
            return result.rowcount or 0
