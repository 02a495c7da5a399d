"""What a process that died left half done, finished by whichever process comes next.

A run recorded ``starting`` whose starter is gone (its lease expired) is given up as unknown; a change recorded
but never shown (the process died between the two) is shown now. Both run at start and then periodically. Each run
is handled on its own: one whose handling fails (a bug) is logged and left aside for ``RETRY_FAILED_AFTER``, so it
neither keeps the bot from starting nor the other runs from being shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from bot.ops.logs import run_context
from bot.ops.text import human_duration
from bot.service.events import Interrupted
from bot.service.notify import Notifier
from bot.service.outcomes import Outcomes
from bot.store.away import database_away
from bot.store.records import RunRecord, StoredState, Transition
from bot.store.store import Store

__all__ = ["RETRY_FAILED_AFTER", "Recovery"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]

#: how long a run whose change could not be shown (its handling raised) is left aside before it is tried again
RETRY_FAILED_AFTER = timedelta(minutes=15)


class Recovery:
    def __init__(self, store: Store, notifier: Notifier, outcomes: Outcomes, now: Now) -> None:
        self.store = store
        self.notifier = notifier
        self.outcomes = outcomes
        self.now = now
        self._failed: dict[int, datetime] = {}  # run id → when showing its change last failed, in this process

    def _aside(self, now: datetime) -> tuple[int, ...]:
        """The runs left aside (their handling failed lately): not asked for, so the others are shown."""
        self._failed = {run_id: at for run_id, at in self._failed.items() if now - at < RETRY_FAILED_AFTER}
        return tuple(self._failed)

    def _failed_on(self, run: RunRecord, exc: Exception, now: datetime) -> None:
        """One ERROR with the traceback, then the run is left aside for a while. The database's errors (away,
        read-only) are not the run's: they end the round (raised), as they would for every run after it, and at
        start-up say what is wrong with the database in one line (``bot.runtime.prepare``)."""
        if isinstance(exc, SQLAlchemyError) or database_away(exc):
            raise exc
        self._failed[run.id] = now
        log.error("showing run %s's change failed; it is tried again in %s", run.id,
                  human_duration(RETRY_FAILED_AFTER), exc_info=exc, extra={"run_id": run.id})

    async def recover_unnotified(self, older_than: timedelta) -> int:
        """Runs whose change was recorded but not shown (the process died in between): show it now."""
        now = self.now()
        found = await self.store.runs.unnotified(older_than=now - older_than, skip=self._aside(now))
        shown = 0
        for run in found:
            with run_context(run.id, pipeline=run.pipeline, provider=run.provider, connection=run.connection):
                try:
                    await self.outcomes.on_change(Transition(run, run.notified_state or StoredState.QUEUED, run.state))
                except Exception as exc:
                    self._failed_on(run, exc, now)
                    continue
            shown += 1
        return shown

    async def recover_starting(self, older_than: timedelta) -> list[RunRecord]:
        """Runs left "starting" by a process that is gone (its lease on them expired): whether the trigger
        reached the provider is unknown. A run whose owner is alive is never given up, however long its trigger
        takes; ``older_than`` only applies to a start that has no lease at all (released by its owner at
        shutdown, or recorded by a version without start leases)."""
        resolved = []
        now = self.now()
        unleased_before = now - older_than
        for run in await self.store.starts.orphaned(now=now, unleased_before=unleased_before):
            message = (
                "The bot stopped while starting this run: it is unknown whether it started. "
                "Check the provider's console before running it again."
            )
            done = await self.store.starts.give_up(run.id, message, now=now, unleased_before=unleased_before)
            if done is None:  # its owner renewed the lease, or the trigger answered, since it was found
                continue
            resolved.append(done)
            with run_context(done.id, pipeline=done.pipeline, provider=done.provider, connection=done.connection):
                log.warning("run %s given up: its starter is gone", done.id, extra={"run_id": done.id})
                try:
                    await self._given_up(done, message)
                except Exception as exc:  # left unnotified: shown by ``recover_unnotified`` once it works
                    self._failed_on(done, exc, now)
        return resolved

    async def _given_up(self, done: RunRecord, message: str) -> None:
        await self.notifier.refresh_card(done)
        await self.notifier.thread(done, "interrupted", Interrupted(message))
        await self.outcomes.no_attempt_follows(done)  # a retry that never started: its failure is told
        if done.workflow_run_id is not None:  # a step's run: its workflow moves on (or stops, announced)
            await self.outcomes.workflows.step_ended(done)
        # a Workflow Builder step waiting for it fails saying so (else its workflow waits for ever), and the
        # subscribers and the starter hear of its end, as of any end (``Outcomes``)
        if self.outcomes.steps is not None:
            await self.outcomes.steps.run_ended(done)
        if self.outcomes.subscribers is not None:
            await self.outcomes.subscribers.ended(done, told=set())
        await self.store.runs.mark_notified(done.id, done.state)
