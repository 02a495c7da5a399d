"""A cancel that was never answered (its answer lost, or the bot killed inside the call) must not count for ever
(fourteenth pass c). ``runs.cancel_asks`` counts the cancels on their way to the provider; one answered "unknown" or
cut by a kill never gave its ask back. Before, every later cancel the provider refused outright (403: a token
without the right) found "another cancel on its way" and withdrew nothing: the run's real failure minutes later was
recorded as that refused cancel, "canceled at <@U…>'s request", and nobody was alerted, for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
from bot.store.records import NewRun, RunOrigin
from bot.store.runs import CANCEL_PENDING_LIMIT
from bot.store.store import Store

START = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CATALOG = """
connections:
  rv: {provider: rivery, base_url: "http://127.0.0.1:1/api", api_token: "${TOKEN}"}
pipelines:
  refunds: {connection: rv, river_id: r1, owners: [U0BOB]}
"""


@pytest.mark.parametrize("first", ["answer lost", "killed inside the call"])
async def test_a_cancel_refused_long_after_one_never_answered_leaves_the_failure_a_failure(
    store: Store, first: str
) -> None:
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "secret-token"})
    clock = [START]

    async def nobody(group: str) -> frozenset[str]:
        return frozenset()

    pool = ClientPool.for_catalog(catalog)
    notifier = Notifier(store, catalog, pool, SlackReporter(store, lambda: clock[0]), lambda: clock[0])
    service = RunService(store, pool, Authorizer(["U0ADMIN", "U0ADMIN2"], nobody), notifier, lambda: clock[0])
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="refunds", channel="C1", provider_run_id="p-1"),
        now=START, next_poll_at=START,
    )
    await store.runs.record_status(run.id, RunStatus("p-1", RunState.RUNNING, "R"), now=START, next_poll_at=START)
    answers: list[Exception] = [
        ProviderUnavailable("Rivery is failing (HTTP 502) when asked to cancel run p-1.", outcome_unknown=True),
        ProviderRejected("Rivery refused to cancel run p-1 (HTTP 403): missing scope river:execute"),
    ]

    async def cancel(job: object, run_id: str) -> None:
        raise answers.pop(0)

    pool.client("rv").cancel = cancel  # type: ignore[method-assign]
    if first == "answer lost":
        with pytest.raises(UserError, match="Could not confirm"):
            await service.cancel(Actor("U0ADMIN", "C1"), run.id)
    else:  # the request recorded, then the process killed before any answer
        answers.pop(0)
        await store.runs.cancel_requested(run.id, "U0ADMIN", now=START)
    # Rivery never took it: the run goes on. A quarter of an hour later someone else cancels, refused outright
    clock[0] = START + CANCEL_PENDING_LIMIT + timedelta(minutes=5)
    with pytest.raises(UserError, match="Could not cancel run"):
        await service.cancel(Actor("U0ADMIN2", "C1"), run.id)
    # and the run fails on its own two minutes later: a failure, announced, not "canceled at U0ADMIN2's request"
    failed_at = clock[0] + timedelta(minutes=2)
    change = await store.runs.record_status(
        run.id, RunStatus("p-1", RunState.FAILED, "F", message="load failed"), now=failed_at, next_poll_at=None
    )
    assert change is not None
    assert change.run.state == RunState.FAILED.value, change.run.message
    assert change.run.message == "load failed"
