"""The ``function_steps`` family: Workflow Builder's "Run a pipeline" steps and the runs they started.

An execution is claimed before its run starts (``claim``): Slack delivering the same ``function_executed`` twice
(a retry of the event) starts one run. Its completion itself is an outbox message under
``keys.function_completion``, so it is sent once whoever sees the run end, and survives a restart."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import literal, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.tables import function_steps, outbox
from bot.store.upsert import upsert_insert

__all__ = ["FunctionStep", "FunctionSteps"]


@dataclass(frozen=True, slots=True)
class FunctionStep:
    execution_id: str
    run_id: int | None
    wait: bool
    user_id: str


class FunctionSteps:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._insert = upsert_insert(engine)

    async def claim(self, execution_id: str, *, user_id: str, wait: bool, now: datetime) -> bool:
        """Record an execution. False when it was already recorded: a repeated delivery, ignored."""
        statement = (
            self._insert(function_steps)
            .values(execution_id=execution_id[:64], run_id=None, wait=wait, user_id=user_id, created_at=now)
            .on_conflict_do_nothing(index_elements=["execution_id"])
        )
        async with self.engine.begin() as conn:
            return bool((await conn.execute(statement)).rowcount)

    async def started(self, execution_id: str, run_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(function_steps).where(function_steps.c.execution_id == execution_id).values(run_id=run_id)
            )

    async def waiting_on(self, run_ids: Iterable[int]) -> list[FunctionStep]:
        """The steps waiting for one of ``run_ids`` to end (a run and the attempts before it)."""
        ids = list(run_ids)
        query = select(function_steps).where(function_steps.c.run_id.in_(ids), function_steps.c.wait.is_(True))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.order_by(function_steps.c.created_at))).mappings()
            return [FunctionStep(r["execution_id"], r["run_id"], bool(r["wait"]), r["user_id"]) for r in rows]

    async def stale_claims(self, *, before: datetime, since: datetime, limit: int = 50) -> list[str]:
        """Executions claimed between ``since`` and ``before`` that have neither a run nor a completion written: the
        bot stopped between the claim and the run's record, and nothing else will end them."""
        completion = outbox.c.key == literal("function:") + function_steps.c.execution_id  # keys.function_completion
        query = (
            select(function_steps.c.execution_id)
            .select_from(function_steps.outerjoin(outbox, completion))
            .where(
                function_steps.c.run_id.is_(None),
                function_steps.c.created_at < before,
                function_steps.c.created_at >= since,
                outbox.c.key.is_(None),
            )
            .order_by(function_steps.c.created_at)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [str(r) for r in (await conn.execute(query)).scalars()]
