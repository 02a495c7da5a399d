"""Runs being started belong to the process starting them (a lease it renews while the trigger is pending).
Recovery gives up only starts whose owner is gone, on SQLite and on PostgreSQL, where another replica's live
start is not its to give up; and a trigger answer that comes after a give-up resumes the run's tracking."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml
from sqlalchemy import update

from bot.catalog.load import parse_catalog
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.service.notify import Notifier
from bot.service.outcomes import Outcomes
from bot.service.permissions import Authorizer
from bot.service.recovery import Recovery
from bot.service.retries import Retrier
from bot.service.runs import RunService
from bot.service.workflows import WorkflowEngine
from bot.slack.reporter import SlackReporter
from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store
from bot.store.tables import runs

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(minutes=10)  # far older than any age cutoff recovery ever used
CATALOG = """
defaults: {channel: C0ALERTS}
connections:
  rivery: {provider: rivery, api_token: "${TOKEN}"}
pipelines:
  leads-ods: {connection: rivery, river_id: r1}
"""


def recovery(store: Store) -> Recovery:
    """Another replica's recovery (B), with the clock stopped at NOW."""
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "t0ken-value"})

    async def nobody(group: str) -> frozenset[str]:
        return frozenset()

    pool = ClientPool.for_catalog(catalog)
    reporter = SlackReporter(store, lambda: NOW)
    notifier = Notifier(store, catalog, pool, reporter, lambda: NOW)
    runs = RunService(store, pool, Authorizer([], nobody), notifier, lambda: NOW)
    alerter = Alerter(store, catalog, pool, reporter, lambda: NOW)
    retrier = Retrier(store, catalog, notifier, now=lambda: NOW)
    workflows = WorkflowEngine(store, catalog, runs, notifier, runs.auth, now=lambda: NOW)
    return Recovery(store, notifier, Outcomes(store, notifier, alerter, retrier, workflows), lambda: NOW)


async def starting(store: Store, *, owner: str | None, lease_until: datetime | None) -> int:
    """A run recorded ``starting`` ten minutes ago, whose lease ``owner`` holds until ``lease_until``."""
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rivery", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="leads-ods", started_by="U0ALICE", channel="C0ALERTS"),
        now=LONG_AGO, next_poll_at=None,
    )
    async with store.engine.begin() as conn:
        await conn.execute(
            update(runs).where(runs.c.id == run.id).values(lease_owner=owner, lease_expires_at=lease_until)
        )
    return run.id


async def test_recovery_gives_up_only_starts_whose_owner_is_gone(store: Store) -> None:
    live = await starting(store, owner="replica-a", lease_until=NOW + timedelta(seconds=20))
    expired = await starting(store, owner="replica-c", lease_until=NOW - timedelta(seconds=1))
    unleased = await starting(store, owner=None, lease_until=None)  # released by its owner at shutdown

    given_up = await recovery(store).recover_starting(timedelta(seconds=30))

    assert sorted(r.id for r in given_up) == [expired, unleased]
    assert all(r.final and r.state == "unknown" for r in given_up)
    kept = await store.runs.get(live)
    assert kept is not None and (kept.state, kept.final) == ("starting", False)  # replica A's trigger is pending
    # a start without a lease is given up only once older than the cutoff (a start of an older version)
    fresh = await store.runs.create(
        NewRun(provider="rivery", connection="rivery", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK),
        now=NOW - timedelta(seconds=5), next_poll_at=None,
    )
    assert await recovery(store).recover_starting(timedelta(seconds=30)) == []
    assert (await store.runs.get(fresh.id)) is not None


async def test_a_start_renewed_after_it_was_found_is_not_given_up(store: Store) -> None:
    """Recovery found the start orphaned, but its owner renewed before the give-up: the give-up is conditional
    on the lease still being expired, so two processes never both decide."""
    run = await starting(store, owner="replica-a", lease_until=NOW - timedelta(seconds=1))
    [found] = await store.starts.orphaned(now=NOW, unleased_before=NOW - timedelta(seconds=30))
    assert found.id == run
    assert await store.starts.renew_leases("replica-a", [run], until=NOW + timedelta(seconds=60)) == {run}
    assert await store.starts.give_up(run, "gone", now=NOW, unleased_before=NOW - timedelta(seconds=30)) is None
    # another owner cannot renew a lease that is not its own, nor anyone a run whose trigger answered
    assert await store.starts.renew_leases("replica-b", [run], until=NOW + timedelta(seconds=60)) == set()
    await store.starts.record_triggered(run, "p-1", now=NOW, next_poll_at=NOW)
    assert await store.starts.renew_leases("replica-a", [run], until=NOW + timedelta(seconds=60)) == set()


async def test_a_trigger_answer_after_the_give_up_resumes_tracking(store: Store) -> None:
    run_id = await starting(store, owner="replica-a", lease_until=NOW - timedelta(seconds=1))
    [given_up] = await recovery(store).recover_starting(timedelta(seconds=30))
    assert given_up.id == run_id and given_up.final

    later = NOW + timedelta(seconds=30)
    run = await store.starts.record_triggered(run_id, "p-1", now=later, next_poll_at=later)
    assert (run.state, run.final, run.provider_run_id, run.ended_at, run.message) == ("queued", False, "p-1", None, "")
    # polled again, so its real outcome is shown
    [due] = await store.runs.claim_due("replica-b", now=later, limit=10, lease=timedelta(seconds=60))
    assert due.id == run_id
    history = [state for _, state, _, _ in await store.runs.events(run_id)]
    assert history == ["unknown", "queued"]
    # the caller is told which answer resumed a run (its thread says so), and a run not given up is just queued
    again = await starting(store, owner="replica-a", lease_until=NOW - timedelta(seconds=1))
    other = await starting(store, owner="replica-a", lease_until=later + timedelta(seconds=60))
    await recovery(store).recover_starting(timedelta(seconds=30))
    assert (await store.starts.answered(again, "p-2", now=later, next_poll_at=later))[1]
    assert not (await store.starts.answered(other, "p-3", now=later, next_poll_at=later))[1]


async def test_a_failed_poll_tick_hands_back_its_polls_not_the_starts_of_its_process(store: Store) -> None:
    run = await starting(store, owner="replica-a", lease_until=NOW + timedelta(seconds=20))
    await store.runs.release_leases("replica-a")  # its poll tick failed midway: its triggers are still pending
    assert await recovery(store).recover_starting(timedelta(seconds=30)) == []
    kept = await store.runs.get(run)
    assert kept is not None and kept.state == "starting"
