"""DataKitchen's run list while orders are created (sixteenth independent pass, b).

``list_runs`` (``watch``, ``last``, ``stats``) and ``pause`` read a recipe's orders one page after the other, newest
first. Orders created between two pages push the list down: the next page began with orders the page before held,
and each of their runs was listed again (three orders created: 73 runs listed for 70, counted twice by ``stats``).
Run with the DataKitchen emulator, orders created while the first page's answer travels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.providers import datakitchen
from tests.contract.case_datakitchen import KITCHEN, PASSWORD, RECIPE, USERNAME, VARIATION
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder

JOB = datakitchen.Job(kitchen=KITCHEN, recipe=RECIPE, variation=VARIATION)
KEY = f"{KITCHEN}/{RECIPE}/{VARIATION}"


class Busy(DataKitchenEmulator):
    """Orders created (the console, a schedule) right after the first page is answered."""

    def __init__(self, *args: object, clock: ManualClock, created: int, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.clock, self.to_create = clock, created

    async def on_order_status(self, request: web.Request) -> web.StreamResponse:
        answer = await super().on_order_status(request)
        if request.query.get("start") == "0":
            for _ in range(self.to_create):
                self.clock.advance(0.01)
                self.external_run(KEY, {})
            self.to_create = 0
        return answer


@pytest.fixture
async def dk() -> AsyncIterator[tuple[Busy, datakitchen.Client, ManualClock]]:
    clock = ManualClock()
    state = EmulatorState(clock=clock, default=None)
    state.script(KEY, Outcome(queued_s=10, running_s=600))
    emulator = Busy(state, clock=clock, created=3, users={USERNAME: PASSWORD}, strict=True)
    url = await emulator.start()
    conn = datakitchen.Connection(base_url=url, username=USERNAME, password=PASSWORD, timeout_seconds=5)
    client = datakitchen.Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder())
    yield emulator, client, clock
    await client.aclose()
    await emulator.stop()


async def test_orders_created_while_the_pages_are_read_list_each_run_once(
    dk: tuple[Busy, datakitchen.Client, ManualClock],
) -> None:
    emulator, client, clock = dk
    for _ in range(70):
        emulator.external_run(KEY, {})
        clock.advance(0.01)
    before = {f"{o.order_id}/{o.servings[0]}" for o in emulator.orders.values()}
    since = datetime.fromtimestamp(clock.now(), UTC) - timedelta(hours=1)
    listed = [r.run_id for r in await client.list_runs(JOB, since=since, limit=100)]
    assert len(listed) == len(set(listed)), sorted(r for r in listed if listed.count(r) > 1)
    assert before <= set(listed)  # every run there before the list was read is in it
