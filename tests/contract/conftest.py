from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators._server import EmulatorServer
from bot.providers.base import ProviderClient
from tests.contract.cases import ProviderCase, all_cases


class SleepRecorder:
    """Stands in for asyncio.sleep in retry tests: records the delays instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture(params=all_cases(), ids=lambda c: c.name)
def case(request: pytest.FixtureRequest) -> ProviderCase:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> EmulatorState:
    return EmulatorState(clock=clock, default=None)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def emulator(case: ProviderCase, state: EmulatorState) -> AsyncIterator[EmulatorServer]:
    state.script(case.job_key, Outcome(queued_s=10, running_s=60))
    server = case.emulator(state)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(
    case: ProviderCase, emulator: EmulatorServer, sleeps: SleepRecorder
) -> AsyncIterator[ProviderClient[Any, Any]]:
    c = case.client(emulator.url, sleeps, 5.0)
    yield c
    await c.aclose()
