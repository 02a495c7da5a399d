"""DataKitchen's run list while orders are removed (seventeenth independent pass, b).

``list_runs`` (``watch``, ``last``, ``stats``) and ``disable`` / ``enable`` read a recipe's orders one page after the
other, newest first. Orders removed above a page's end move the list up: the next page began after orders never
seen. Run with the emulator (70 orders, the 3 newest removed once the first page is answered): 67 runs listed for
67, but 3 of them the removed orders' and 3 orders left out; ``disable`` failed for the removed ones and left the 3
unseen orders running, counted nowhere ("paused 61 of the 64")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.errors import ProviderResponseError
from bot.providers import datakitchen
from tests.contract.case_datakitchen import KITCHEN, PASSWORD, RECIPE, USERNAME, VARIATION
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder

JOB = datakitchen.Job(kitchen=KITCHEN, recipe=RECIPE, variation=VARIATION)
KEY = f"{KITCHEN}/{RECIPE}/{VARIATION}"


class Pruned(DataKitchenEmulator):
    """The newest orders removed (the console) right after the first page is answered, ``times`` times."""

    removed = 3
    times = 1

    async def on_order_status(self, request: web.Request) -> web.StreamResponse:
        answer = await super().on_order_status(request)
        if request.query.get("start") == "0" and self.times > 0:
            self.times -= 1
            newest = sorted(self.orders.values(), key=lambda o: o.created_at, reverse=True)[: self.removed]
            for order in newest:
                del self.orders[order.order_id]
        return answer


@pytest.fixture
async def dk() -> AsyncIterator[tuple[Pruned, datakitchen.Client, ManualClock]]:
    clock = ManualClock()
    state = EmulatorState(clock=clock, default=None)
    state.script(KEY, Outcome(queued_s=10, running_s=600))
    emulator = Pruned(state, users={USERNAME: PASSWORD}, strict=True)
    url = await emulator.start()
    conn = datakitchen.Connection(base_url=url, username=USERNAME, password=PASSWORD, timeout_seconds=5)
    client = datakitchen.Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder())
    for _ in range(70):
        emulator.external_run(KEY, {})
        clock.advance(0.01)
    yield emulator, client, clock
    await client.aclose()
    await emulator.stop()


async def test_orders_removed_while_the_pages_are_read_leave_no_run_out(
    dk: tuple[Pruned, datakitchen.Client, ManualClock],
) -> None:
    emulator, client, clock = dk
    since = datetime.fromtimestamp(clock.now(), UTC) - timedelta(hours=1)
    listed = [r.run_id for r in await client.list_runs(JOB, since=since, limit=100)]
    left = {f"{o.order_id}/{o.servings[0]}" for o in emulator.orders.values()}
    assert len(left) == 67
    assert sorted(listed) == sorted(left)  # each run left once, none of the removed orders'


async def test_orders_removed_while_a_pause_reads_them_leave_none_running(
    dk: tuple[Pruned, datakitchen.Client, ManualClock],
) -> None:
    emulator, client, _ = dk
    await client.disable(JOB)
    assert [o.order_id for o in emulator.orders.values() if not o.paused] == []


async def test_orders_removed_at_every_reading_are_said(dk: tuple[Pruned, datakitchen.Client, ManualClock]) -> None:
    emulator, client, clock = dk
    emulator.times = 10
    since = datetime.fromtimestamp(clock.now(), UTC) - timedelta(hours=1)
    with pytest.raises(ProviderResponseError, match="kept changing while they were read"):
        await client.list_runs(JOB, since=since, limit=100)


async def test_a_batched_poll_read_one_page_after_the_other_leaves_moved_orders_to_their_own_polls(
    dk: tuple[Pruned, datakitchen.Client, ManualClock],
) -> None:
    emulator, client, clock = dk
    asked = [(JOB, o.order_id) for o in emulator.orders.values()]  # oldest first: the last ones on the first page
    since = datetime.fromtimestamp(clock.now(), UTC) - timedelta(hours=1)
    found = await client.statuses(asked, since=since)  # no slots: one page after the other
    # the first page's (the 3 removed as it showed them), nothing raised: the others are polled on their own
    assert set(found) <= {run_id for _, run_id in asked} and len(found) >= 50, len(found)
