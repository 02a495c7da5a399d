"""Slack requests already taken, shared by every replica through the database.

A request is claimed by inserting its key: the insert that succeeds is the claim. Claims (and answers) arriving
together share one transaction, so under load the check costs a fraction of a round trip before the ack. A claim
is ``held`` while its attempt answers, then ``answered``. A held claim older than ``hold`` was never answered (its
attempt failed, or its process died): a repeat may take it over, so Slack's retry of a request nobody answered is
still processed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.tables import slack_requests
from bot.store.upsert import upsert_insert

__all__ = ["Ledger", "LocalRequestLedger", "RequestLedger"]

HELD, ANSWERED = "held", "answered"
T = TypeVar("T")
log = logging.getLogger(__name__)
R = TypeVar("R")



class Ledger(Protocol):
    """What the Slack side needs of a ledger (``RequestLedger`` on PostgreSQL, ``LocalRequestLedger`` on SQLite)."""

    async def claim(self, key: str, *, now: datetime, hold: timedelta, keep: timedelta) -> str | None: ...
    async def renew(self, key: str, token: str, *, now: datetime) -> bool: ...
    async def answered(self, key: str, token: str) -> None: ...
    async def release(self, key: str, token: str) -> None: ...
    async def prune(self, *, now: datetime) -> int: ...
    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class _Claim:
    key: str
    now: datetime
    hold: timedelta
    keep: timedelta


class _Batches(Generic[T, R]):
    """Group commit: items submitted while a batch is being written wait and go together in the next one, so
    under load one transaction serves many Slack requests (each Slack request costs one claim and one answer:
    a transaction each made the database the bottleneck at a few hundred requests a second), and with one
    request at a time nothing waits. The writer runs shielded from its callers: a caller that gives up does
    not cancel a statement other callers wait on; ``on_abandoned`` learns what its item got."""

    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        self._write = write
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T, *, on_abandoned: Callable[[T, R], None] | None = None) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_all())
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            def abandoned(f: asyncio.Future[R]) -> None:
                # read the outcome, so a failure nobody waits for any more is not reported as never retrieved
                if not f.cancelled() and f.exception() is None and on_abandoned is not None:
                    on_abandoned(item, f.result())

            future.add_done_callback(abandoned)
            raise

    async def _write_all(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as exc:  # every caller of the batch learns it, as it would alone
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class RequestLedger:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = upsert_insert(engine)
        self._claims: _Batches[_Claim, str | None] = _Batches(self._claim_batch)
        self._answers: _Batches[tuple[str, str], None] = _Batches(self._answer_batch)
        self._background: set[asyncio.Task[None]] = set()

    @asynccontextmanager
    async def _quick(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    async def close(self) -> None:
        return None

    async def claim(self, key: str, *, now: datetime, hold: timedelta, keep: timedelta) -> str | None:
        """The claim's token when this caller takes ``key``; None when it is answered or held by another attempt.

        ``keep``: how long the key is remembered. ``hold``: how long an unanswered claim blocks repeats.
        Claims arriving together are written in one transaction (see ``_Batches``); a caller that gives up (its
        timeout) before the batch commits has its claim given back, if the batch took it."""
        return await self._claims.submit(_Claim(key, now, hold, keep), on_abandoned=self._give_back)

    async def _claim_batch(self, batch: list[_Claim]) -> list[str | None]:
        tokens: list[str | None] = [None] * len(batch)
        first: dict[str, int] = {}  # the first claim of each key in the batch; the others are repeats
        for i, c in enumerate(batch):
            first.setdefault(c.key, i)
        candidates = {i: secrets.token_hex(16) for i in first.values()}
        rows = [
            {"key": batch[i].key, "state": HELD, "token": token, "claimed_at": batch[i].now,
             "expires_at": batch[i].now + batch[i].keep}
            for i, token in candidates.items()
        ]
        async with self._quick() as conn:
            inserted = await conn.execute(
                self._insert(slack_requests).values(rows).on_conflict_do_nothing(index_elements=["key"])
                .returning(slack_requests.c.key)
            )
            taken = {row.key for row in inserted}
            for i, token in candidates.items():
                c = batch[i]
                if c.key in taken:
                    tokens[i] = token
                    continue
                taken_over = await conn.execute(  # a key already known: rare (a repeat), one statement each
                    update(slack_requests)
                    .where(
                        slack_requests.c.key == c.key,
                        slack_requests.c.state == HELD,
                        slack_requests.c.claimed_at < c.now - c.hold,
                    )
                    .values(token=token, claimed_at=c.now, expires_at=c.now + c.keep)
                )
                if taken_over.rowcount:
                    tokens[i] = token
        return tokens

    def _give_back(self, claim: _Claim, token: str | None) -> None:
        if token is not None:
            task = asyncio.ensure_future(self.release(claim.key, token))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

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
        """The attempt holding ``key`` answered: repeats are refused from now on. Batched like claims."""
        await self._answers.submit((key, token))

    async def _answer_batch(self, batch: list[tuple[str, str]]) -> list[None]:
        async with self._quick() as conn:
            await conn.execute(
                update(slack_requests)
                .where(or_(*(and_(slack_requests.c.key == k, slack_requests.c.token == t) for k, t in batch)))
                .values(state=ANSWERED)
            )
        return [None] * len(batch)

    async def release(self, key: str, token: str) -> None:
        """The attempt holding ``key`` failed before answering: the next delivery of it is processed."""
        async with self._quick() as conn:
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


@dataclass(slots=True)
class _Row:
    state: str
    token: str
    claimed_at: datetime
    expires_at: datetime


class LocalRequestLedger:
    """The ledger on SQLite, where one process holds the database (``bot.store.lock``): that process's memory is
    the ledger of record, with ``RequestLedger``'s rules, and the table keeps a copy for the next process, written
    in the background at most ``FLUSH_EVERY`` apart. A claim costs no database round trip before the ack (one per
    request made SQLite's single writer the bottleneck, and its lock waits made every ack wait). Read back once, at
    the first request: a claim held by a process that died is taken over after ``hold`` as on PostgreSQL. What
    a crash can lose: the last ``FLUSH_EVERY`` of answers, i.e. a replay of a request answered in the moment
    before the crash is processed by the next process."""

    FLUSH_EVERY = 0.2

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._rows: dict[str, _Row] | None = None
        self._loading = asyncio.Lock()
        self._dirty: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None

    async def _loaded(self) -> dict[str, _Row]:
        if self._rows is None:
            async with self._loading:
                if self._rows is None:
                    async with self.engine.connect() as conn:
                        found = (await conn.execute(select(slack_requests))).all()
                    self._rows = {r.key: _Row(r.state, r.token, r.claimed_at, r.expires_at) for r in found}
        return self._rows

    def _changed(self, key: str) -> None:
        self._dirty.add(key)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        while self._dirty:
            await asyncio.sleep(self.FLUSH_EVERY)
            try:
                await self.flush()
            except Exception as exc:  # kept dirty: written at the next try
                log.warning("could not copy the Slack requests ledger to the database yet: %s", type(exc).__name__)

    async def flush(self) -> None:
        """Write what changed since the last flush, in one transaction."""
        rows = self._rows
        if rows is None or not self._dirty:
            return
        keys, self._dirty = self._dirty, set()
        try:
            async with self.engine.begin() as conn:
                gone = [k for k in keys if k not in rows]
                if gone:
                    await conn.execute(delete(slack_requests).where(slack_requests.c.key.in_(gone)))
                values = [
                    {"key": k, "state": r.state, "token": r.token, "claimed_at": r.claimed_at,
                     "expires_at": r.expires_at}
                    for k in keys if (r := rows.get(k)) is not None
                ]
                if values:
                    stmt = upsert_insert(conn)(slack_requests).values(values)
                    await conn.execute(stmt.on_conflict_do_update(
                        index_elements=["key"],
                        set_={c: stmt.excluded[c] for c in ("state", "token", "claimed_at", "expires_at")},
                    ))
        except BaseException:
            self._dirty |= keys
            raise

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
        try:
            await self.flush()
        except Exception as exc:
            log.warning("could not copy the Slack requests ledger to the database at exit: %s", type(exc).__name__)

    async def claim(self, key: str, *, now: datetime, hold: timedelta, keep: timedelta) -> str | None:
        rows = await self._loaded()
        row = rows.get(key)
        if row is not None and not (row.state == HELD and row.claimed_at < now - hold):
            return None
        token = secrets.token_hex(16)
        rows[key] = _Row(HELD, token, now, now + keep)
        self._changed(key)
        return token

    async def renew(self, key: str, token: str, *, now: datetime) -> bool:
        row = (await self._loaded()).get(key)
        if row is None or row.token != token or row.state != HELD:
            return False
        row.claimed_at = now
        self._changed(key)
        return True

    async def answered(self, key: str, token: str) -> None:
        row = (await self._loaded()).get(key)
        if row is not None and row.token == token:
            row.state = ANSWERED
            self._changed(key)

    async def release(self, key: str, token: str) -> None:
        rows = await self._loaded()
        row = rows.get(key)
        if row is not None and row.token == token and row.state == HELD:
            del rows[key]
            self._changed(key)

    async def prune(self, *, now: datetime) -> int:
        rows = await self._loaded()
        expired = [k for k, r in rows.items() if r.expires_at < now]
        for k in expired:
            del rows[k]
        async with self.engine.begin() as conn:
            await conn.execute(delete(slack_requests).where(slack_requests.c.expires_at < now))
        self._dirty -= set(expired)
        return len(expired)
