"""A failed run's own log, as the failure's thread and its Full log read it: Rivery's log download (legacy API) and
DataKitchen's order-run details, against their emulators, with their faults (5xx, 429, malformed answers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.emulators._core import EmulatorState, Fault, ManualClock, Outcome
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.emulators.rivery import RiveryEmulator
from bot.errors import OperationNotSupported, ProviderRejected, ProviderResponseError, ProviderUnavailable
from bot.providers import datakitchen, invision, rivery, tailer
from bot.providers.base import Capability
from tests.contract.case_datakitchen import KITCHEN, PASSWORD, RECIPE, USERNAME, VARIATION
from tests.contract.case_rivery import RIVER, TOKEN
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder

DK_JOB = datakitchen.Job(kitchen=KITCHEN, recipe=RECIPE, variation=VARIATION)
DK_KEY = f"{KITCHEN}/{RECIPE}/{VARIATION}"
RIVERY_JOB = rivery.Job(river_id=RIVER)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> EmulatorState:
    return EmulatorState(clock=clock, default=None)


@pytest.fixture
async def rivery_url(state: EmulatorState) -> AsyncIterator[str]:
    emulator = RiveryEmulator(state, tokens={TOKEN}, strict=True)
    await emulator.start()
    yield emulator.url
    await emulator.stop()


@pytest.fixture
async def legacy(rivery_url: str) -> AsyncIterator[rivery.Client]:
    conn = rivery.Connection(base_url=f"{rivery_url}/api", api_token=TOKEN, timeout_seconds=5)
    client = rivery.Client("rivery-legacy", conn, retry=RETRY, sleep=SleepRecorder())
    yield client
    await client.aclose()


@pytest.fixture
async def dk(state: EmulatorState) -> AsyncIterator[tuple[DataKitchenEmulator, datakitchen.Client]]:
    emulator = DataKitchenEmulator(state, users={USERNAME: PASSWORD}, strict=True)
    url = await emulator.start()
    conn = datakitchen.Connection(base_url=url, username=USERNAME, password=PASSWORD, timeout_seconds=5)
    client = datakitchen.Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder())
    yield emulator, client
    await client.aclose()
    await emulator.stop()


def _fail(state: EmulatorState, key: str, log_lines: int = 0, secret: str = TOKEN) -> None:
    """A failing run whose message holds the connection's secret: the log must not show it."""
    state.script(key, Outcome(result="fail", queued_s=1, running_s=2, message=f"load failed: key {secret}",
                              tasks=("extract", "load"), failed_tasks=("load",), log_lines=log_lines))


async def test_rivery_s_log_is_polled_until_ready_and_read_as_lines(
    legacy: rivery.Client, state: EmulatorState, clock: ManualClock
) -> None:
    _fail(state, RIVER)
    run = await legacy.trigger(RIVERY_JOB, {})
    clock.advance(10)
    log = await legacy.run_log(RIVERY_JOB, run.run_id)
    assert log.lines[-1].endswith("ERROR load Failed: load failed: key ***")
    assert not any(TOKEN in line for line in log.lines)
    assert not any(line.startswith("time") for line in log.lines)
    first, *polls = state.requests_to("logs")
    assert "queryId" not in first.query and polls and all("queryId" in asked.query for asked in polls)
    assert "activities/runs/logs" in log.source


async def test_a_10000_line_rivery_log_is_read_whole_and_in_order(
    legacy: rivery.Client, state: EmulatorState, clock: ManualClock
) -> None:
    _fail(state, RIVER, log_lines=10_000)
    run = await legacy.trigger(RIVERY_JOB, {})
    clock.advance(10)
    log = await legacy.run_log(RIVERY_JOB, run.run_id)
    assert len(log.lines) == 10_002
    assert log.lines[0].endswith("step 1 of 10000: 1000 rows copied")
    assert not log.cut


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_rivery_s_log_download_failing_for_good_is_a_provider_error(
    legacy: rivery.Client, state: EmulatorState, clock: ManualClock, status: int
) -> None:
    _fail(state, RIVER)
    run = await legacy.trigger(RIVERY_JOB, {})
    clock.advance(10)
    state.add_fault(Fault(route="logs", status=status, times=None))
    with pytest.raises((ProviderUnavailable, ProviderRejected)):
        await legacy.run_log(RIVERY_JOB, run.run_id)


async def test_a_transient_5xx_on_the_log_download_is_retried(
    legacy: rivery.Client, state: EmulatorState, clock: ManualClock
) -> None:
    _fail(state, RIVER)
    run = await legacy.trigger(RIVERY_JOB, {})
    clock.advance(10)
    state.add_fault(Fault(route="logs", status=503, times=1))
    log = await legacy.run_log(RIVERY_JOB, run.run_id)
    assert "ERROR" in log.lines[-1]


async def test_a_202_without_a_queryid_is_a_malformed_answer(
    legacy: rivery.Client, state: EmulatorState, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail(state, RIVER)
    run = await legacy.trigger(RIVERY_JOB, {})
    clock.advance(10)
    state.add_fault(Fault(route="logs", status=202, times=None))
    with pytest.raises(ProviderResponseError, match="queryid"):
        await legacy.run_log(RIVERY_JOB, run.run_id)


async def test_a_v1_rivery_connection_offers_no_log(rivery_url: str) -> None:
    conn = rivery.Connection(api="v1", base_url=rivery_url, api_token=TOKEN, account_id="a", environment_id="e")
    async with rivery.Client("rivery-v1", conn, retry=RETRY, sleep=SleepRecorder()) as client:
        assert not client.can(Capability.LOGS)
        with pytest.raises(OperationNotSupported, match="v1 API documents no log"):
            await client.run_log(RIVERY_JOB, "r1")


async def test_datakitchen_s_log_comes_from_the_order_run_details_with_nodes_named(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], state: EmulatorState, clock: ManualClock
) -> None:
    _, client = dk
    _fail(state, DK_KEY, secret=PASSWORD)
    run = await client.trigger(DK_JOB, {})
    clock.advance(10)
    status = await client.get_status(DK_JOB, run.run_id)
    log = await client.run_log(DK_JOB, status.run_id)
    tests = log.lines.index("TEST RESULTS")
    assert log.lines[tests - 1].startswith("[load] ERROR node load: load failed: key ")
    assert log.lines[tests + 1 :] == ("extract: test row_count passed", "load: test row_count FAILED (0 rows)")
    assert not any(PASSWORD in line for line in log.lines)
    (*_, asked) = state.requests_to("details")
    assert asked.body["logs"] is True and asked.body["summary"] is True and asked.body["testresults"] is True
    assert "v2/order/details" in log.source


async def test_a_10000_line_datakitchen_log_is_read_whole(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], state: EmulatorState, clock: ManualClock
) -> None:
    _, client = dk
    _fail(state, DK_KEY, log_lines=10_000)
    run = await client.trigger(DK_JOB, {})
    clock.advance(10)
    log = await client.run_log(DK_JOB, run.run_id)
    assert len(log.lines) == 10_000 + 5 + 3  # the log, then TEST RESULTS and one line per node
    assert log.lines[1] == "INFO step 1 of 10000: 1000 rows copied"


@pytest.mark.parametrize("fault", [Fault(route="details", status=503, times=None),
                                   Fault(route="details", status=429, times=None),
                                   Fault(route="details", kind="malformed", times=None)])
async def test_datakitchen_s_details_failing_is_a_provider_error(
    dk: tuple[DataKitchenEmulator, datakitchen.Client], state: EmulatorState, clock: ManualClock, fault: Fault
) -> None:
    _, client = dk
    _fail(state, DK_KEY)
    run = await client.trigger(DK_JOB, {})
    clock.advance(10)
    state.add_fault(fault)
    with pytest.raises((ProviderUnavailable, ProviderRejected, ProviderResponseError)):
        await client.run_log(DK_JOB, run.run_id)


async def test_invision_and_tailer_say_what_they_give_instead_of_a_log(state: EmulatorState) -> None:
    """No call is made: neither API has a log or step details to ask for (InVision: a run's status; Tailer:
    get_last_status), and the refusal says so, for the failure's thread."""
    flows = invision.Client("invision", invision.Connection(base_url="http://127.0.0.1:9/invision/", api_key="k"))
    configs = tailer.Client("tailer", tailer.Connection(base_url="http://127.0.0.1:9", token="t"))
    async with flows, configs:
        with pytest.raises(OperationNotSupported, match="InVision's API gives no log and no step details"):
            await flows.run_log(invision.Job(dataflow_id="2b081248-4963-43b3-ba06-5b7403d58b4d"), "r1")
        job = tailer.Job(account="000099", environment="DEV", configuration_type="table-to-table",
                         configuration_id="000099_iowa_liquor_prepare_pda")
        with pytest.raises(OperationNotSupported, match="get_last_status"):
            await configs.run_log(job, "r1")
        assert not flows.can(Capability.LOGS) and not configs.can(Capability.LOGS)
