"""A cancel is recorded before the provider is asked (twelfth independent pass): a poll that lands while the cancel's
answer travels back (Rivery has canceled the run and reports it failed, ``F``) must find the request and record a
cancel, not a failure. A cancel the provider refuses is withdrawn: a later real failure is a failure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import yaml

from bot.catalog.load import parse_catalog
from bot.errors import ProviderRejected, ProviderUnavailable, UserError
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
    """Rivery canceled the run and a poll reads "F" before the cancel's answer is heard: the poll records nothing
    (the answer decides), the cancel's answer makes the run due at once, and its next "F" is the cancel."""
    service, pool, run = await _service(store)

    async def cancel(job: object, run_id: str) -> None:
        await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    meanwhile = await store.runs.get(run.id)
    assert meanwhile is not None and meanwhile.state == RunState.RUNNING.value and not meanwhile.final
    assert meanwhile.next_poll_at == NOW  # polled again at once
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.CANCELED.value, after.state if after else None
    assert "canceled at <@U0ADMIN>'s request" in after.message


async def test_a_run_that_failed_on_its_own_before_a_refused_cancel_is_announced_as_failed(store: Store) -> None:
    """The run failed at Rivery just before the click; a poll reads "F" while the cancel call is on its way; Rivery
    refuses the cancel (400, not running any more). Before, the poll had already recorded the failure as "canceled
    at @U0ADMIN's request", for good: no alert, the owners never told (issue 11's fourteenth pass (a)). Now the
    failure is held while the call is on its way, and recorded as the failure it is once the cancel is refused."""
    service, pool, run = await _service(store)

    async def cancel(job: object, run_id: str) -> None:
        await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)
        raise ProviderRejected("Rivery refused to cancel run p-1 (HTTP 400): the run is not running")

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    with pytest.raises(UserError, match="Could not cancel run"):
        await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    meanwhile = await store.runs.get(run.id)
    assert meanwhile is not None and not meanwhile.final and meanwhile.next_poll_at == NOW
    change = await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW,
                                            next_poll_at=None)
    assert change is not None and change.run.state == RunState.FAILED.value  # announced: a failure, its owners told


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
    may never have reached the provider, so the run's failure is a failure, announced with its owners, once
    ``CANCEL_PENDING_LIMIT`` has passed; within it, the failure is held (the call's answer may still come)."""
    _, _, run = await _service(store)
    second = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="refunds", channel="C1", provider_run_id="p-2"),
        now=NOW, next_poll_at=NOW,
    )
    await store.runs.record_status(second.id, RunStatus("p-2", RunState.RUNNING, "R"), now=NOW, next_poll_at=NOW)
    for asked in (run, second):
        await store.runs.cancel_requested(asked.id, "U0ADMIN", now=NOW)  # …and the process is killed
    soon = NOW + CANCEL_PENDING_LIMIT / 2
    await store.runs.record_status(second.id, RunStatus("p-2", RunState.FAILED, "F"), now=soon, next_poll_at=None)
    late = NOW + CANCEL_PENDING_LIMIT * 2
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=late, next_poll_at=None)
    within, after = await store.runs.get(second.id), await store.runs.get(run.id)
    assert within is not None and within.state == RunState.RUNNING.value and not within.final  # held, not hidden
    assert after is not None and after.state == RunState.FAILED.value


async def test_a_cancel_refused_while_another_is_on_its_way_withdraws_nothing(store: Store) -> None:
    """Two people click Cancel at once. The first one's call is refused (a 400 from a gateway, a token without the
    right) while the second one's is still on its way; Rivery takes the second and reports the run "F". Before,
    the refusal withdrew the request (the only one recorded), the poll recorded a failure (owners paged for the
    run just canceled), and the second one's success found no request to confirm."""
    service, pool, run = await _service(store)
    second_sent, first_refused = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def cancel(job: object, run_id: str) -> None:
        calls.append(run_id)
        if len(calls) == 1:  # the first click's call: refused once the second is on its way
            await second_sent.wait()
            first_refused.set()
            raise ProviderRejected("Rivery refused the cancel (400)")
        second_sent.set()  # the second click's call: taken, once the first was refused and a poll read "F"
        await first_refused.wait()
        await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    first = asyncio.create_task(service.cancel(Actor("U0ADMIN", "C1"), run.id))
    await asyncio.sleep(0)
    second = asyncio.create_task(service.cancel(Actor("U0ADMIN2", "C1"), run.id))
    with pytest.raises(UserError):
        await first
    await second
    taken = await store.runs.get(run.id)
    assert taken is not None and taken.cancel_pending_since is None  # taken: its failures are the cancel for good
    assert not taken.final and taken.next_poll_at == NOW  # the "F" read meanwhile was held; polled again at once
    later = NOW + CANCEL_PENDING_LIMIT * 3
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=later, next_poll_at=None)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.CANCELED.value, after.state if after else None
    assert "canceled at <@U0ADMIN2>'s request" in after.message


async def test_a_cancel_taken_after_another_was_refused_is_named_after_who_asked_it(store: Store) -> None:
    service, pool, run = await _service(store)
    answers: list[Exception | None] = [ProviderRejected("Rivery refused the cancel (400)"), None]

    async def cancel(job: object, run_id: str) -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    with pytest.raises(UserError):
        await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    await service.cancel(Actor("U0ADMIN2", "C1"), run.id)
    later = NOW + CANCEL_PENDING_LIMIT * 3
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=later, next_poll_at=None)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.CANCELED.value
    assert "canceled at <@U0ADMIN2>'s request" in after.message


async def test_a_cancel_the_provider_may_have_taken_keeps_the_request_for_a_while(store: Store) -> None:
    """Rivery stopped the run and its gateway answered 502 (or the answer was lost): the cancel may have been taken.
    Before, the request was withdrawn as if refused, and the run's "F" paged its owners as a failure. Now the person
    is told the cancel is unconfirmed, and a failure soon after is the cancel; long after, a failure is one."""
    service, pool, run = await _service(store)

    async def cancel(job: object, run_id: str) -> None:
        raise ProviderUnavailable("Rivery is failing (HTTP 502) when asked to cancel run p-1.", outcome_unknown=True)

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    with pytest.raises(UserError, match="Could not confirm the cancel of run"):
        await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    kept = await store.runs.get(run.id)
    assert kept is not None and kept.cancel_requested_by == "U0ADMIN" and kept.cancel_pending_since == NOW
    assert kept.next_poll_at is not None and kept.next_poll_at <= NOW  # polled at once: the card says soon
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.CANCELED.value


async def test_a_cancel_refused_outright_after_an_unconfirmed_one_withdraws_nothing(store: Store) -> None:
    """An unconfirmed cancel (502) then a second click refused (400: the run is not running any more, because the
    first stopped it): the first may be the run's end, so the request stays."""
    service, pool, run = await _service(store)
    answers: list[Exception] = [
        ProviderUnavailable("Rivery is failing (HTTP 502)", outcome_unknown=True),
        ProviderRejected("run p-1 is not running"),
    ]

    async def cancel(job: object, run_id: str) -> None:
        raise answers.pop(0)

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    for user in ("U0ADMIN", "U0ADMIN2"):
        with pytest.raises(UserError):
            await service.cancel(Actor(user, "C1"), run.id)
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.FAILED, "F"), now=NOW, next_poll_at=None)
    after = await store.runs.get(run.id)
    assert after is not None and after.state == RunState.CANCELED.value
