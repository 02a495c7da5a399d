"""Issue 17, first independent pass: Rivery's log download waited for as rivery-cli waits for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators.rivery import RiveryEmulator
from bot.providers import rivery
from tests.contract.case_rivery import RIVER, TOKEN
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder

JOB = rivery.Job(river_id=RIVER)


@pytest.fixture
async def slow_logs() -> AsyncIterator[tuple[RiveryEmulator, rivery.Client, SleepRecorder, ManualClock]]:
    clock = ManualClock()
    emulator = RiveryEmulator(EmulatorState(clock=clock, default=None), tokens={TOKEN}, strict=True)
    await emulator.start()
    slept = SleepRecorder()
    conn = rivery.Connection(base_url=f"{emulator.url}/api", api_token=TOKEN, timeout_seconds=5)
    client = rivery.Client("rivery-legacy", conn, retry=RETRY, sleep=slept)
    yield emulator, client, slept, clock
    await client.aclose()
    await emulator.stop()


async def test_a_log_rivery_prepares_for_a_minute_is_read(
    slow_logs: tuple[RiveryEmulator, rivery.Client, SleepRecorder, ManualClock],
) -> None:
    """rivery-cli's ``activities logs fetch`` polls 10 times a second apart, then 1, 3, 5… 29 s apart (then 30 s,
    10 times): a log that takes a minute to prepare is an ordinary one, not a failure to give it."""
    emulator, client, slept, clock = slow_logs
    emulator.log_polls = 15  # still preparing at the first 15 polls with its query id
    emulator.state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=2, message="load failed"))
    run = await client.trigger(JOB, {})
    clock.advance(10)
    log = await client.run_log(JOB, run.run_id)
    assert log.lines[-1].endswith("load failed")
    assert slept.delays[:10] == [1.0] * 10 and slept.delays[10:12] == [1.0, 3.0]  # rivery-cli's pace
    assert len(emulator.state.requests_to("logs")) == 17  # the query, 15 answers "in progress", the log
