"""The PagerDuty trigger against a success handled at the same moment (the tenth pass).

Two runs of a pipeline end between two polls, the first failed, the second (begun after it) succeeded: the poller
handles them in two tasks (or two replicas do). The failure's alert is recorded, then paged; the success resolves
the alert and resolves its page, if it was paged. A success handled between the two must not leave an incident
triggered on PagerDuty for an alert Slack shows resolved: nobody resolves it there, and the on-call person is paged
on and on. On SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import yaml

from bot.catalog.load import parse_catalog
from bot.models import RunState, RunStatus
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.service.paging import Pager
from bot.slack.reporter import SlackReporter
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
CATALOG = """
defaults: {channel: C0ALERTS, owners: [U0BOB], pagerduty: {routing_key: "${PD_KEY}"}}
connections:
  rv: {provider: rivery, api: v1, base_url: "http://127.0.0.1:1", account_id: a, environment_id: e, api_token: "${TOKEN}"}
pipelines:
  orders: {connection: rv, river_id: r1}
"""


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


async def running(store: Store, created: float) -> RunRecord:
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="orders", channel="C0GENERAL"),
        now=at(created), next_poll_at=None,
    )
    run = await store.starts.record_triggered(run.id, f"p-{run.id}", now=at(created), next_poll_at=at(created + 1))
    status = RunStatus(run.provider_run_id or "", RunState.RUNNING, "RUNNING", started_at=at(created))
    change = await store.runs.record_status(run.id, status, now=at(created), next_poll_at=at(created + 1))
    assert change is not None
    return change.run


async def ended(store: Store, run: RunRecord, state: RunState, when: float) -> RunRecord:
    status = RunStatus(run.provider_run_id or "", state, state.value.upper(), message="Table missing"
                       if state is RunState.FAILED else "", final=True, ended_at=at(when))
    change = await store.runs.record_status(run.id, status, now=at(when), next_poll_at=None)
    assert change is not None
    return change.run


async def test_a_success_handled_while_the_failure_is_paged_never_leaves_the_incident_open(store: Store) -> None:
    clock = [at(30)]
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "t0ken-value", "PD_KEY": "k" * 32})
    pool = ClientPool.for_catalog(catalog)
    pager = Pager(store, catalog, pool, lambda: clock[0])
    alerter = Alerter(store, catalog, pool, SlackReporter(store, lambda: clock[0]), lambda: clock[0], pager=pager)

    first = await running(store, 0)
    second = await running(store, 5)  # begun after the first: its success answers the first's failure
    failed = await ended(store, first, RunState.FAILED, 20)

    # the failure's alert is recorded; before its trigger is, the other task handles the second run's success
    asked = pager.store.paging.episode
    resolved: list[Any] = []
    handled: list[bool] = []

    async def success_meanwhile(alert_id: int, **kw: Any) -> int:
        if not handled:  # once: the success's own resolve asks for the episode too
            handled.append(True)
            succeeded = await ended(store, second, RunState.SUCCEEDED, 21)
            resolved.extend(await alerter.on_success(succeeded))
        return await asked(alert_id, **kw)

    pager.store.paging.episode = success_meanwhile  # type: ignore[method-assign]
    alert = await alerter.on_failure(failed, card_channel=None)
    assert alert is not None and [a.id for a in resolved] == [alert.id]  # the success did resolve it

    now = await store.alerting.get(alert.id)
    assert now is not None and now.recovered_at is not None
    actions = [e.action for e in await store.paging.of_alert(alert.id)]
    # never paged (it was resolved before the page was recorded), or paged and resolved after: never left open
    assert actions in ([], ["trigger", "resolve"]), actions


async def test_a_reopened_alert_resolved_by_a_replica_whose_clock_is_behind_resolves_its_incident(
    store: Store,
) -> None:
    """Eleventh pass: the episode a resolution ends was counted by time (reopenings at or before its recovery). A
    replica whose clock is a little behind the one that reopened the alert (or whose success read ``now``, then
    waited for the pipeline's lock while the alert was reopened) resolved it "before" the reopening: the resolve
    went to the first incident (sent already), the second stayed triggered on PagerDuty for good."""
    clock = [at(0)]
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "t0ken-value", "PD_KEY": "k" * 32})
    pool = ClientPool.for_catalog(catalog)
    pager = Pager(store, catalog, pool, lambda: clock[0])
    alerter = Alerter(store, catalog, pool, SlackReporter(store, lambda: clock[0]), lambda: clock[0], pager=pager,
                      group_window=timedelta(0))
    first = await running(store, 0)
    second = await running(store, 5)
    clock[0] = at(20)
    alert = await alerter.on_failure(await ended(store, first, RunState.FAILED, 20), card_channel=None)
    assert alert is not None
    await alerter.flush()
    clock[0] = at(40)
    await alerter.on_success(await ended(store, second, RunState.SUCCEEDED, 40))
    third = await running(store, 50)
    fourth = await running(store, 55)
    clock[0] = at(70)
    reopened = await alerter.on_failure(await ended(store, third, RunState.FAILED, 70), card_channel=None)
    assert reopened is not None and reopened.id == alert.id and reopened.recovered_at is None
    clock[0] = at(69.9)  # the other replica's clock, 100 ms behind
    [resolved] = await alerter.on_success(await ended(store, fourth, RunState.SUCCEEDED, 71))
    assert resolved.id == alert.id
    keys = [e.key for e in await store.paging.of_alert(alert.id)]
    assert keys == [f"pd:{alert.id}:trigger", f"pd:{alert.id}:resolve", f"pd:{alert.id}:trigger:1",
                    f"pd:{alert.id}:resolve:1"], keys
