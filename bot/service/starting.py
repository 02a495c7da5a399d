"""The leases a process holds on the runs it is starting, while their triggers are pending.

A run is recorded ``starting`` before its trigger is sent. Recovery gives such a run up only when its owner
is gone, and "gone" means its lease expired: never that the run is old. A trigger can take long (a
connection's ``timeout_seconds`` well above a minute, a wait behind the connection's concurrency limit), so
the lease is not sized for the trigger: it is renewed every third of its length while the trigger is
pending. A process that dies stops renewing, and its starts are given up a lease later.

The renewals of all the runs a process is starting go in one statement: hundreds of triggers may wait behind
a connection's concurrency limit, and one write per pending trigger would crowd the database pool that the
starts themselves need.

A trigger's answer is the only place the provider's id of the new run comes from: ``record_answer`` keeps trying
to record it while the database is away (a restart, a failover), instead of dropping it and leaving a run that
started to be given up as "the bot stopped while starting" and never followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

from bot.catalog.model import RetryPolicy
from bot.errors import ProviderUnavailable
from bot.store.away import database_away
from bot.store.records import RunRecord
from bot.store.store import Store

__all__ = ["BUSY_WAITS", "BUSY_WAIT_MAX", "StartLeases", "busy_wait", "record_answer"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]

#: a start the provider was too busy to take (429, 503) waits its turn again at most this often, this long each time
BUSY_WAITS = 3
BUSY_WAIT_MAX = timedelta(minutes=10)


def busy_wait(exc: ProviderUnavailable, policy: RetryPolicy | None, attempt: int) -> timedelta | None:
    """How long a start refused as busy waits before it is sent again: the provider's ``Retry-After``, else the
    retry policy's backoff, else a minute, clamped to 1 s–10 min. None when it is not a busy refusal (429, 503)."""
    if exc.status_code not in (429, 503):
        return None
    if exc.retry_after is not None:
        wait = timedelta(seconds=exc.retry_after)
    else:
        wait = policy.delay(max(attempt - 1, 1)) if policy is not None else timedelta(minutes=1)
    return min(max(wait, timedelta(seconds=1)), BUSY_WAIT_MAX)


class StartLeases:
    def __init__(self, store: Store, *, owner: str, lease: timedelta, now: Now) -> None:
        self.store = store
        self.owner = owner
        self.lease = lease
        self.now = now
        self._held: set[int] = set()
        self._renewing: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def holding(self, run_id: int) -> AsyncIterator[None]:
        """Keep this process's lease on the starting run alive for as long as the block runs: the trigger and
        the recording of its answer. The run was recorded with the lease (``RunStore.create``,
        ``StartStore.claim_waiting``)."""
        self._held.add(run_id)
        if self._renewing is None:
            self._renewing = asyncio.create_task(self._renew())
        try:
            yield
        finally:
            self._held.discard(run_id)

    async def _renew(self) -> None:
        every = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(every)
            if not self._held:  # nothing pending: stop; the next start starts renewing again
                self._renewing = None
                return
            ids = sorted(self._held)
            began = time.monotonic()
            try:
                # a run not renewed was just answered, or was given up meanwhile (this process thought gone): either
                # way its answer is recorded, and resumes it if it was given up
                await self.store.starts.renew_leases(self.owner, ids, until=self.now() + self.lease)
            except Exception as exc:  # the database away for a moment: try again; answers are recorded either way
                log.warning("could not renew the leases of %d runs being started: %s", len(ids), exc)
                continue
            took = time.monotonic() - began
            if took > every:  # waiting for a database connection, most likely: others may think this process gone
                log.warning("renewing the leases of %d runs being started took %.1f s (lease %.0f s)",
                            len(ids), took, self.lease.total_seconds())



async def record_answer(
    store: Store,
    run_id: int,
    provider_run_id: str,
    *,
    now: Now,
    first_poll: timedelta,
    patience: timedelta = timedelta(minutes=10),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> tuple[RunRecord, bool]:
    """``StartStore.answered``, tried again while the database is away, for up to ``patience``: the run exists at
    the provider and this answer is all that ties it to its card. Recording it again is harmless (a run given up
    meanwhile is reopened, "Tracking resumed"). Only the database away is waited out (``database_away``): any other
    error is raised at once. Past ``patience``, or stopped meanwhile, the provider's id is logged with the error."""
    gave_up_at = time.monotonic() + patience.total_seconds()
    pause = 0.25
    try:
        while True:
            try:
                return await store.starts.answered(
                    run_id, provider_run_id, now=now(), next_poll_at=now() + first_poll
                )
            except Exception as exc:
                if not database_away(exc):  # a bug, not the database away: waiting would only hold the reply up
                    # (its traceback is logged where it is caught; this line ties it to the provider's run)
                    log.error("run %s: could not record its trigger's answer (provider run %s): %s",
                              run_id, provider_run_id, type(exc).__name__, extra={"run_id": run_id})
                    raise
                if time.monotonic() + pause > gave_up_at:
                    log.error("run %s: could not record its trigger's answer (provider run %s): %s",
                              run_id, provider_run_id, type(exc).__name__, extra={"run_id": run_id})
                    raise
                log.warning("run %s: could not record its trigger's answer yet (provider run %s; %s); "
                            "trying again in %.1f s", run_id, provider_run_id, type(exc).__name__, pause,
                            extra={"run_id": run_id})
            await sleep(pause)
            pause = min(pause * 2, 5.0)
    except asyncio.CancelledError:
        # the process stops: recovery will give the start up ("unknown whether it started"); this line is what
        # lets an operator find the run that did start at the provider
        log.warning("run %s: stopped before its trigger's answer was recorded (provider run %s); "
                    "recovery gives it up, the run is at the provider", run_id, provider_run_id,
                    extra={"run_id": run_id})
        raise
