"""What a process that died left half done, finished by whichever process comes next.

A run recorded ``starting`` whose starter is gone (its lease expired) is given up as unknown; a change recorded
but never shown (the process died between the two) is shown now. Both run at start and then periodically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.ops.logs import run_context
from bot.service.events import Interrupted
from bot.service.notify import Notifier
from bot.service.outcomes import Outcomes
from bot.store.records import RunRecord, StoredState, Transition
from bot.store.store import Store

__all__ = ["Recovery"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]


class Recovery:
    def __init__(self, store: Store, notifier: Notifier, outcomes: Outcomes, now: Now) -> None:
        self.store = store
        self.notifier = notifier
        self.outcomes = outcomes
        self.now = now

    async def recover_unnotified(self, older_than: timedelta) -> int:
        """Runs whose change was recorded but not shown (the process died in between): show it now."""
        found = await self.store.runs.unnotified(older_than=self.now() - older_than)
        for run in found:
            with run_context(run.id, pipeline=run.pipeline, provider=run.provider, connection=run.connection):
                await self.outcomes.on_change(Transition(run, run.notified_state or StoredState.QUEUED, run.state))
        return len(found)

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
            with run_context(done.id, pipeline=done.pipeline, provider=done.provider, connection=done.connection):
                log.warning("run %s given up: its starter is gone", done.id, extra={"run_id": done.id})
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
            resolved.append(done)
        return resolved
