"""DataKitchen's batched poll reads a big kitchen's order pages several at once, in the connection's slots, and
answers as reading them one after the other would: the same runs found, the same left to their own polls, also
when orders are created while the pages are read (the list moves down between two pages' answers)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.models import JsonValue, RunState
from bot.providers import datakitchen
from bot.providers._http import Call
from bot.providers.datakitchen.batches import ORDERS_PAGE, PAGES_AT_ONCE
from tests.contract.case_datakitchen import KITCHEN, PASSWORD, RECIPE, USERNAME, VARIATION
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder

JOB = datakitchen.Job(kitchen=KITCHEN, recipe=RECIPE, variation=VARIATION)
KEY = f"{KITCHEN}/{RECIPE}/{VARIATION}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def dk(clock: ManualClock) -> AsyncIterator[tuple[DataKitchenEmulator, datakitchen.Client]]:
    state = EmulatorState(clock=clock, default=None)
    state.script(KEY, Outcome(queued_s=10, running_s=600))
    emulator = DataKitchenEmulator(state, users={USERNAME: PASSWORD}, strict=True)
    url = await emulator.start()
    conn = datakitchen.Connection(base_url=url, username=USERNAME, password=PASSWORD, timeout_seconds=5)
    client = datakitchen.Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder())
    yield emulator, client
    await client.aclose()
    await emulator.stop()


def _orders(emulator: DataKitchenEmulator, clock: ManualClock, n: int) -> list[str]:
    """``n`` orders of the kitchen, created one after the other; their ids newest first (the list's order)."""
    for _ in range(n):
        emulator.external_run(KEY, {})
        clock.advance(0.01)
    return [o.order_id for o in sorted(emulator.orders.values(), key=lambda o: o.created_at, reverse=True)]


def _since(clock: ManualClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC) - timedelta(hours=1)


class Slots:
    """The connection's slots (a semaphore), counting how many pages held one at once."""

    def __init__(self, free: int) -> None:
        self.semaphore = asyncio.Semaphore(free)
        self.held = self.most = 0

    async def __aenter__(self) -> None:
        await self.semaphore.acquire()
        self.held += 1
        self.most = max(self.most, self.held)

    async def __aexit__(self, *_: object) -> None:
        self.held -= 1
        self.semaphore.release()


def _counting(client: datakitchen.Client) -> tuple[list[int], list[int]]:
    """Wrap the client's calls: the ``start`` of each list call, and how many were under way at most."""
    starts: list[int] = []
    under_way = [0, 0]
    original: Callable[[Call], Awaitable[JsonValue]] = client._body

    async def body(call: Call) -> JsonValue:
        if call.params and "start" in call.params:
            starts.append(int(str(call.params["start"])))
        under_way[0] += 1
        under_way[1] = max(under_way[1], under_way[0])
        try:
            return await original(call)
        finally:
            under_way[0] -= 1

    client._body = body  # type: ignore[method-assign]
    return starts, under_way


async def test_a_big_kitchens_pages_are_read_at_once_with_the_answer_read_one_after_the_other_gives(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], clock: ManualClock
) -> None:
    emulator, client = dk
    ids = _orders(emulator, clock, 7 * ORDERS_PAGE + 20)
    clock.advance(20)
    # orders on every page, the oldest among them, one at each page's border, and one that is not in the kitchen
    asked = [(JOB, ids[i]) for i in (0, 48, 49, 50, 97, 98, 99, 200, len(ids) - 1)] + [(JOB, "no-such-order")]
    one_by_one = await client.statuses(asked, since=_since(clock))
    starts, under_way = _counting(client)
    slots = Slots(free=64)
    at_once = await client.statuses(asked, since=_since(clock), slots=slots)
    assert at_once == one_by_one
    assert set(at_once) == {run_id for _, run_id in asked} - {"no-such-order"}  # left to its own poll
    assert under_way[1] > 1 and slots.most <= PAGES_AT_ONCE - 1  # at once, one page on the caller's own slot
    assert starts[0] == 0 and sorted(starts[1:]) == [49 * p for p in range(1, len(starts))]  # each page once
    assert slots.held == 0


async def test_pages_are_read_on_the_callers_slot_alone_when_the_connection_has_none_free(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], clock: ManualClock
) -> None:
    emulator, client = dk
    ids = _orders(emulator, clock, 3 * ORDERS_PAGE)
    clock.advance(20)
    starts, under_way = _counting(client)
    slots = Slots(free=0)  # every slot of the connection is busy with other polls
    found = await asyncio.wait_for(client.statuses([(JOB, ids[-1])], since=_since(clock), slots=slots), 10)
    assert set(found) == {ids[-1]}
    assert under_way[1] == 1 and slots.most == 0
    assert starts == [0, 49, 98, 147]  # one after the other, to the kitchen's last (short) page


async def test_a_kitchen_answered_by_its_first_page_costs_one_call_as_before(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], clock: ManualClock
) -> None:
    emulator, client = dk
    ids = _orders(emulator, clock, 2 * ORDERS_PAGE)
    clock.advance(20)
    starts, _ = _counting(client)
    found = await client.statuses([(JOB, ids[0]), (JOB, ids[10])], since=_since(clock), slots=Slots(free=64))
    assert set(found) == {ids[0], ids[10]}
    await asyncio.sleep(0.05)  # any page read ahead would have been asked by now
    assert starts == [0]


async def test_an_order_that_moves_between_pages_while_they_are_read_is_still_found(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], clock: ManualClock
) -> None:
    """Page 4 is answered before page 3, and two orders are created in between: page 3's answer has moved down by
    two, so the two orders at the border of pages 3 and 4 are on neither answer. Page 4 no longer holds page 3's
    last order, so it is read again (after page 3): they are found, as reading one after the other finds them.
    (Pages 3 and 4, not 1 and 2: page 2 is asked only once page 1 came back full, see ``_Ahead._allowed``.)"""
    emulator, client = dk
    ids = _orders(emulator, clock, 6 * ORDERS_PAGE)
    clock.advance(20)
    border = [ids[194], ids[195]]  # page 3 is orders 147-196, page 4 orders 196-245
    asked = [(JOB, ids[0]), *[(JOB, i) for i in border], (JOB, ids[250])]
    starts: list[int] = []
    page_4_answered = asyncio.Event()
    original = client._body

    async def body(call: Call) -> JsonValue:
        start = int(str((call.params or {}).get("start", -1)))
        starts.append(start)
        if start == 147 and not page_4_answered.is_set():
            await page_4_answered.wait()
            for _ in range(2):  # created now: the newest orders, the list moves down by two
                clock.advance(0.01)
                emulator.external_run(KEY, {})
        answer = await original(call)
        if start == 196:
            page_4_answered.set()
        return answer

    client._body = body  # type: ignore[method-assign]
    found = await client.statuses(asked, since=_since(clock), slots=Slots(free=64))
    assert set(found) == {run_id for _, run_id in asked}
    assert starts.count(196) == 2  # page 4 read again, after page 3


async def test_an_order_two_pages_hold_is_as_the_page_answered_last_shows_it(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], clock: ManualClock
) -> None:
    """Pages read at once may be answered out of turn: the order at the border of pages 2 and 3 (on both), read
    while it goes from queued to running, is running, as the page answered last shows it, not queued as the later
    page answered first said (fourteenth pass c, a low; one after the other the later page is also the newer)."""
    emulator, client = dk
    ids = _orders(emulator, clock, 4 * ORDERS_PAGE + 20)
    border = ids[3 * (ORDERS_PAGE - 1)]  # the last order of page 2 (start 98) and the first of page 3 (start 147)
    created = emulator.orders[border].created_at
    clock.advance(created + 9.5 - clock.now())  # the border order queued for another half second (queued_s=10)
    page_3_answered = asyncio.Event()
    original: Callable[[Call], Awaitable[JsonValue]] = client._body

    async def body(call: Call) -> JsonValue:
        start = int(str((call.params or {}).get("start", -1)))
        if start == 2 * (ORDERS_PAGE - 1):  # page 2 is answered after page 3, a second later
            await page_3_answered.wait()
            clock.advance(1)
        got = await original(call)
        if start == 3 * (ORDERS_PAGE - 1):
            page_3_answered.set()
        return got

    client._body = body  # type: ignore[method-assign]
    found = await client.statuses([(JOB, border), (JOB, ids[-1])], since=_since(clock), slots=Slots(free=8))
    assert found[border].state is RunState.RUNNING
