"""Ending a run the bot cannot follow (its connection left the catalog), below Slack: the store's conditional end,
no retry of it, its workflow step and its Workflow Builder error; and the end of a start that was ended already
(``RunStore.finish``) kept, not overwritten and told twice."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import yaml

from bot.catalog.load import parse_catalog
from bot.models import RunState, RunStatus
from bot.service.clients import ClientPool
from bot.service.function_steps import _failure
from bot.service.notify import Notifier
from bot.service.retries import Retrier
from bot.service.workflows import _step_state
from bot.slack.reporter import SlackReporter
from bot.store.records import NewRun, RunOrigin, RunRecord, StoredState
from bot.store.store import Store
from bot.store.workflow_runs import StepState

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)

#: the deploy renamed the connection ``rivery`` to ``rivery-eu``; the pipeline retries unknown ends
CATALOG = """
defaults: {channel: C0ALERTS}
connections:
  rivery-eu: {provider: rivery, api_token: "${TOKEN}"}
pipelines:
  leads-ods: {connection: rivery-eu, river_id: r1, retry: {attempts: 3, "on": [failed, unknown]}}
"""


async def _polled(store: Store, *, provider_run_id: str | None = "r-1") -> RunRecord:
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rivery", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="leads-ods", started_by="U0ALICE", channel="C0ALERTS"),
        now=NOW - timedelta(minutes=30), next_poll_at=None,
    )
    if provider_run_id is None:
        return run
    await store.runs.repoint(run.id, provider_run_id)
    status = RunStatus(run_id=provider_run_id, state=RunState.RUNNING, raw_status="R", extra={"kind": "api"})
    await store.runs.record_status(run.id, status, now=NOW - timedelta(minutes=20), next_poll_at=NOW)
    found = await store.runs.get(run.id)
    assert found is not None
    return found


async def test_stop_following_ends_only_a_live_run_at_the_provider_and_says_who(store: Store) -> None:
    run = await _polled(store)
    ended = await store.runs.stop_following(run.id, "U0CAROL", "rivery", now=NOW)
    assert ended is not None and ended.final and ended.run_state is RunState.UNKNOWN
    assert ended.stopped_by == "U0CAROL" and ended.extra["kind"] == "api"  # the provider's extras kept
    assert ended.next_poll_at is None and ended.ended_at == NOW and "rivery" in ended.message
    assert await store.runs.stop_following(run.id, "U0ALICE", "rivery", now=NOW) is None  # ended: kept as it was
    assert (await store.runs.get(run.id)) == ended
    starting = await _polled(store, provider_run_id=None)
    assert await store.runs.stop_following(starting.id, "U0CAROL", "rivery", now=NOW) is None
    assert not (await store.runs.get(starting.id) or starting).final


async def test_a_start_ended_already_keeps_its_end(store: Store) -> None:
    """A trigger that fails after recovery gave its start up: the second end is not written (nor told again)."""
    start = await _polled(store, provider_run_id=None)
    first = await store.runs.finish(start.id, RunState.UNKNOWN, "unknown whether it started", now=NOW)
    assert first is not None and first.final
    assert await store.runs.finish(start.id, RunState.UNKNOWN, "not started: 503", now=NOW + timedelta(1)) is None
    assert (await store.runs.get(start.id)) == first


def _retrier(store: Store, source: str = CATALOG) -> Retrier:
    catalog = parse_catalog(yaml.safe_load(source), {"TOKEN": "t0ken-value"})
    pool = ClientPool.for_catalog(catalog)
    return Retrier(store, catalog, Notifier(store, catalog, pool, SlackReporter(store, lambda: NOW), lambda: NOW),
                   now=lambda: NOW)


async def test_no_retry_of_a_run_stopped_following(store: Store) -> None:
    retrier = _retrier(store)
    run = await _polled(store)
    stopped = await store.runs.stop_following(run.id, "U0CAROL", "rivery", now=NOW)
    assert stopped is not None
    assert not await retrier.maybe_retry(stopped)  # a person ended it, its outcome unknown: maybe running still
    assert await store.runs.retry_of(run.id) is None


async def test_a_policys_retry_of_a_run_whose_connection_was_renamed_starts_at_its_pipelines_connection(
    store: Store,
) -> None:
    """The deploy renamed ``rivery`` to ``rivery-eu``; the watch followed the run there and heard its end. The
    pipeline's policy retries it where the pipeline runs now (before: no retry, the failure alerted at once; a retry
    on "rivery" would have ended "did not start")."""
    gone = await store.runs.finish((await _polled(store, provider_run_id="r-2")).id, RunState.UNKNOWN, "held", now=NOW)
    assert gone is not None and await _retrier(store).maybe_retry(gone)
    retry = await store.runs.retry_of(gone.id)
    assert retry is not None and retry.connection == "rivery-eu" and retry.provider == "rivery"
    assert retry.job == {"river_id": "r1"} and retry.attempt == 2


async def test_no_retry_where_the_pipeline_is_gone_or_on_another_provider(store: Store) -> None:
    moved = """
defaults: {channel: C0ALERTS}
connections:
  rivery-eu: {provider: tailer, token: "${TOKEN}"}
pipelines:
  leads-ods: {connection: rivery-eu, account: "000099", environment: DEV, configuration_type: table-to-table,
              configuration_id: c1, retry: {attempts: 3, "on": [failed, unknown]}}
"""  # the pipeline moved to another provider: the run's job means nothing there
    for source in (moved, CATALOG.replace("  leads-ods:", "  other:")):
        gone = await store.runs.finish((await _polled(store, provider_run_id=f"r-{len(source)}")).id,
                                       RunState.UNKNOWN, "held", now=NOW)
        assert gone is not None and not await _retrier(store, source).maybe_retry(gone)
        assert await store.runs.retry_of(gone.id) is None
    gone = await store.runs.finish((await _polled(store, provider_run_id="r-9")).id, RunState.UNKNOWN, "held", now=NOW)
    assert gone is not None
    elsewhere = dataclasses.replace(gone, connection="rivery-eu", provider="tailer")  # the name, another provider's
    assert not await _retrier(store).maybe_retry(elsewhere)
    followed = dataclasses.replace(gone, connection="rivery-eu")
    assert await _retrier(store).maybe_retry(followed)  # the same end on a connection the catalog has: retried


def test_its_workflow_step_ends_canceled_and_its_builder_step_says_who_ended_it() -> None:
    base = RunRecord(
        id=7, pipeline="budget", provider="invision", connection="invision", job={}, parameters={},
        provider_run_id="f-1", state=StoredState.UNKNOWN, raw_status="Pending", message="", warning="", tasks=(),
        extra={"stopped_by": "U0CAROL"}, final=True, origin=RunOrigin.WORKFLOW, started_by=None, channel=None,
        retry_of=None, attempt=1, created_at=NOW, updated_at=NOW, started_at=NOW, ended_at=NOW, next_poll_at=None,
        polls=3, unknown_since=NOW, last_error="", acknowledged_by=None, acknowledged_at=None,
    )
    assert _step_state(base) is StepState.CANCELED
    assert _step_state(dataclasses.replace(base, extra={})) is StepState.FAILED  # an unknown end of its own
    said = _failure(base)
    assert said.startswith("Run #7 of budget was ended by @U0CAROL without its outcome"), said
    assert "invision" in said and "unknown" in said
