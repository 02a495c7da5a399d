"""Which of a tick's runs one batched status call answers for: grouped by connection and the provider's scope
(``ProviderClient.status_scope``), the rest polled one by one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.providers.base import Capability, JobConfig
from bot.service.clients import ClientPool
from bot.store.records import RunRecord

__all__ = ["Batch", "Plan", "batchable", "plan_batches"]

#: a batched call's window reaches this far before the oldest run it asks about (the provider's clock may differ)
_WINDOW_MARGIN = timedelta(minutes=5)


@dataclass
class Batch:
    connection: str
    runs: list[RunRecord] = field(default_factory=list)
    items: list[tuple[JobConfig, str]] = field(default_factory=list)  # (job, provider run id), as the client asks
    due: bool = False

    @property
    def since(self) -> datetime:
        return min(r.started_at or r.created_at for r in self.runs) - _WINDOW_MARGIN


@dataclass
class Plan:
    batches: list[Batch]
    single: list[RunRecord]  # polled one by one
    unused: list[RunRecord]  # claimed early for a batch that is not made: handed back


def plan_batches(
    pool: ClientPool, due: list[RunRecord], early: list[RunRecord], *, busy: Collection[int] = ()
) -> Plan:
    """Group ``due`` runs and runs claimed ``early`` by connection and scope. A scope with a single run is asked
    about on its own (one call either way, and a status call is exact); so is a run whose last poll is still under
    way (``busy``: it waits for it, a batch would not). Early runs of a scope none of whose runs is due are unused."""
    groups: dict[tuple[str, Hashable], Batch] = defaultdict(lambda: Batch(connection=""))
    single: list[RunRecord] = []
    unused: list[RunRecord] = []
    for run, is_due in [(r, True) for r in due] + [(r, False) for r in early]:
        scope = _scope(pool, run) if run.provider_run_id is not None and run.id not in busy else None
        if scope is None:
            (single if is_due else unused).append(run)
            continue
        batch = groups[(run.connection, scope)]
        batch.connection = run.connection
        batch.runs.append(run)
        batch.items.append((pool.job(run.provider, run.job), run.provider_run_id or ""))
        batch.due = batch.due or is_due
    batches: list[Batch] = []
    for batch in groups.values():
        if not batch.due:
            unused += batch.runs
        elif len(batch.runs) == 1:
            single += batch.runs
        else:
            batches.append(batch)
    return Plan(batches=batches, single=single, unused=unused)


def batchable(pool: ClientPool, connection: str) -> bool:
    """Whether this connection's provider answers for many runs in one call. A connection gone from the catalog
    is not: its runs' own polls say what is wrong."""
    try:
        return pool.client(connection).can(Capability.STATUSES)
    except Exception:
        return False


def _scope(pool: ClientPool, run: RunRecord) -> Hashable | None:
    if not batchable(pool, run.connection):
        return None
    try:
        return pool.client(run.connection, run.provider).status_scope(pool.job(run.provider, run.job))
    except Exception:  # a job the catalog no longer validates: its own poll reports it, as before batches
        return None
