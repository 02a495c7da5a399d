"""A small kitchen's batched poll costs what reading its pages one after the other costs (fourteenth pass c). Read
``PAGES_AT_ONCE`` at once from the second page on, a kitchen of 60 orders (its first page full, its second short)
took 9 calls every poll instead of 2: the seven pages asked with the second, past the kitchen's end, came back empty,
each holding one of the connection's slots (other polls, a cancel, waited behind them) and counting against the
provider's limits. How far ahead is read now grows as pages come back full."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.models import JsonValue
from bot.providers import datakitchen
from bot.providers._http import Call
from bot.providers.datakitchen.batches import ORDERS_PAGE
from tests.contract.case_datakitchen import KITCHEN, PASSWORD, RECIPE, USERNAME, VARIATION
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder
from tests.contract.test_datakitchen_pages import Slots

JOB = datakitchen.Job(kitchen=KITCHEN, recipe=RECIPE, variation=VARIATION)
KEY = f"{KITCHEN}/{RECIPE}/{VARIATION}"


@pytest.fixture
async def dk() -> AsyncIterator[tuple[DataKitchenEmulator, datakitchen.Client, ManualClock]]:
    clock = ManualClock()
    state = EmulatorState(clock=clock, default=None)
    state.script(KEY, Outcome(queued_s=10, running_s=600))
    emulator = DataKitchenEmulator(state, users={USERNAME: PASSWORD}, strict=True)
    url = await emulator.start()
    conn = datakitchen.Connection(base_url=url, username=USERNAME, password=PASSWORD, timeout_seconds=5)
    client = datakitchen.Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder())
    yield emulator, client, clock
    await client.aclose()
    await emulator.stop()


@pytest.mark.parametrize(("orders", "calls"), [(ORDERS_PAGE + 10, [0, 49]), (2 * ORDERS_PAGE + 20, [0, 49, 98, 147])])
async def test_a_small_kitchens_batched_poll_asks_no_page_past_its_end(
    dk: tuple[DataKitchenEmulator, datakitchen.Client, ManualClock], orders: int, calls: list[int]
) -> None:
    emulator, client, clock = dk
    for _ in range(orders):
        emulator.external_run(KEY, {})
        clock.advance(0.01)
    ids = [o.order_id for o in sorted(emulator.orders.values(), key=lambda o: o.created_at, reverse=True)]
    clock.advance(20)
    starts: list[int] = []
    original = client._body

    async def body(call: Call) -> JsonValue:
        starts.append(int(str((call.params or {}).get("start", -1))))
        return await original(call)

    client._body = body  # type: ignore[method-assign]
    slots = Slots(free=64)
    since = datetime.fromtimestamp(clock.now(), UTC) - timedelta(hours=1)
    found = await client.statuses([(JOB, ids[0]), (JOB, ids[-1])], since=since, slots=slots)
    assert set(found) == {ids[0], ids[-1]}
    assert sorted(starts) == calls  # no more pages past the kitchen's last than were asked for with a full one
    assert slots.held == 0
