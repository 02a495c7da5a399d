"""A cancel is recorded before the provider is asked (twelfth independent pass): a poll that lands while the cancel's
answer travels back (Rivery has canceled the run and reports it failed, ``F``) must find the request and record a
cancel, not a failure. A cancel the provider refuses is withdrawn: a later real failure is a failure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml

from bot.catalog.load import parse_catalog
from bot.errors import ProviderRejected, UserError
from bot.models import RunState, RunStatus
from bot.service.clients import ClientPool
from bot.service.notify import Notifier
from bot.service.permissions import Actor, Authorizer
from bot.service.runs import RunService
from bot.slack.reporter import SlackReporter
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.runs import CANCEL_PENDING_LIMIT
from bot.store.store import Store

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CATALOG = """
connections:
  rv: {provider: rivery, base_url: "http://127.0.0.1:1/api", api_token: "${TOKEN}"}
pipelines:
  refunds: {connection: rv, river_id: r1, owners: [U0BOB]}
"""


async def _service(store: Store) -> tuple[RunService, ClientPool, RunRecord]:
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "secret-token"})

    async def nobody(group: str) -> frozenset[str]:
        return frozenset()

    pool = ClientPool.for_catalog(catalog)
    notifier = Notifier(store, catalog, pool, SlackReporter(store, lambda: NOW), lambda: NOW)
    service = RunService(store, pool, Authorizer(["U0ADMIN", "U0ADMIN2"], nobody), notifier, lambda: NOW)
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="refunds", channel="C1", provider_run_id="p-1"),
        now=NOW, next_poll_at=NOW,
    )
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.RUNNING, "R"), now=NOW, next_poll_at=NOW)
    return service, pool, run


async def test_a_poll_landing_while_the_cancel_answer_travels_records_a_cancel(store: Store) -> None:
    service, pool, run = await _service(store)

    async def cancel(job: object, run_id: str) -> None:  # Rivery canceled it; a poll records "F" before we hear back
        await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.CANCELED.value, after.state if after else None
    assert "canceled at <@U0ADMIN>'s request" in after.message


async def test_a_cancel_the_provider_refuses_is_withdrawn(store: Store) -> None:
    service, pool, run = await _service(store)

    async def cancel(job: object, run_id: str) -> None:
        raise ProviderRejected("Rivery refused the cancel (400)")

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    with pytest.raises(UserError):
        await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.FAILED.value  # its own failure, announced as one


async def test_a_second_cancel_the_provider_refuses_leaves_the_first_in_place(store: Store) -> None:
    """Two people cancel the same run: Rivery cancels it for the first and refuses the second (400, not running any
    more). The second refusal must not withdraw the first request: the run's "F" is still the first one's cancel."""
    service, pool, run = await _service(store)
    answers: list[Exception | None] = [None, ProviderRejected("Run p-1 is not running any more (canceled)")]

    async def cancel(job: object, run_id: str) -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    with pytest.raises(UserError):
        await service.cancel(Actor("U0ADMIN2", "C1"), run.id)
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.CANCELED.value
    assert "canceled at <@U0ADMIN>'s request" in after.message


async def test_a_cancel_the_provider_took_turns_failures_into_cancels_for_good(store: Store) -> None:
    service, pool, run = await _service(store)

    async def cancel(job: object, run_id: str) -> None:
        return None

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    taken = await store.runs.get(run.id)
    assert taken is not None and taken.cancel_requested_by == "U0ADMIN" and taken.cancel_pending_since is None
    later = NOW + CANCEL_PENDING_LIMIT * 3  # Rivery took its time, and says "F"
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=later, next_poll_at=None)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.CANCELED.value


async def test_a_cancel_never_confirmed_hides_a_failure_only_for_a_while(store: Store) -> None:
    """The bot stopped inside the provider's cancel call (the request recorded, the answer never heard): the cancel
    may never have reached the provider, so the run's failure, long after, is a failure, announced with its owners;
    within ``CANCEL_PENDING_LIMIT`` it is taken for the cancel (the provider may be canceling it right then)."""
    _, _, run = await _service(store)
    second = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="refunds", channel="C1", provider_run_id="p-2"),
        now=NOW, next_poll_at=NOW,
    )
    await store.runs.record_status(second.id, RunStatus("p-2", RunState.RUNNING, "R"), now=NOW, next_poll_at=NOW)
    for asked in (run, second):
        assert await store.runs.cancel_requested(asked.id, "U0ADMIN", now=NOW)  # …and the process is killed
    soon = NOW + CANCEL_PENDING_LIMIT / 2
    await store.runs.record_status(second.id, RunStatus("p-2", RunState.FAILED, "F"), now=soon, next_poll_at=None)
    late = NOW + CANCEL_PENDING_LIMIT * 2
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=late, next_poll_at=None)
    within, after = await store.runs.get(second.id), await store.runs.get(run.id)
    assert within is not None and within.state == RunState.CANCELED.value
    assert after is not None and after.state == RunState.FAILED.value
