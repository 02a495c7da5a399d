"""A process stopped between an alert's change and its PagerDuty event (issue 11's lows, found by the ninth and tenth
passes): the failure's trigger, or the resolution's resolve, was recorded by a second store call after the alert's
own transaction, so a stop in between lost it for good: the on-call person never paged, or an incident left open
for an alert Slack shows resolved. Each is now recorded in the alert's transaction; the next start sends it. On
SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bot.catalog.load import parse_catalog
from bot.models import RunState
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.service.paging import Pager
from bot.slack.reporter import SlackReporter
from bot.store.store import Store
from tests.unit.service.test_paging_race import CATALOG, at, ended, running


class Stopped(BaseException):
    """The process stopped here (SIGKILL, a crash): nothing after this line ran."""


def _alerter(store: Store) -> tuple[Alerter, Pager]:
    catalog = parse_catalog(yaml.safe_load(CATALOG), {"TOKEN": "t0ken-value", "PD_KEY": "k" * 32})
    pool = ClientPool.for_catalog(catalog)
    pager = Pager(store, catalog, pool, lambda: at(30))
    return Alerter(store, catalog, pool, SlackReporter(store, lambda: at(30)), lambda: at(30), pager=pager), pager


async def test_a_stop_right_after_a_failure_is_recorded_still_pages_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    alerter, pager = _alerter(store)

    async def stop(*_: Any, **__: Any) -> bool:
        raise Stopped

    monkeypatch.setattr(pager, "trigger", stop)
    failed = await ended(store, await running(store, 0), RunState.FAILED, 20)
    with pytest.raises(Stopped):
        await alerter.on_failure(failed, card_channel=None)
    [alert] = await store.alerting.open_alerts()
    events = await store.paging.of_alert(alert.id)
    assert [(e.action, e.state.value) for e in events] == [("trigger", "pending")]  # the next start sends it
    assert "orders on" in events[0].event["summary"] and events[0].event["custom_details"]["run"] == f"#{failed.id}"


async def test_a_stop_right_after_a_resolution_is_recorded_still_resolves_the_incident(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    alerter, pager = _alerter(store)
    first = await running(store, 0)
    second = await running(store, 5)  # begun after the failing one: its success resolves the alert
    alert = await alerter.on_failure(await ended(store, first, RunState.FAILED, 20), card_channel=None)
    assert alert is not None

    async def stop(*_: Any, **__: Any) -> None:
        raise Stopped

    monkeypatch.setattr(pager, "resolve", stop)
    with pytest.raises(Stopped):
        await alerter.on_success(await ended(store, second, RunState.SUCCEEDED, 25))
    resolved = await store.alerting.get(alert.id)
    assert resolved is not None and resolved.recovered_at is not None
    events = await store.paging.of_alert(alert.id)
    assert [(e.action, e.state.value) for e in events] == [("trigger", "pending"), ("resolve", "pending")]
    assert events[1].event == {"run": f"#{second.id}"}
