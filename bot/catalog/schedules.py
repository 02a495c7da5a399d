"""What the catalog schedules: its pipelines and workflows with a ``schedule``, and when each fires next.

Pure: read by the schedule runner (``bot.tracking.schedules``) and by ``/pipeline schedules``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.catalog.catalog import Catalog
from bot.catalog.model import Schedule

__all__ = ["Scheduled", "scheduled_items"]


@dataclass(frozen=True, slots=True)
class Scheduled:
    kind: str  # pipeline | workflow
    name: str
    schedule: Schedule

    @property
    def key(self) -> str:
        return f"schedule:{self.kind}:{self.name}"

    def next_fire(self, now: datetime) -> datetime | None:
        fire: datetime | None = self.schedule.trigger().get_next_fire_time(None, now)
        return fire


def scheduled_items(catalog: Catalog) -> list[Scheduled]:
    items = [Scheduled("pipeline", p.name, p.schedule) for p in catalog.pipelines.values() if p.schedule]
    items += [Scheduled("workflow", w.name, w.schedule) for w in catalog.workflows.values() if w.schedule]
    return items
