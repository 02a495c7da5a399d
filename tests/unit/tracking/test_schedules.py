from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import yaml

from bot.catalog.catalog import Catalog
from bot.catalog.load import parse_catalog
from bot.catalog.model import Schedule
from bot.store.store import Store
from bot.tracking.schedules import ScheduleRunner, last_slot, scheduled_items

CATALOG = """
defaults: {channel: C0OPS}  # a schedule needs somewhere to show its runs
connections:
  dk: {provider: datakitchen, username: bot, password: "${PW}"}
pipelines:
  hourly:
    connection: dk
    kitchen: k
    recipe: r
    variation: v
    schedule: {cron: "0 * * * *", timezone: Europe/Oslo, missed: run_once}
  nightly:
    connection: dk
    kitchen: k
    recipe: r
    variation: w
    schedule: {cron: "30 2 * * *", timezone: Europe/Oslo, missed: skip}
"""


def catalog() -> Catalog:
    return parse_catalog(yaml.safe_load(CATALOG), {"PW": "secret-pw"})


def test_last_slot_respects_the_time_zone() -> None:
    schedule = Schedule(cron="30 2 * * *", timezone="Europe/Oslo")
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    slot = last_slot(schedule, now)
    assert slot is not None
    assert slot.astimezone(UTC) == datetime(2026, 11, 22, 1, 30, tzinfo=UTC)  # 02:30 in Oslo (UTC+1)


async def test_a_slot_fires_once_across_two_runners_sharing_a_database(store: Store) -> None:
    started: list[str] = []

    async def start(kind: str, name: str, params: dict[str, str]) -> None:
        started.append(name)

    now = datetime(2026, 11, 22, 12, 0, 5, tzinfo=UTC)
    runners = [ScheduleRunner(store, catalog(), start, owner=f"r{i}", now=lambda: now) for i in range(2)]
    [hourly] = [i for i in scheduled_items(catalog()) if i.name == "hourly"]
    fired = await asyncio.gather(*(r.fire(hourly) for r in runners), *(r.fire(hourly) for r in runners))
    assert sum(fired) == 1
    assert started == ["hourly"]


async def test_missed_slots_follow_their_policy_after_a_restart(store: Store) -> None:
    started: list[str] = []

    async def start(kind: str, name: str, params: dict[str, str]) -> None:
        started.append(name)

    clock = {"now": datetime(2026, 11, 22, 12, 0, 5, tzinfo=UTC)}
    runner = ScheduleRunner(store, catalog(), start, owner="a", now=lambda: clock["now"])
    await runner.catch_up()  # first start: schedules begin with their next slot
    assert started == []
    clock["now"] += timedelta(days=1, hours=3)  # down across an hourly slot and a nightly slot
    restarted = ScheduleRunner(store, catalog(), start, owner="b", now=lambda: clock["now"])
    await restarted.catch_up()
    assert started == ["hourly"]  # run_once: one run for all the missed hours; skip: none
    await restarted.catch_up()
    assert started == ["hourly"]  # and only once
