from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators._server import EmulatorServer
from bot.providers.base import ProviderClient
from tests.contract.cases import ProviderCase, all_cases


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "lenient(reason): this test depends on an assumption no vendor source supports (docs/PROVIDERS.md, "
        "provenance), so it runs against the emulator without strict mode; the reason says which",
    )


def lenient_reason(request: pytest.FixtureRequest) -> str | None:
    """The reason a test gives for running against a lenient emulator; None: strict, the default."""
    marker = request.node.get_closest_marker("lenient")
    if marker is None:
        return None
    reason = str(marker.args[0] if marker.args else marker.kwargs.get("reason", "")).strip()
    assert reason, f"{request.node.name}: @pytest.mark.lenient needs the assumption it depends on as its reason"
    return reason


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
async def emulator(
    case: ProviderCase, state: EmulatorState, request: pytest.FixtureRequest
) -> AsyncIterator[EmulatorServer]:
    state.script(case.job_key, Outcome(queued_s=10, running_s=60))
    lenient = case.lenient_for.get(request.node.originalname)
    server = case.lenient_emulator(state) if lenient and case.lenient_emulator else case.emulator(state)
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
