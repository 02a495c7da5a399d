"""A card is drawn from the run as it is when the drawing starts, not from the copy its caller read earlier."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from sqlalchemy import select

from bot.catalog.load import parse_catalog
from bot.models import RunState, RunStatus
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.service.notify import Notifier
from bot.service.paging import Pager
from bot.service.permissions import Authorizer
from bot.service.runs import RunService
from bot.service.workflows import WorkflowEngine
from bot.slack.reporter import SlackReporter
from bot.store import keys
from bot.store.alerting import Alert
from bot.store.records import NewRun, RunOrigin, RunRecord
from bot.store.store import Store
from bot.store.tables import cards
from bot.store.workflow_runs import StepState, WorkflowState

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
CATALOG = """
connections:
  dk: {provider: datakitchen, username: bot, password: "${PW}"}
pipelines:
  orders: {connection: dk, kitchen: k, recipe: r, variation: a, owners: [U0BOB]}
"""


async def test_a_card_redrawn_from_a_copy_read_before_a_click_still_shows_the_click(sqlite_store: Store) -> None:
    """Found by CI (tests/scenario/test_home.py): the alert's link redrew the card from the run it had read before
    Alice acknowledged it; written last, the card no longer said she was on it."""
    store = sqlite_store
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"PW": "secret-pw"})
    notifier = Notifier(store, catalog, ClientPool.for_catalog(catalog), SlackReporter(store, lambda: NOW), lambda: NOW)
    run = await store.runs.create(
        NewRun(provider="datakitchen", connection="dk", job={"kitchen": "k", "recipe": "r", "variation": "a"},
               parameters={}, origin=RunOrigin.SLACK, pipeline="orders", channel="C1", provider_run_id="o-1"),
        now=NOW, next_poll_at=None,
    )
    change = await store.runs.record_status(run.id, RunStatus("o-1", RunState.FAILED, "Failed", ended_at=NOW),
                                            now=NOW, next_poll_at=None)
    assert change is not None
    stale = change.run
    await store.runs.acknowledge(run.id, "U0ALICE", now=NOW)
    await notifier.refresh_card(stale)  # the copy read before the click
    card = await store.cards.of_run(run.id)
    assert card is not None and "<@U0ALICE> is on it" in json.dumps(card.blocks)


ALERTS = """
defaults: {channel: C0ALERTS, owners: [U0BOB]}
connections:
  rv: {provider: rivery, api: v1, base_url: "http://127.0.0.1:1", account_id: a, environment_id: e, api_token: "${TOKEN}"}
pipelines:
  orders: {connection: rv, river_id: r1}
  sales: {connection: rv, river_id: r2}
"""


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


async def ran(store: Store, pipeline: str, created: float, state: RunState) -> RunRecord:
    """A run of ``pipeline`` created at ``created`` s, ended ``state`` 10 s later."""
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rv", job={"river_id": pipeline}, parameters={}, origin=RunOrigin.SLACK,
               pipeline=pipeline, channel="C0GENERAL", provider_run_id=f"{pipeline}-{created}"),
        now=at(created), next_poll_at=None,
    )
    status = RunStatus(f"{pipeline}-{created}", state, state.value.upper(), final=True, ended_at=at(created + 10))
    change = await store.runs.record_status(run.id, status, now=at(created + 10), next_poll_at=None)
    assert change is not None
    return change.run


async def test_a_grouped_alert_redrawn_from_stale_facts_never_overwrites_a_later_drawing(store: Store) -> None:
    """Eleventh pass: two pipelines' failures announced in one message, both recovered in one poll (two tasks of
    the poller, or two replicas). The first recovery's rewrite read the group before the second recovery and wrote
    after the second's rewrite: the message said the second pipeline was still failing, for good."""
    clock = [at(0)]
    catalog = parse_catalog(yaml.safe_load(ALERTS), {"TOKEN": "t0ken-value"})
    alerter = Alerter(store, catalog, ClientPool.for_catalog(catalog), SlackReporter(store, lambda: clock[0]),
                      lambda: clock[0])
    for pipeline in ("orders", "sales"):
        await alerter.on_failure(await ran(store, pipeline, 0, RunState.FAILED), card_channel=None)
    clock[0] = at(60)
    [message_key] = await alerter.flush()
    orders_ok = await ran(store, "orders", 20, RunState.SUCCEEDED)
    sales_ok = await ran(store, "sales", 20, RunState.SUCCEEDED)

    group = store.alerting.group
    reads: list[str] = []

    async def sales_recovers_meanwhile(key: str) -> list[Alert]:
        found = await group(key)
        reads.append(key)
        if len(reads) == 2:  # orders' rewrite read the group it draws: the sales success is handled now, wholly
            await alerter.on_success(sales_ok)
        return found

    store.alerting.group = sales_recovers_meanwhile  # type: ignore[method-assign]
    await alerter.on_success(orders_ok)
    assert len(reads) > 2  # the sales success was handled in the middle
    message = await _card(store, message_key)
    assert "2 recovered" in message and "Retry" not in message, message


async def _card(store: Store, key: str) -> str:
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(cards.c.text, cards.c.blocks).where(cards.c.key == key))).first()
    assert row is not None
    return json.dumps([row.text, row.blocks])


PAGED = """
defaults: {channel: C0ALERTS, owners: [U0BOB], pagerduty: {routing_key: "${PD_KEY}"}}
connections:
  rv: {provider: rivery, api: v1, base_url: "http://127.0.0.1:1", account_id: a, environment_id: e, api_token: "${TOKEN}"}
pipelines:
  orders: {connection: rv, river_id: r1}
"""


async def test_an_alert_rewritten_for_a_page_sent_during_its_flush_keeps_its_story(sqlite_store: Store) -> None:
    """Eleventh pass: a page sent while the flush wrote the alert's message got the message rewritten to show it,
    but without its story (timeline, failed run, console link): nothing else rewrote it, so it stayed bare."""
    store = sqlite_store
    clock = [at(0)]
    catalog = parse_catalog(yaml.safe_load(PAGED), {"TOKEN": "t0ken-value", "PD_KEY": "k" * 32})
    pool = ClientPool.for_catalog(catalog)
    pager = Pager(store, catalog, pool, lambda: clock[0])
    reporter = SlackReporter(store, lambda: clock[0], paging=True)
    alerter = Alerter(store, catalog, pool, reporter, lambda: clock[0], pager=pager)
    alert = await alerter.on_failure(await ran(store, "orders", 0, RunState.FAILED), card_channel=None)
    assert alert is not None
    [trigger] = await store.paging.of_alert(alert.id)

    flush = store.alerting.flush

    async def page_sent_meanwhile(**kw: Any) -> list[str]:
        written = await flush(**kw)
        await store.paging.sent(trigger.id, now=clock[0])  # the sender heard PagerDuty's 202 just now
        return written

    store.alerting.flush = page_sent_meanwhile  # type: ignore[method-assign]
    clock[0] = at(60)
    [key] = await alerter.flush()
    message = await _card(store, key)
    assert "*Timeline*" in message and "Duration" in message, message  # the run's facts and timeline stay


FLOW = """
defaults: {channel: C0ALERTS}
connections:
  rv: {provider: rivery, api: v1, base_url: "http://127.0.0.1:1", account_id: a, environment_id: e, api_token: "${TOKEN}"}
pipelines:
  orders: {connection: rv, river_id: r1}
  sales: {connection: rv, river_id: r2}
workflows:
  nightly:
    channel: C0ALERTS
    steps:
      ingest: {pipeline: orders, on_success: publish}
      publish: {pipeline: sales}
"""


async def test_a_workflow_card_drawn_from_stale_facts_never_overwrites_a_later_drawing(sqlite_store: Store) -> None:
    """Eleventh pass: two renders of one workflow's card at once (two steps ending in one poll, a decision and a
    tick); the one that read the workflow before the other's change wrote last: the card said running for good."""
    store = sqlite_store
    catalog = parse_catalog(yaml.safe_load(FLOW), {"TOKEN": "t0ken-value"})

    async def nobody(group: str) -> frozenset[str]:
        return frozenset()

    pool = ClientPool.for_catalog(catalog)
    notifier = Notifier(store, catalog, pool, SlackReporter(store, lambda: NOW), lambda: NOW)
    runs = RunService(store, pool, Authorizer([], nobody), notifier, lambda: NOW)
    engine = WorkflowEngine(store, catalog, runs, notifier, runs.auth, now=lambda: NOW)
    record = await store.workflows.create("nightly", ["ingest", "publish"], parameters={}, origin=RunOrigin.SLACK,
                                          started_by="U0ALICE", channel="C0ALERTS", now=NOW)
    await engine.render(record.id)

    of_workflow = store.runs.of_workflow
    changed: list[bool] = []

    async def ended_meanwhile(workflow_run_id: int) -> list[RunRecord]:
        found = await of_workflow(workflow_run_id)
        if not changed:  # the first render read the workflow running: it ends now, and its end is drawn
            changed.append(True)
            for step in ("ingest", "publish"):
                await store.workflows.set_step(record.id, step, StepState.SUCCEEDED, now=NOW)
            await store.workflows.set_state(record.id, WorkflowState.SUCCEEDED, now=NOW)
            await engine.render(record.id)
        return found

    store.runs.of_workflow = ended_meanwhile  # type: ignore[method-assign]
    await engine.render(record.id)
    assert changed
    card = await _card(store, keys.workflow_card(record.id))
    assert "nightly succeeded" in card, card


async def test_a_cannot_reach_message_drawn_before_the_connection_came_back_never_overwrites_its_back(
    store: Store,
) -> None:
    """Eleventh pass: a poll failing and another answering at once (two tasks of the poller, two replicas). The
    failing one opened the "cannot reach" alert and wrote its message after the answering one had closed it and
    written "answers again": the message said "cannot reach" for good, under its own "is back" notice."""
    catalog = parse_catalog(yaml.safe_load(ALERTS), {"TOKEN": "t0ken-value"})
    alerter = Alerter(store, catalog, ClientPool.for_catalog(catalog), SlackReporter(store, lambda: NOW),
                      lambda: NOW, down_after=timedelta(0))
    claim = store.alerting.claim_unreachable_alert
    opened: list[Alert] = []

    async def back_meanwhile(connection: str, **kw: Any) -> Alert | None:
        alert = await claim(connection, **kw)
        if alert is not None:  # the other poll answers now, before the "cannot reach" message is written
            opened.append(alert)
            await alerter.connection_ok(connection)
        return alert

    store.alerting.claim_unreachable_alert = back_meanwhile  # type: ignore[method-assign]
    await alerter.connection_failed("rv", "connection refused")
    [alert] = opened
    message = await _card(store, keys.health_message("rv", alert.id))
    assert "answers again" in message and "Cannot reach" not in message, message
