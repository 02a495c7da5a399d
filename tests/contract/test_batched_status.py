"""Batched status calls (``Capability.STATUSES``) against the strict emulators: DataKitchen's order status of a
whole kitchen, Tailer's ``get_last_status`` of a configuration, Rivery v1's runs of a river. Each answers for many
runs in one call (and its pages), leaves out what it cannot settle, and fails as any status call does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.emulators._core import EmulatorState, Fault, ManualClock, Outcome
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.emulators.rivery import RiveryEmulator
from bot.emulators.tailer import TailerEmulator
from bot.errors import ProviderUnavailable
from bot.models import RunState
from bot.providers import datakitchen, rivery, tailer
from bot.providers.base import Capability
from tests.contract.case_datakitchen import KITCHEN, PASSWORD, RECIPE, USERNAME, VARIATION
from tests.contract.case_rivery import RIVER
from tests.contract.case_rivery import TOKEN as RIVERY_TOKEN
from tests.contract.case_tailer import SENT_CONFIGURATION_ID
from tests.contract.case_tailer import TOKEN as TAILER_TOKEN
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder

DK_JOB = datakitchen.Job(kitchen=KITCHEN, recipe=RECIPE, variation=VARIATION)
DK_OTHER = datakitchen.Job(kitchen=KITCHEN, recipe="Weekly_Report", variation="weekly")
TAILER_JOB = tailer.Job(account="000099", environment="DEV", configuration_type="table-to-table",
                        configuration_id="000099_iowa_liquor_prepare_pda")
RIVER_JOB = rivery.Job(river_id=RIVER)
ACCOUNT, ENVIRONMENT = "acc-1", "env-1"


def _key(job: datakitchen.Job) -> str:
    return f"{job.kitchen}/{job.recipe}/{job.variation}"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> EmulatorState:
    state = EmulatorState(clock=clock, default=None)
    for key in (_key(DK_JOB), _key(DK_OTHER), SENT_CONFIGURATION_ID, RIVER):
        state.script(key, Outcome(queued_s=10, running_s=60))
    return state


@pytest.fixture
async def dk(state: EmulatorState) -> AsyncIterator[tuple[DataKitchenEmulator, datakitchen.Client]]:
    emulator = DataKitchenEmulator(state, users={USERNAME: PASSWORD}, strict=True)
    url = await emulator.start()
    conn = datakitchen.Connection(base_url=url, username=USERNAME, password=PASSWORD, timeout_seconds=5)
    client = datakitchen.Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder())
    yield emulator, client
    await client.aclose()
    await emulator.stop()


@pytest.fixture
async def tl(state: EmulatorState) -> AsyncIterator[tuple[TailerEmulator, tailer.Client]]:
    emulator = TailerEmulator(state, tokens={TAILER_TOKEN}, strict=True)
    await emulator.start()
    conn = tailer.Connection(base_url=emulator.url, token=TAILER_TOKEN)
    client = tailer.Client("tailer-test", conn, retry=RETRY, sleep=SleepRecorder())
    yield emulator, client
    await client.aclose()
    await emulator.stop()


@pytest.fixture
async def rv(state: EmulatorState, clock: ManualClock) -> AsyncIterator[tuple[RiveryEmulator, rivery.Client]]:
    emulator = RiveryEmulator(state, tokens={RIVERY_TOKEN}, account_id=ACCOUNT, environment_id=ENVIRONMENT,
                              strict=True)
    await emulator.start()
    conn = rivery.Connection(api="v1", base_url=emulator.url, api_token=RIVERY_TOKEN, account_id=ACCOUNT,
                             environment_id=ENVIRONMENT, timeout_seconds=5)
    client = rivery.Client("rivery-v1", conn, retry=RETRY, sleep=SleepRecorder())
    client.now = lambda: datetime.fromtimestamp(clock.now(), UTC)
    yield emulator, client
    await client.aclose()
    await emulator.stop()


def _since(clock: ManualClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC) - timedelta(hours=1)


# -- DataKitchen ----------------------------------------------------------------------------------------------


async def test_datakitchen_answers_a_kitchens_runs_across_recipes_in_one_call(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], clock: ManualClock
) -> None:
    emulator, client = dk
    assert client.can(Capability.STATUSES)
    assert client.status_scope(DK_JOB) == client.status_scope(DK_OTHER)  # one kitchen, one scope
    ours = [await client.trigger(DK_JOB, {}) for _ in range(3)] + [await client.trigger(DK_OTHER, {})]
    clock.advance(20)
    asked = [(DK_JOB, t.run_id) for t in ours[:3]] + [(DK_OTHER, ours[3].run_id)]
    found = await client.statuses(asked, since=_since(clock))
    assert set(found) == {t.run_id for t in ours}
    assert {s.state for s in found.values()} == {RunState.RUNNING}
    for run_id, status in found.items():
        assert status == await client.get_status(DK_JOB if run_id != ours[3].run_id else DK_OTHER, run_id)
    lists = emulator.state.requests_to("list")
    assert len(lists) == 1
    assert lists[0].query == {"start": "0", "count": "50", "scount": "1"}  # the whole kitchen, no recipe filter


async def test_datakitchen_pages_until_every_asked_order_is_seen(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], clock: ManualClock
) -> None:
    emulator, client = dk
    oldest = await client.trigger(DK_JOB, {})
    clock.advance(1)
    for _ in range(60):  # newer orders of the kitchen push ours to the second page
        emulator.external_run(_key(DK_OTHER), {})
        clock.advance(0.1)
    newest = await client.trigger(DK_JOB, {})
    clock.advance(20)
    found = await client.statuses([(DK_JOB, oldest.run_id), (DK_JOB, newest.run_id)], since=_since(clock))
    assert set(found) == {oldest.run_id, newest.run_id}
    assert [q.query["start"] for q in emulator.state.requests_to("list")] == ["0", "49"]  # overlapping by one order


async def test_datakitchen_leaves_out_finished_runs_and_runs_the_list_does_not_show(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], clock: ManualClock
) -> None:
    emulator, client = dk
    emulator.state.script(_key(DK_OTHER), Outcome(queued_s=1, running_s=2))
    running = await client.trigger(DK_JOB, {})
    done = await client.trigger(DK_OTHER, {})
    clock.advance(20)
    hid = emulator.orders[running.run_id].servings[0]
    asked = [(DK_JOB, running.run_id), (DK_JOB, f"{running.run_id}/{hid}"), (DK_OTHER, done.run_id),
             (DK_JOB, "no-such-order"), (DK_JOB, "a/b/c")]
    found = await client.statuses(asked, since=_since(clock))
    # the finished run's details take a call of their own; an unknown order is not on any page
    assert set(found) == {running.run_id, f"{running.run_id}/{hid}"}
    assert (await client.get_status(DK_OTHER, done.run_id)).state is RunState.SUCCEEDED


async def test_datakitchen_batch_errors_are_a_status_calls_errors(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], clock: ManualClock
) -> None:
    emulator, client = dk
    run = await client.trigger(DK_JOB, {})
    clock.advance(20)
    emulator.state.add_fault(Fault(route="list", status=503, times=None))
    with pytest.raises(ProviderUnavailable):
        await client.statuses([(DK_JOB, run.run_id)], since=_since(clock))
    emulator.state.clear_faults()
    emulator.state.add_fault(Fault(route="list", status=429, retry_after=1, times=1))
    found = await client.statuses([(DK_JOB, run.run_id)], since=_since(clock))  # retried after Retry-After
    assert found[run.run_id].state is RunState.RUNNING


# -- Tailer ---------------------------------------------------------------------------------------------------


async def test_tailer_answers_a_configurations_runs_with_one_get_last_status(
    tl: tuple[TailerEmulator, tailer.Client], clock: ManualClock
) -> None:
    emulator, client = tl
    assert client.can(Capability.STATUSES)
    runs = [await client.trigger(TAILER_JOB, {}) for _ in range(4)]
    clock.advance(20)
    found = await client.statuses([(TAILER_JOB, r.run_id) for r in runs], since=_since(clock))
    assert set(found) == {r.run_id for r in runs}
    for run in runs:
        single = await client.get_status(TAILER_JOB, run.run_id)
        assert (found[run.run_id].state, found[run.run_id].raw_status) == (single.state, single.raw_status)
    bodies = [q.body for q in emulator.state.requests_to("status")
              if isinstance(q.body, dict) and q.body.get("action") == "get_last_status"]
    assert len(bodies) == 1
    assert bodies[0]["limit"] == 50 and "job_id" not in bodies[0]  # seed lines 87-91, 198-205


async def test_tailer_leaves_out_runs_beyond_its_limit(
    tl: tuple[TailerEmulator, tailer.Client], clock: ManualClock
) -> None:
    emulator, client = tl
    old = [await client.trigger(TAILER_JOB, {}) for _ in range(2)]
    for _ in range(60):  # newer runs of the configuration, started elsewhere
        clock.advance(0.1)
        emulator.state.start_run(SENT_CONFIGURATION_ID, external=True)
    found = await client.statuses([(TAILER_JOB, r.run_id) for r in old], since=_since(clock))
    assert found == {}  # beyond the 50 newest: each is asked on its own
    assert (await client.get_status(TAILER_JOB, old[0].run_id)).state is RunState.QUEUED


async def test_tailer_batch_error_is_a_status_calls_error(
    tl: tuple[TailerEmulator, tailer.Client], clock: ManualClock
) -> None:
    emulator, client = tl
    runs = [await client.trigger(TAILER_JOB, {}) for _ in range(2)]
    emulator.state.add_fault(Fault(route="status", status=429, retry_after=1, times=None))
    with pytest.raises(ProviderUnavailable):
        await client.statuses([(TAILER_JOB, r.run_id) for r in runs], since=_since(clock))


# -- Rivery v1 ------------------------------------------------------------------------------------------------


async def test_rivery_v1_answers_a_rivers_live_runs_from_its_runs_list(
    rv: tuple[RiveryEmulator, rivery.Client], clock: ManualClock
) -> None:
    emulator, client = rv
    assert client.can(Capability.STATUSES)
    emulator.configure({"river_runs_per_minute": 0, "token_runs_per_minute": 0})  # three runs in a minute
    runs = [await client.trigger(RIVER_JOB, {}) for _ in range(3)]
    clock.advance(20)
    found = await client.statuses([(RIVER_JOB, r.run_id) for r in runs], since=_since(clock))
    assert set(found) == {r.run_id for r in runs}
    assert {s.state for s in found.values()} == {RunState.RUNNING}
    assert len(emulator.state.requests_to("v1_runs")) == 1
    assert not emulator.state.requests_to("v1_status")


async def test_rivery_legacy_offers_no_batched_status() -> None:
    conn = rivery.Connection(api="legacy", api_token="t0ken-value")
    client = rivery.Client("legacy", conn)
    try:
        assert not client.can(Capability.STATUSES)
        assert client.status_scope(RIVER_JOB) is None
    finally:
        await client.aclose()


async def test_tailer_malformed_entries_concern_only_their_runs() -> None:
    good = {"account": "000099", "configuration_id": "000099_iowa_liquor_prepare_pda_DEV", "environment": "DEV",
            "job_id": "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV", "run_id": "20201230-a", "status": "RUNNING",
            "start_execution_date": "2020-12-30T11:28:43+00:00", "duration": "0:00:03.5"}
    answer = {"results": [
        "not an entry",
        {"run_id": ["20201230-b"], "status": "FAILED"},  # an id the bot cannot read: that run asks on its own
        {**good, "run_id": "20201230-c", "job_id": "another|job"},  # another job's run of the same id
        good,
    ]}

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=answer)

    http = httpx.AsyncClient(base_url="https://tailer.example/", transport=httpx.MockTransport(handle))
    async with tailer.Client("tailer-rows", tailer.Connection(token=TAILER_TOKEN), http=http, retry=RETRY) as client:
        asked = [(TAILER_JOB, r) for r in ("20201230-a", "20201230-b", "20201230-c")]
        found = await client.statuses(asked, since=datetime(2020, 12, 1, tzinfo=UTC))
    await http.aclose()
    assert list(found) == ["20201230-a"]
    assert found["20201230-a"].state is RunState.RUNNING
