"""Cron schedules of pipelines and workflows, run by APScheduler's cron trigger.

A schedule fires once per slot across restarts and replicas: each firing claims its slot (the scheduled
time) in the database, and only the claimer runs it. At start, a slot missed while the bot was down is
run once (``missed: run_once``) or recorded as skipped (``missed: skip``); a schedule seen for the first
time starts from the next slot.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.catalog.catalog import Catalog
from bot.catalog.model import Schedule
from bot.catalog.schedules import Scheduled, scheduled_items
from bot.store.store import Store

__all__ = ["ScheduleRunner", "Scheduled", "last_slot", "scheduled_items"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]
Start = Callable[[str, str, dict[str, str]], Awaitable[None]]  # kind, name, parameters


def last_slot(schedule: Schedule, now: datetime) -> datetime | None:
    """The latest scheduled time at or before ``now``; None if there was none in the last 400 days.

    Looks back over a widening window, so an hourly schedule costs a step or two, not a year of slots."""
    trigger = schedule.trigger()
    for window in (timedelta(hours=2), timedelta(days=2), timedelta(days=35), timedelta(days=400)):
        fire: datetime | None = trigger.get_next_fire_time(None, now - window)
        if fire is None or fire > now:
            continue
        found = fire
        while fire is not None and fire <= now:
            found = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        return found
    return None


class ScheduleRunner:
    def __init__(self, store: Store, catalog: Catalog, start: Start, *, owner: str, now: Now) -> None:
        self.store = store
        self.catalog = catalog
        self.start = start
        self.owner = owner
        self.now = now

    def install(self, scheduler: AsyncIOScheduler) -> None:
        for item in scheduled_items(self.catalog):
            scheduler.add_job(
                self.fire,
                item.schedule.trigger(),
                args=[item],
                id=item.key,
                replace_existing=True,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=300,
            )

    async def fire(self, item: Scheduled) -> bool:
        """The cron trigger fired: run this slot unless another process (or an earlier run) claimed it."""
        slot = last_slot(item.schedule, self.now() + timedelta(seconds=1))
        if slot is None:
            return False
        return await self._run_slot(item, slot)

    async def catch_up(self) -> None:
        """At start: run (or skip) each schedule's slot missed while no bot was running."""
        now = self.now()
        for item in scheduled_items(self.catalog):
            slot = last_slot(item.schedule, now)
            if slot is None:
                continue
            previous = await self.store.slots.last(item.key)
            if previous is None:  # a new schedule: it begins with the next slot
                await self.store.slots.claim(item.key, _slot_key(slot), self.owner, now=now)
                continue
            if previous >= _slot_key(slot):
                continue
            if item.schedule.missed == "skip":
                await self.store.slots.claim(item.key, _slot_key(slot), self.owner, now=now)
                log.info("schedule %s: slot %s was missed and is skipped, as declared", item.name, slot)
                continue
            log.info("schedule %s: running the missed slot %s once", item.name, slot)
            await self._run_slot(item, slot)

    async def _run_slot(self, item: Scheduled, slot: datetime) -> bool:
        if not await self.store.slots.claim(item.key, _slot_key(slot), self.owner, now=self.now()):
            return False
        try:
            await self.start(item.kind, item.name, dict(item.schedule.parameters))
        except Exception:
            log.exception("scheduled run of %s for %s failed to start", item.name, slot)
        return True


def _slot_key(when: datetime) -> str:
    """Slots compare as text in the database: UTC, fixed width."""
    from datetime import UTC

    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
