"""Reading runs (``runs`` and ``run_events``): one run, a message's runs, a pipeline's recent ones, the runs in
flight. ``RunStore`` adds the writes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.records import RunRecord, StoredState
from bot.store.rows import run_of_row, runs_by_ids, select_runs
from bot.store.tables import cards, run_events, runs

__all__ = ["RunReads"]


class RunReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def get(self, run_id: int) -> RunRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.id == run_id))).mappings().first()
        return run_of_row(row) if row else None

    async def many(self, run_ids: Collection[int]) -> dict[int, RunRecord]:
        """The runs of ``run_ids`` that exist, by id: one query for a message that names many."""
        if not run_ids:
            return {}
        async with self.engine.connect() as conn:
            return {run.id: run for run in await runs_by_ids(conn, sorted(set(run_ids)))}

    async def retry_of(self, run_id: int) -> RunRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(runs).where(runs.c.retry_of == run_id))).mappings().first()
        return run_of_row(row) if row else None

    async def find(self, connection: str, provider_run_id: str) -> RunRecord | None:
        query = select(runs).where(runs.c.connection == connection, runs.c.provider_run_id == provider_run_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return run_of_row(row) if row else None

    async def find_moved(
        self, pipeline: str, provider: str, provider_run_ids: Collection[str], *, besides: str
    ) -> RunRecord | None:
        """A run of ``pipeline`` recorded under a connection other than ``besides`` with one of these provider run
        ids: the same provider run, recorded before the pipeline's connection was renamed in the catalog."""
        query = (
            select(runs)
            .where(
                runs.c.pipeline == pipeline,
                runs.c.provider == provider,
                runs.c.provider_run_id.in_(list(provider_run_ids)),
                runs.c.connection != besides,
            )
            .order_by(runs.c.id.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).mappings().first()
        return run_of_row(row) if row else None

    async def in_flight(self, limit: int = 200) -> list[RunRecord]:
        query = select(runs).where(runs.c.final.is_(False)).order_by(runs.c.id).limit(limit)
        return await select_runs(self.engine, query)

    async def ages(self, limit: int = 5000) -> list[tuple[int, str | None, datetime, datetime | None]]:
        """Id, pipeline, created and started times of the runs in flight whose status is known: what the stuck
        check needs to judge them, without reading thousands of whole runs (their tasks, extra fields, job) every
        tick."""
        query = (
            select(runs.c.id, runs.c.pipeline, runs.c.created_at, runs.c.started_at)
            .where(runs.c.final.is_(False), runs.c.provider_run_id.is_not(None), runs.c.unknown_since.is_(None))
            .order_by(runs.c.id)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [(r.id, r.pipeline, r.created_at, r.started_at) for r in await conn.execute(query)]

    async def recent(self, pipeline: str, limit: int = 10) -> list[RunRecord]:
        query = select(runs).where(runs.c.pipeline == pipeline).order_by(runs.c.id.desc()).limit(limit)
        return await select_runs(self.engine, query)

    async def reached_after(self, pipeline: str, provider: str, run_id: int, limit: int) -> int:
        """How many runs of ``pipeline`` at ``provider`` recorded after run ``run_id`` reached the provider (have its
        run id), counted up to ``limit``: those its list of the pipeline's newest runs holds before that run. A start
        refused, or one still waiting, is in no provider's list; a duplicate 0013 marked is no run of its own.
        Newer as the provider lists them, by when they started there where both times are known: a run that waited
        for its start (a capped start, a retry's delay) is recorded before runs that started ahead of it."""
        async with self.engine.connect() as conn:
            started = (await conn.execute(select(runs.c.started_at).where(runs.c.id == run_id))).scalar_one_or_none()
            newer = runs.c.id > run_id
            if started is not None:
                newer = or_(runs.c.started_at > started, runs.c.started_at.is_(None) & newer)
            later = (
                select(runs.c.id)
                .where(
                    runs.c.pipeline == pipeline,
                    runs.c.provider == provider,
                    runs.c.id != run_id,
                    newer,
                    runs.c.provider_run_id.is_not(None),
                    runs.c.provider_run_id.not_like("%#dup-%"),
                )
                .limit(limit)
                .subquery()
            )
            return int((await conn.execute(select(func.count()).select_from(later))).scalar_one())

    async def recent_of(self, pipelines: Collection[str], limit: int = 10) -> dict[str, list[RunRecord]]:
        """``recent`` of each of ``pipelines`` in one query (the Home tab's rows: one read, not one a pipeline);
        a pipeline without runs maps to an empty list."""
        found: dict[str, list[RunRecord]] = {name: [] for name in pipelines}
        if not found:
            return found
        place = func.row_number().over(partition_by=runs.c.pipeline, order_by=runs.c.id.desc()).label("place")
        ranked = select(runs.c.id, place).where(runs.c.pipeline.in_(list(found))).subquery()
        query = (
            select(runs)
            .join(ranked, ranked.c.id == runs.c.id)
            .where(ranked.c.place <= limit)
            .order_by(runs.c.pipeline, runs.c.id.desc())
        )
        for run in await select_runs(self.engine, query):
            if run.pipeline is not None:
                found[run.pipeline].append(run)
        return found

    async def between(self, start: datetime, end: datetime, pipeline: str | None = None) -> list[RunRecord]:
        query = select(runs).where(runs.c.created_at >= start, runs.c.created_at < end)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == pipeline)
        return await select_runs(self.engine, query.order_by(runs.c.id))

    async def of_workflow(self, workflow_run_id: int) -> list[RunRecord]:
        query = select(runs).where(runs.c.workflow_run_id == workflow_run_id).order_by(runs.c.id)
        return await select_runs(self.engine, query)

    async def of_message(self, channel: str, ts: str) -> RunRecord | None:
        """The run whose card is the message ``ts`` of ``channel``."""
        query = (
            select(runs).join(cards, cards.c.run_id == runs.c.id).where(cards.c.channel == channel, cards.c.ts == ts)
        )
        found = await select_runs(self.engine, query)
        return found[0] if found else None

    async def events(self, run_id: int) -> list[tuple[datetime, str, str, str]]:
        query = (
            select(run_events.c.at, run_events.c.state, run_events.c.raw_status, run_events.c.message)
            .where(run_events.c.run_id == run_id)
            .order_by(run_events.c.id)
        )
        async with self.engine.connect() as conn:
            return [(r.at, r.state, r.raw_status, r.message) for r in await conn.execute(query)]

    async def unnotified(
        self, *, older_than: datetime, limit: int = 200, skip: Collection[int] = ()
    ) -> list[RunRecord]:
        """Runs whose last change was recorded but whose card and alerts may not have been written (the
        process died in between), that change being older than ``older_than`` (a live process may be writing
        them right now). Not ``updated_at``: every poll moves it, and a run still polled would never qualify.
        ``skip``: runs left aside (their handling failed lately), so that the others come first."""
        changed_lately = (
            select(run_events.c.id).where(run_events.c.run_id == runs.c.id, run_events.c.at >= older_than).exists()
        )
        query = (
            select(runs)
            .where(
                runs.c.state.not_in((StoredState.STARTING.value, StoredState.WAITING.value)),
                or_(runs.c.notified_state.is_(None), runs.c.notified_state != runs.c.state),
                runs.c.created_at < older_than,
                ~changed_lately,
                *([runs.c.id.not_in(list(skip))] if skip else []),
            )
            .order_by(runs.c.id)
            .limit(limit)
        )
        return await select_runs(self.engine, query)

    async def count_by_state(self) -> dict[tuple[str, bool], int]:
        """(state, final) → number of runs, for metrics."""
        query = select(runs.c.state, runs.c.final, func.count()).group_by(runs.c.state, runs.c.final)
        async with self.engine.connect() as conn:
            return {(r[0], bool(r[1])): int(r[2]) for r in await conn.execute(query)}
