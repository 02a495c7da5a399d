"""Escalation (issue 14, item 7): an alert nobody acknowledged within its pipeline's ``escalate_after`` pings its
owners once more in its thread; after another ``escalate_after``, ``escalate_to``. Acknowledging, resolving or
muting stops it; a reopened alert starts over.

A periodic job on every replica; each ping is sent once however many replicas tick and whatever restarts between
them: the store moves the alert's count of pings with the reply and the timeline's line in one transaction
(``bot.store.escalations``). The catalog is read at each tick, so a changed ``escalate_after`` applies to the alerts
already open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from bot.catalog.catalog import Catalog
from bot.catalog.model import Pipeline
from bot.service.clients import ClientPool
from bot.service.events import Escalation, Reporter
from bot.store import keys
from bot.store.escalations import Unanswered
from bot.store.store import Store

__all__ = ["Escalator"]

Now = Callable[[], datetime]
StoryChanged = Callable[[Sequence[int]], Awaitable[None]]


async def _nothing(_alert_ids: Sequence[int]) -> None:
    return None


class Escalator:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        pool: ClientPool,
        reporter: Reporter,
        now: Now,
        *,
        story_changed: StoryChanged = _nothing,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.pool = pool
        self.reporter = reporter
        self.now = now
        self.story_changed = story_changed  # the alert's message shows the ping on its timeline
        self.sent = 0

    async def tick(self) -> int:
        """Send the pings due now. Returns how many this tick sent."""
        escalating = {p.name: p for p in self.catalog.pipelines.values() if p.escalate_after is not None}
        if not escalating:
            return 0
        now = self.now()
        waiting = await self.store.escalations.unanswered(escalating)
        if not waiting:
            return 0
        muted = await self.store.mutes.active(now=now)
        changed: list[int] = []
        for unanswered in waiting:
            pipeline = escalating[unanswered.alert.pipeline or ""]
            if pipeline.name in muted:
                continue  # muted after it opened: its timeline says so, and so does the mute's own row
            escalation = self._due(unanswered, pipeline, now)
            if escalation is not None and await self.reporter.escalate(escalation):
                changed.append(unanswered.alert.id)
        if changed:
            await self.story_changed(changed)
        self.sent += len(changed)
        return len(changed)

    def _due(self, unanswered: Unanswered, pipeline: Pipeline, now: datetime) -> Escalation | None:
        after = pipeline.escalate_after
        if after is None or now < unanswered.waiting_since + after:
            return None
        step = unanswered.escalations + 1
        whom = pipeline.owners if step == 1 else pipeline.escalate_to
        if step > 1 and not whom:
            return None  # no escalate_to: the owners' second ping was the last
        alert = unanswered.alert
        return Escalation(
            alert=alert,
            key=keys.escalation(alert.id, step, unanswered.waiting_since),
            step=step,
            whom=tuple(w for w in whom if w[:1] in ("U", "W", "S")),  # names are ids by now; "*" pings nobody
            open_for=now - unanswered.opened_at,
            display_name=self._display(pipeline.connection),
        )

    def _display(self, connection: str) -> str:
        try:
            return self.pool.client(connection).display_name
        except Exception:
            return connection
