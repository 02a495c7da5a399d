"""Starts the bot makes on its own (retries and starts held by a provider's cap, schedules), against a real emulator
and store: found by the third independent pass (issue 11)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.catalog.catalog import Catalog
from bot.catalog.load import parse_catalog
from bot.emulators.standalone import build_emulator
from bot.errors import UserError
from bot.service.alerts import Alerter
from bot.service.clients import ClientPool
from bot.service.notify import Notifier
from bot.service.outcomes import Changes, Outcomes
from bot.service.permissions import Authorizer
from bot.service.recovery import Recovery
from bot.service.retries import Retrier, WaitingStarts
from bot.service.runs import RunService
from bot.service.workflows import WorkflowEngine
from bot.slack.reporter import SlackReporter
from bot.store.records import NewRun, RunOrigin
from bot.store.store import Store
from bot.store.tables import alerts, cards, outbox


def now() -> datetime:
    return datetime.now(UTC)


async def nobody(group: str) -> frozenset[str]:
    return frozenset()


def catalog_for(url: str, pipelines: dict[str, Any]) -> Catalog:
    return parse_catalog(
        {
            "version": 1,
            "defaults": {"channel": "C0ALERTS", "owners": ["U0OWNER1"]},
            "connections": {
                "inv": {
                    "provider": "invision",
                    "base_url": url.rstrip("/") + "/invision/",
                    "api_key": "${INV_KEY}",
                    "timeout_seconds": 20,
                    "max_concurrency": 4,
                }
            },
            "pipelines": pipelines,
        },
        env={"INV_KEY": "k" * 12},
    )


class Bot:
    """The services of a process, wired as ``bot.runtime`` wires them."""

    def __init__(self, store: Store, catalog: Catalog, lease: timedelta) -> None:
        self.store = store
        self.pool = ClientPool.for_catalog(catalog)
        reporter = SlackReporter(store, now)
        self.notifier = Notifier(store, catalog, self.pool, reporter, now)
        self.alerter = Alerter(store, catalog, self.pool, reporter, now, group_window=timedelta(0))
        changes = Changes()
        auth = Authorizer(frozenset(), nobody)
        self.runs = RunService(store, self.pool, auth, self.notifier, now, owner="me", lease=lease, changes=changes)
        retrier = Retrier(store, catalog, self.notifier, now=now)
        workflows = WorkflowEngine(store, catalog, self.runs, self.notifier, auth, now=now)
        outcomes = Outcomes(store, self.notifier, self.alerter, retrier, workflows)
        changes.subscribe(outcomes.on_change)
        self.recovery = Recovery(store, self.notifier, outcomes, now)
        self.retrier = WaitingStarts(store, catalog, self.pool, self.notifier, outcomes, now=now, owner="me",
                                     lease=lease)


@pytest.fixture
async def pools() -> AsyncIterator[list[ClientPool]]:
    made: list[ClientPool] = []
    yield made
    for pool in made:
        await pool.aclose()


@pytest.fixture
async def emulator() -> AsyncIterator[Any]:
    server = build_emulator("invision")
    await server.start()
    yield server
    await server.stop()


async def test_retries_claimed_together_keep_their_leases_while_an_earlier_trigger_is_slow(
    sqlite_store: Store, emulator: Any, pools: list[ClientPool]
) -> None:
    """Two retries due at once: the retrier starts them one after another, and a trigger answered after longer than
    the lease made recovery give the second one up ("the bot stopped while starting") although its process was
    alive and about to trigger it; it was then triggered all the same."""
    from bot.emulators._core import Fault

    emulator.state.add_fault(Fault.parse({"route": "trigger", "kind": "delay", "delay": 3.0}))
    lease = timedelta(seconds=1)
    catalog = catalog_for(emulator.url, {
        name: {"connection": "inv", "dataflow_id": f"flow-{name}", "retry": {"attempts": 2, "backoff": "1m"}}
        for name in ("a", "b")
    })
    bot = Bot(sqlite_store, catalog, lease)
    pools.append(bot.pool)
    for name in ("a", "b"):
        await sqlite_store.runs.create(
            NewRun(provider="invision", connection="inv", job=catalog.pipelines[name].job.model_dump(), parameters={},
                   origin=RunOrigin.RETRY, pipeline=name, started_by=None, channel="C0ALERTS", retry_of=None, attempt=2,
                   start_at=now()),
            now=now(), next_poll_at=None,
        )
    given_up: list[int] = []

    async def recover() -> None:
        while True:
            await asyncio.sleep(0.2)
            given_up.extend(r.id for r in await bot.recovery.recover_starting(timedelta(seconds=30)))

    recovery = asyncio.create_task(recover())
    try:
        assert await bot.retrier.tick() == 2
    finally:
        recovery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recovery  # raises what the recovery loop raised: a loop that died would give nothing up
    assert given_up == []
    for run_id in (1, 2):
        events = [state for _, state, _, _ in await sqlite_store.runs.events(run_id)]
        assert events == ["queued"], (run_id, events)


async def test_a_scheduled_start_the_provider_refuses_is_shown_in_the_channel_with_its_owners(
    sqlite_store: Store, emulator: Any, pools: list[ClientPool]
) -> None:
    """Nobody waits for a reply to a schedule's start: when the provider refused it (or could not be reached), the
    run ended "not started" with no card, no message and no alert, only a log line: the pipeline silently did not
    run at its slot."""
    from bot.emulators._core import Fault

    # a refusal that waiting will not cure (a busy 429/503 waits its turn: tests/scenario/test_busy_first_start.py)
    emulator.state.add_fault(Fault.parse({"route": "trigger", "kind": "status", "status": 400, "times": 100}))
    catalog = catalog_for(emulator.url, {"nightly": {"connection": "inv", "dataflow_id": "flow-n",
                                                     "schedule": {"cron": "0 6 * * *"}}})
    bot = Bot(sqlite_store, catalog, timedelta(seconds=60))
    pools.append(bot.pool)
    with pytest.raises(UserError):
        await bot.runs.start(None, catalog.pipelines["nightly"], {}, channel=None, origin=RunOrigin.SCHEDULE, authorized=True)
    await bot.alerter.flush()
    async with sqlite_store.engine.connect() as conn:
        shown = [(r.key, r.channel) for r in await conn.execute(select(cards))]
        told = [r.text for r in await conn.execute(select(outbox))]
        alerted = [(r.pipeline, r.channel) for r in await conn.execute(select(alerts))]
    assert shown and shown[0][1] == "C0ALERTS"
    assert alerted == [("nightly", "C0ALERTS")]
    assert any("not start" in text for text in told), told
    details = [r for r in told if "U0OWNER1" in r or "failed" in r or "unknown" in r]
    assert details, told
