"""A cancel whose provider call ends in neither an answer nor a ``ProviderError`` (issue 11's thirteenth pass): a
bug in the client, the stop cancelling the click's task. Nobody knows whether the provider took it, so the request
recorded before the call is withdrawn: the run's later failure is announced as a failure, never hidden as the
cancel (the principle: a failure is announced unless someone asked for the cancel and the provider took it)."""

from __future__ import annotations

import asyncio

import pytest

from bot.models import RunState, RunStatus
from bot.service.permissions import Actor
from bot.store.store import Store
from tests.unit.service.test_cancel_order import NOW, _service


@pytest.mark.parametrize("raised", [KeyError("run_id"), asyncio.CancelledError()], ids=["bug", "stopped"])
async def test_a_cancel_call_that_ends_without_an_answer_leaves_the_runs_failure_a_failure(
    store: Store, raised: BaseException
) -> None:
    service, pool, run = await _service(store)

    async def cancel(job: object, run_id: str) -> None:
        raise raised

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    with pytest.raises(type(raised)):
        await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.FAILED.value, after.message if after else None
