"""The contract every provider client passes against its emulator: lifecycle and failure table."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.emulators._core import EmulatorState, Fault, ManualClock, Outcome
from bot.emulators._server import EmulatorServer
from bot.errors import (
    ProviderAuthError,
    ProviderResponseError,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
)
from bot.models import RunState
from bot.providers.base import ProviderClient
from tests.contract.cases import ProviderCase
from tests.contract.conftest import SleepRecorder

Client = ProviderClient[Any, Any]


async def test_trigger_then_status_follows_the_run_to_success(
    case: ProviderCase, client: Client, clock: ManualClock
) -> None:
    triggered = await client.trigger(case.job, case.parameters)
    assert triggered.run_id
    first = await client.get_status(case.job, triggered.run_id)
    assert first.state is RunState.QUEUED
    assert not first.final
    clock.advance(11)
    running = await client.get_status(case.job, triggered.run_id)
    assert running.state is RunState.RUNNING
    assert running.raw_status
    clock.advance(61)
    done = await client.get_status(case.job, triggered.run_id)
    assert done.state is RunState.SUCCEEDED
    assert done.final
    assert done.run_id == first.run_id


async def test_a_failing_run_ends_failed_with_the_raw_status_kept(
    case: ProviderCase, client: Client, clock: ManualClock, state: EmulatorState
) -> None:
    state.script(case.job_key, Outcome(result="fail", queued_s=1, running_s=1, message="disk full",
                                       failed_tasks=("load",)))
    run = await client.trigger(case.job, case.parameters)
    clock.advance(5)
    status = await client.get_status(case.job, run.run_id)
    assert status.state is RunState.FAILED
    assert status.final
    assert status.raw_status
    assert status.message  # the provider's words, or a note that it gives none


async def test_a_hanging_run_keeps_running(
    case: ProviderCase, client: Client, clock: ManualClock, state: EmulatorState
) -> None:
    state.script(case.job_key, Outcome(result="hang", queued_s=1))
    run = await client.trigger(case.job, case.parameters)
    clock.advance(86_400)
    status = await client.get_status(case.job, run.run_id)
    assert status.state is RunState.RUNNING
    assert not status.final


@pytest.mark.parametrize("code", [500, 502, 503, 504])
async def test_5xx_on_a_status_read_is_retried_and_recovers(
    case: ProviderCase, client: Client, emulator: EmulatorServer, sleeps: SleepRecorder, code: int
) -> None:
    run = await client.trigger(case.job, case.parameters)
    emulator.state.add_fault(Fault(route=case.status_route, status=code, times=2))
    status = await client.get_status(case.job, run.run_id)
    assert status.state is RunState.QUEUED
    assert len(sleeps.delays) == 2


async def test_429_with_retry_after_is_honoured_on_reads(
    case: ProviderCase, client: Client, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    run = await client.trigger(case.job, case.parameters)
    emulator.state.add_fault(Fault(route=case.status_route, status=429, retry_after=7, times=1))
    status = await client.get_status(case.job, run.run_id)
    assert status.run_id
    assert sleeps.delays == [7.0]


async def test_a_status_read_that_keeps_failing_is_unavailable_not_failed(
    case: ProviderCase, client: Client, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    run = await client.trigger(case.job, case.parameters)
    emulator.state.add_fault(Fault(route=case.status_route, kind="html", status=502, times=None))
    with pytest.raises(ProviderUnavailable) as err:
        await client.get_status(case.job, run.run_id)
    assert "502" in str(err.value)
    assert "<html>" not in str(err.value)  # a gateway page is not shown to people
    assert len(sleeps.delays) == 3  # four attempts in all


async def test_a_trigger_is_never_retried(
    case: ProviderCase, client: Client, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    emulator.state.add_fault(Fault(route=case.trigger_route, status=500, times=1))
    with pytest.raises(TriggerOutcomeUnknown) as err:
        await client.trigger(case.job, case.parameters)
    assert "unknown whether" in str(err.value)
    assert sleeps.delays == []
    assert len(emulator.state.requests_to(case.trigger_route)) == 1
    assert not emulator.state.runs


async def test_a_trigger_refused_with_429_says_it_did_not_start(
    case: ProviderCase, client: Client, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    emulator.state.add_fault(Fault(route=case.trigger_route, status=429, retry_after=30, times=1))
    with pytest.raises(ProviderUnavailable) as err:
        await client.trigger(case.job, case.parameters)
    assert err.value.retry_after == 30
    assert len(emulator.state.requests_to(case.trigger_route)) == 1


async def test_a_timeout_on_a_trigger_is_reported_as_unknown_not_retried(
    case: ProviderCase, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    client = case.client(emulator.url, sleeps, 0.3)
    try:
        emulator.state.add_fault(Fault(route=case.trigger_route, kind="delay", delay=1.0, times=1))
        with pytest.raises(TriggerOutcomeUnknown):
            await client.trigger(case.job, case.parameters)
        assert len(emulator.state.requests_to(case.trigger_route)) == 1
    finally:
        await client.aclose()


async def test_a_timeout_on_a_read_is_retried(
    case: ProviderCase, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    client = case.client(emulator.url, sleeps, 0.3)
    try:
        run = await client.trigger(case.job, case.parameters)
        emulator.state.add_fault(Fault(route=case.status_route, kind="delay", delay=1.0, times=1))
        status = await client.get_status(case.job, run.run_id)
        assert status.state is RunState.QUEUED
        assert len(sleeps.delays) == 1
    finally:
        await client.aclose()


#: a byte of the answer every 0.75 × the timeout: no read ever waits long enough to time out
TRICKLED = 0.4


async def test_a_status_answer_trickled_under_the_read_timeout_is_a_timeout_at_the_deadline(
    case: ProviderCase, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    client = case.client(emulator.url, sleeps, TRICKLED)
    try:
        run = await client.trigger(case.job, case.parameters)
        emulator.state.add_fault(Fault(route=case.status_route, kind="trickle", delay=0.75 * TRICKLED, times=None))
        # without a deadline for the whole exchange, each attempt reads its answer for a minute or more
        with pytest.raises(ProviderUnavailable) as err:
            await asyncio.wait_for(client.get_status(case.job, run.run_id), 10 * TRICKLED * 4)
        assert "did not answer in time" in str(err.value)
        assert f"within {TRICKLED:g} s" in str(err.value)
        assert len(sleeps.delays) == 3  # retried as any timeout is: four attempts in all
        assert len(emulator.state.requests_to(case.status_route)) == 4
    finally:
        await client.aclose()


async def test_a_trigger_answer_trickled_under_the_read_timeout_is_unknown_at_the_deadline(
    case: ProviderCase, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    client = case.client(emulator.url, sleeps, TRICKLED)
    try:
        emulator.state.add_fault(Fault(route=case.trigger_route, kind="trickle", delay=0.75 * TRICKLED, times=None))
        with pytest.raises(TriggerOutcomeUnknown) as err:
            await asyncio.wait_for(client.trigger(case.job, case.parameters), 10 * TRICKLED)
        assert "unknown whether" in str(err.value)  # it did start: the answer was on its way
        assert sleeps.delays == []
        assert len(emulator.state.requests_to(case.trigger_route)) == 1
    finally:
        await client.aclose()


async def test_a_trigger_whose_connection_is_reset_after_it_was_sent_is_unknown(
    case: ProviderCase, client: Client, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    """Found by the fifth independent pass: the provider took the trigger (its run started) and the connection
    was reset before the answer came (a proxy, a gateway restarting). httpx says ``ReadError``, which was mapped
    to "cannot reach", so the run was reported "did not start" while it ran, untracked."""
    emulator.state.add_fault(Fault(route=case.trigger_route, kind="reset", times=1))
    with pytest.raises(TriggerOutcomeUnknown) as err:
        await client.trigger(case.job, case.parameters)
    assert "unknown whether" in str(err.value)
    assert sleeps.delays == []
    assert len(emulator.state.requests_to(case.trigger_route)) == 1
    assert emulator.state.runs, "the provider started the run"


async def test_a_status_read_whose_connection_is_reset_is_retried(
    case: ProviderCase, client: Client, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    run = await client.trigger(case.job, case.parameters)
    emulator.state.add_fault(Fault(route=case.status_route, kind="reset", times=1))
    status = await client.get_status(case.job, run.run_id)
    assert status.state is RunState.QUEUED
    assert len(sleeps.delays) == 1


async def test_a_malformed_body_is_a_typed_error(
    case: ProviderCase, client: Client, emulator: EmulatorServer
) -> None:
    run = await client.trigger(case.job, case.parameters)
    emulator.state.add_fault(Fault(route=case.status_route, kind="malformed", times=1))
    with pytest.raises(ProviderResponseError) as err:
        await client.get_status(case.job, run.run_id)
    assert case.name.lower()[:4] in str(err.value).lower()


async def test_refused_credentials_are_an_auth_error_without_the_secret(
    case: ProviderCase, emulator: EmulatorServer, sleeps: SleepRecorder
) -> None:
    client = case.bad_client(emulator.url, sleeps)
    try:
        with pytest.raises(ProviderAuthError) as err:
            await client.trigger(case.job, case.parameters)
        message = str(err.value)
        for secret in client.connection.secret_values():
            assert secret not in message
        assert "credentials" in message or "password" in message or "token" in message
    finally:
        await client.aclose()
    assert not emulator.state.runs
