"""The lease a process holds on a run while its trigger is pending.

A run is recorded ``starting`` before its trigger is sent. Recovery gives such a run up only when its owner
is gone, and "gone" means its lease expired: never that the run is old. A trigger can take long (a
connection's ``timeout_seconds`` well above a minute, a wait behind the connection's concurrency limit), so
the lease is not sized for the trigger: it is renewed every third of its length while the trigger is
pending. A process that dies stops renewing, and its starts are given up a lease later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from bot.slack.text import escape
from bot.store.store import Store

__all__ = ["holding_start", "resumed_note"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]


@contextlib.asynccontextmanager
async def holding_start(store: Store, run_id: int, *, owner: str, lease: timedelta, now: Now) -> AsyncIterator[None]:
    """Keep ``owner``'s lease on the starting run alive for as long as the block runs."""
    done = asyncio.Event()
    renewing = asyncio.create_task(_renew(store, run_id, owner, lease, now, done))
    try:
        yield
    finally:
        # stopped by an event, not cancelled: a renewal in the middle of its database call finishes cleanly
        done.set()
        await renewing


async def _renew(store: Store, run_id: int, owner: str, lease: timedelta, now: Now, done: asyncio.Event) -> None:
    every = lease.total_seconds() / 3
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), every)
        if done.is_set():
            return
        try:
            held = await store.renew_start_lease(run_id, owner, until=now() + lease)
        except Exception as exc:  # the database away for a moment: try again; the answer is recorded either way
            log.warning("could not renew the lease of run %s being started: %s", run_id, exc, extra={"run_id": run_id})
            continue
        if not held:  # given up meanwhile (we were thought gone): the trigger's answer resumes its tracking
            log.warning("run %s was given up while its trigger was pending", run_id, extra={"run_id": run_id})
            return


def resumed_note(provider_run_id: str) -> str:
    """The thread note of a run given up while its trigger was pending, whose trigger then answered."""
    return (
        f"The provider answered after all: the run started as `{escape(provider_run_id)}`. "
        "Tracking resumed: this card follows it to its end."
    )
