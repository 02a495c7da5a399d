"""InVision beyond the shared suite: the seed document's examples, as written, against the emulator and through
the client. The seed's sample answer is not JSON (``{ runId : "…", status : "Pending" | "Running" | … }``): what
is checked is its shape (``runId`` and ``status``) and each of its four statuses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.emulators._core import EmulatorState, ManualClock, Outcome
from bot.emulators.invision import InVisionEmulator
from bot.errors import ProviderAuthError, TriggerOutcomeUnknown
from bot.models import RunState
from bot.providers import invision
from tests.contract.conftest import lenient_reason

# the seed's example ids and key, verbatim
FLOW = "2b081248-4963-43b3-ba06-5b7403d58b4d"
KEY = "dd63a1ad-60eb-4066-8d71-1721007437b4"


@pytest.mark.parametrize(
    ("raw", "state"),
    [("Pending", RunState.QUEUED), ("Running", RunState.RUNNING), ("Succeeded", RunState.SUCCEEDED),
     ("Failed", RunState.FAILED), ("succeeded", RunState.SUCCEEDED), ("Paused", RunState.UNKNOWN)],
)
def test_every_status_of_the_seed_maps_and_an_unknown_one_does_not_hang(raw: str, state: RunState) -> None:
    assert invision.map_status(raw) is state


@pytest.fixture
async def emulator(request: pytest.FixtureRequest) -> AsyncIterator[tuple[InVisionEmulator, ManualClock]]:
    """Strict (only what the document says) unless the test says which assumption it depends on."""
    clock = ManualClock()
    server = InVisionEmulator(EmulatorState(clock=clock, default=Outcome(queued_s=5, running_s=10)), api_keys=[KEY],
                              strict=lenient_reason(request) is None)
    await server.start()
    yield server, clock
    await server.stop()


async def test_the_seed_urls_work_as_written(emulator: tuple[InVisionEmulator, ManualClock]) -> None:
    """Start with ``?api_key=`` in the URL (the seed's example), check with the ``x-api-key`` header (its note)."""
    server, clock = emulator
    async with httpx.AsyncClient(base_url=server.url) as http:
        started = await http.post(f"/invision/api/pub/v1/dataflows/{FLOW}/start?api_key={KEY}")
        assert started.status_code == 200
        body = started.json()
        assert set(body) == {"runId", "status"} and body["status"] == "Pending"
        status_url = f"/invision/api/pub/v1/dataflows/{FLOW}/runs/{body['runId']}/status"
        seen = []
        for _ in range(3):
            answer = await http.get(status_url, headers={"x-api-key": KEY})
            assert answer.status_code == 200 and set(answer.json()) == {"runId", "status"}
            seen.append(answer.json()["status"])
            clock.advance(8)  # queued 5 s, then running 10 s
        assert seen == ["Pending", "Running", "Succeeded"]
        refused = await http.get(status_url, params={"api_key": "not-the-key"})
        assert refused.status_code >= 400


async def test_the_client_follows_a_seed_flow_to_its_end_without_the_key_in_any_url(
    emulator: tuple[InVisionEmulator, ManualClock],
) -> None:
    server, clock = emulator
    client = invision.Client("invision", invision.Connection(base_url=f"{server.url}/invision/", api_key=KEY))
    try:
        job = invision.Job(dataflow_id=FLOW)
        run = (await client.trigger(job, {})).run_id
        clock.advance(6)
        assert (await client.get_status(job, run)).state is RunState.RUNNING
        clock.advance(10)
        done = await client.get_status(job, run)
        assert done.state is RunState.SUCCEEDED and done.raw_status == "Succeeded"
    finally:
        await client.aclose()
    assert all(KEY not in r.path and KEY not in r.query.values() for r in server.state.requests)  # URLs reach logs


async def test_a_start_answered_without_a_run_id_may_have_started(
    emulator: tuple[InVisionEmulator, ManualClock],
) -> None:
    """The seed promises ``{runId, status}``; a 200 without the runId still means the flow may be running."""
    server, _ = emulator
    server.configure({"omit_run_id": True})
    client = invision.Client("invision", invision.Connection(base_url=f"{server.url}/invision/", api_key=KEY))
    try:
        with pytest.raises(TriggerOutcomeUnknown) as err:
            await client.trigger(invision.Job(dataflow_id=FLOW), {})
    finally:
        await client.aclose()
    assert "may have started" in str(err.value) and "Check the InVision console" in str(err.value)
    assert len(server.state.runs) == 1


async def test_strict_answers_a_refused_key_with_the_documented_bare_500(
    emulator: tuple[InVisionEmulator, ManualClock],
) -> None:
    server, _ = emulator
    async with httpx.AsyncClient(base_url=server.url) as http:
        refused = await http.post(f"/invision/api/pub/v1/dataflows/{FLOW}/start", headers={"x-api-key": "wrong"})
    assert (refused.status_code, refused.content) == (500, b"")
    assert not server.state.runs


@pytest.mark.lenient("InVision's document gives no answer for a refused key; the 401 is assumed")
async def test_a_refused_key_is_401_by_assumption(emulator: tuple[InVisionEmulator, ManualClock]) -> None:
    server, _ = emulator
    client = invision.Client("invision", invision.Connection(base_url=f"{server.url}/invision/", api_key="wrong"))
    try:
        with pytest.raises(ProviderAuthError):
            await client.trigger(invision.Job(dataflow_id=FLOW), {})
    finally:
        await client.aclose()
