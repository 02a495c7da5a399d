"""Queries for workflow runs and their steps."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.store.records import RunOrigin
from bot.store.tables import workflow_runs, workflow_steps

__all__ = ["StepRecord", "StepState", "WorkflowRunRecord", "WorkflowState", "WorkflowStore"]


class WorkflowState(enum.StrEnum):
    """Where a workflow run is (``workflow_runs.state``)."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a step failed, was rejected or timed out; Retry on the card resumes from there


class StepState(enum.StrEnum):
    """Where one step of a workflow run is (``workflow_steps.state``)."""

    PENDING = "pending"  # not begun (its predecessors have not ended, or ended the other way)
    STARTING = "starting"  # claimed by whoever begins it (see ``WorkflowEngine._begin``)
    RUNNING = "running"  # its pipeline's run is in flight
    WAITING = "waiting"  # an approval step waiting for a decision
    SUCCEEDED = "succeeded"  # its run succeeded, or the approval was given
    FAILED = "failed"
    CANCELED = "canceled"  # its run was canceled (by a person, or in the provider's console): no failure of it
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"  # an approval nobody gave in time


@dataclass(frozen=True, slots=True)
class StepRecord:
    step: str
    state: StepState
    run_id: int | None
    decided_by: str | None
    decided_at: datetime | None
    due_at: datetime | None


@dataclass(frozen=True, slots=True)
class WorkflowRunRecord:
    id: int
    workflow: str
    parameters: Mapping[str, str]
    state: WorkflowState
    origin: RunOrigin
    started_by: str | None
    channel: str | None
    created_at: datetime
    ended_at: datetime | None
    steps: Mapping[str, StepRecord]


class WorkflowStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self,
        workflow: str,
        steps: Iterable[str],
        *,
        parameters: Mapping[str, str],
        origin: RunOrigin,
        started_by: str | None,
        channel: str | None,
        now: datetime,
    ) -> WorkflowRunRecord:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(workflow_runs)
                .values(
                    workflow=workflow,
                    parameters=dict(parameters),
                    state=WorkflowState.RUNNING.value,
                    origin=str(origin),
                    started_by=started_by,
                    channel=channel,
                    created_at=now,
                    updated_at=now,
                )
                .returning(workflow_runs.c.id)
            )
            run_id = result.scalar_one()
            for step in steps:
                await conn.execute(
                    insert(workflow_steps).values(
                        workflow_run_id=run_id, step=step, state=StepState.PENDING.value, updated_at=now
                    )
                )
            return await _get(conn, run_id)

    async def get(self, workflow_run_id: int) -> WorkflowRunRecord | None:
        async with self.engine.connect() as conn:
            exists = (
                await conn.execute(select(workflow_runs.c.id).where(workflow_runs.c.id == workflow_run_id))
            ).first()
            return await _get(conn, workflow_run_id) if exists else None

    async def set_step(
        self,
        workflow_run_id: int,
        step: str,
        state: StepState,
        *,
        now: datetime,
        expect: Iterable[StepState] | None = None,
        run_id: int | None = None,
        decided_by: str | None = None,
        due_at: datetime | None = None,
        unchanged_since: datetime | None = None,
    ) -> bool:
        """Move a step to ``state``; with ``expect``, only from one of those states (a double click moves once);
        with ``unchanged_since``, only a step not moved after that time (a claim taken over once it is stale)."""
        values: dict[str, object] = {"state": state.value, "updated_at": now}
        if run_id is not None:
            values["run_id"] = run_id
        if decided_by is not None:
            values["decided_by"], values["decided_at"] = decided_by, now
        if due_at is not None:
            values["due_at"] = due_at
        query = update(workflow_steps).where(
            workflow_steps.c.workflow_run_id == workflow_run_id, workflow_steps.c.step == step
        )
        if expect is not None:
            query = query.where(workflow_steps.c.state.in_([e.value for e in expect]))
        if unchanged_since is not None:
            query = query.where(workflow_steps.c.updated_at <= unchanged_since)
        async with self.engine.begin() as conn:
            result = await conn.execute(query.values(**values))
            return result.rowcount == 1

    async def set_state(self, workflow_run_id: int, state: WorkflowState, *, now: datetime) -> None:
        ended = now if state in (WorkflowState.SUCCEEDED, WorkflowState.FAILED) else None
        async with self.engine.begin() as conn:
            await conn.execute(
                update(workflow_runs)
                .where(workflow_runs.c.id == workflow_run_id)
                .values(state=state.value, updated_at=now, ended_at=ended)
            )

    async def stale_claims(self, before: datetime) -> list[tuple[int, str]]:
        """Steps claimed to be begun ("starting") and not moved since ``before``: their claimer died first."""
        query = select(workflow_steps.c.workflow_run_id, workflow_steps.c.step).where(
            workflow_steps.c.state == StepState.STARTING.value, workflow_steps.c.updated_at <= before
        )
        async with self.engine.connect() as conn:
            return [(row.workflow_run_id, row.step) for row in await conn.execute(query)]

    async def approvals_due(self, now: datetime) -> list[tuple[int, str]]:
        query = select(workflow_steps.c.workflow_run_id, workflow_steps.c.step).where(
            workflow_steps.c.state == StepState.WAITING.value, workflow_steps.c.due_at <= now
        )
        async with self.engine.connect() as conn:
            return [(r[0], r[1]) for r in await conn.execute(query)]


async def _get(conn: AsyncConnection, workflow_run_id: int) -> WorkflowRunRecord:
    row = (await conn.execute(select(workflow_runs).where(workflow_runs.c.id == workflow_run_id))).mappings().one()
    steps = (
        await conn.execute(
            select(workflow_steps)
            .where(workflow_steps.c.workflow_run_id == workflow_run_id)
            .order_by(workflow_steps.c.id)
        )
    ).mappings()
    return _record(row, {s["step"]: _step(s) for s in steps})


def _step(row: RowMapping) -> StepRecord:
    return StepRecord(
        step=row["step"],
        state=StepState(row["state"]),
        run_id=row["run_id"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        due_at=row["due_at"],
    )


def _record(row: RowMapping, steps: Mapping[str, StepRecord]) -> WorkflowRunRecord:
    return WorkflowRunRecord(
        id=row["id"],
        workflow=row["workflow"],
        parameters=row["parameters"] or {},
        state=WorkflowState(row["state"]),
        origin=RunOrigin(row["origin"]),
        started_by=row["started_by"],
        channel=row["channel"],
        created_at=row["created_at"],
        ended_at=row["ended_at"],
        steps=steps,
    )
