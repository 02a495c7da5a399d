"""Rivery beyond the shared suite: the v1 API, paging, cancel, enable/disable, statistics, the seed's sample."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from bot.emulators._core import EmulatorState, Fault, ManualClock, Outcome
from bot.emulators.rivery import RiveryEmulator
from bot.errors import (
    OperationNotSupported,
    ProviderAuthError,
    ProviderNotFound,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
)
from bot.models import RunState
from bot.providers._http import Call
from bot.providers.base import Capability
from bot.providers.rivery import (
    Client,
    Connection,
    Job,
    map_status,
    parse_check_run,
    parse_statistics,
)
from tests.contract.case_rivery import RIVER, TOKEN
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder, lenient_reason

ACCOUNT = "acc-1"
ENV = "env-1"
OTHER = "63b724fc690def001131d242"
UNKNOWN = "000000000000000000000000"
JOB = Job(river_id=RIVER)
V1_PREFIX = f"/v1/accounts/{ACCOUNT}/environments/{ENV}"

# The check_run answer of seeds/rivery-run-and-check-run.txt, verbatim.
# (kept line by line so that its trailing blanks and tabs survive the linters)
SEED_CHECK_RUN = "\n".join(
    [
        '{',
        '"tasks_status": ',
        '\t[{"task_status": "D", ',
        '\t"task_status_message": "MongoDB to File Zone Done Successfully"}, ',
        '\t{"task_status": "D", ',
        '\t"task_status_message": "load to bq batches Done Successfully"}], ',
        '"run_insert_date": 1586622247382, ',
        '"run_end_date": 1586622275582, ',
        '"river_run_status": "D", ',
        '"river_run_message": "River ods_mogodb_leads Done Successfully"',
        '}',
    ]
)


# The 200 sample of Boomi's Legacy Data Integration API reference, RunRiver
# (developer.boomi.com/docs/api/dataintegrationlegacyapi/RunRiver): ``tasks_status`` is one object, not a list.
BOOMI_RUN_RIVER_SAMPLE = {
    "run_id": "5e473b95567f0hd050tf5ed5",
    "river_id": "5e473b955d7f0h3050tf5ed5",
    "account": "5e473b95564f0h3050tf5ed5",
    "run_insert_date": 1584894117231,
    "run_update_date": 1584894117231,
    "river_run_status": "W",
    "river_run_message": "River river_name is waiting to run",
    "_id": "5e473b95567f0h3050tf5ed5",
    "tasks_status": {
        "task_status": "D",
        "task_status_message": "European Central Bank Currencies API to File Zone Done Successfully",
    },
    "run_end_date": 1584894117231,
}


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def server(state: EmulatorState, request: pytest.FixtureRequest) -> AsyncIterator[RiveryEmulator]:
    """Strict (only what a source documents) unless the test says which assumption it depends on."""
    state.script(RIVER, Outcome(queued_s=10, running_s=60))
    state.script(OTHER, Outcome(queued_s=1, running_s=1))
    emulator = RiveryEmulator(state, tokens={TOKEN}, account_id=ACCOUNT, environment_id=ENV,
                              strict=lenient_reason(request) is None)
    await emulator.start()
    yield emulator
    await emulator.stop()


def _v1_client(url: str, sleeps: SleepRecorder, clock: ManualClock, token: str = TOKEN, **kw: Any) -> Client:
    conn = Connection(api="v1", base_url=url, api_token=token, account_id=ACCOUNT, environment_id=ENV,
                      timeout_seconds=5, **kw)
    client = Client("rivery-v1", conn, retry=RETRY, sleep=sleeps)
    client.now = lambda: datetime.fromtimestamp(clock.now(), UTC)  # the emulator's manual time
    return client


def _legacy_client(url: str, sleeps: SleepRecorder, token: str = TOKEN) -> Client:
    conn = Connection(base_url=f"{url}/api", api_token=token, timeout_seconds=5)
    return Client("rivery-legacy", conn, retry=RETRY, sleep=sleeps)


@pytest.fixture
async def v1(server: RiveryEmulator, sleeps: SleepRecorder, clock: ManualClock) -> AsyncIterator[Client]:
    client = _v1_client(server.url, sleeps, clock)
    yield client
    await client.aclose()


@pytest.fixture
async def legacy(server: RiveryEmulator, sleeps: SleepRecorder) -> AsyncIterator[Client]:
    client = _legacy_client(server.url, sleeps)
    yield client
    await client.aclose()


# -- the seed document ----------------------------------------------------------------------


def test_the_seed_check_run_sample_parses_verbatim() -> None:
    status = parse_check_run(json.loads(SEED_CHECK_RUN), "3e8a3f767ae549dca79de534139adb00")
    assert status.run_id == "3e8a3f767ae549dca79de534139adb00"
    assert status.state is RunState.SUCCEEDED
    assert status.final
    assert status.raw_status == "D"
    assert status.message == "River ods_mogodb_leads Done Successfully"
    assert [(t.state, t.raw_status, t.message) for t in status.tasks] == [
        (RunState.SUCCEEDED, "D", "MongoDB to File Zone Done Successfully"),
        (RunState.SUCCEEDED, "D", "load to bq batches Done Successfully"),
    ]
    assert status.started_at == datetime(2020, 4, 11, 16, 24, 7, 382000, tzinfo=UTC)
    assert status.ended_at == datetime(2020, 4, 11, 16, 24, 35, 582000, tzinfo=UTC)
    assert status.duration == timedelta(seconds=28.2)
    assert not status.failed_tasks


def test_boomi_s_sample_with_tasks_status_as_one_object_parses() -> None:
    status = parse_check_run(BOOMI_RUN_RIVER_SAMPLE, "ignored")
    assert status.run_id == "5e473b95567f0hd050tf5ed5"
    assert (status.state, status.raw_status) == (RunState.QUEUED, "W")
    assert status.message == "River river_name is waiting to run"
    assert [(t.name, t.state, t.raw_status, t.message) for t in status.tasks] == [
        ("task 1", RunState.SUCCEEDED, "D", "European Central Bank Currencies API to File Zone Done Successfully")
    ]


@pytest.mark.parametrize("tasks", [None, "D", 3, {"unrelated": "x"}, [1, "x"]])
def test_a_tasks_status_of_another_shape_holds_no_task(tasks: Any) -> None:
    assert parse_check_run({"river_run_status": "R", "tasks_status": tasks}, "r1").tasks == ()


async def test_the_emulator_can_answer_tasks_status_as_one_object(
    server: RiveryEmulator, legacy: Client, clock: ManualClock
) -> None:
    server.configure({"tasks_status_shape": "object"})
    server.state.script(RIVER, Outcome(queued_s=1, running_s=1, result="fail", failed_tasks=("load",),
                                       tasks=("extract", "load"), message="Table leads is locked"))
    run = await legacy.trigger(JOB, {})
    clock.advance(5)
    async with httpx.AsyncClient(base_url=server.url, headers=_auth()) as http:
        answer = (await http.get("/api/check_run", params={"run_id": run.run_id})).json()
    assert answer["tasks_status"] == {"task_status": "F", "task_status_message": "load Failed: Table leads is locked"}
    status = await legacy.get_status(JOB, run.run_id)
    assert [(t.state, t.message) for t in status.failed_tasks] == [
        (RunState.FAILED, "load Failed: Table leads is locked")
    ]


async def test_the_emulator_answers_check_run_in_the_seed_shape(
    server: RiveryEmulator, legacy: Client, clock: ManualClock
) -> None:
    server.configure({"river_names": {RIVER: "ods_mogodb_leads"}})
    tasks = ("MongoDB to File Zone", "load to bq batches")
    server.state.script(RIVER, Outcome(queued_s=1, running_s=27.2, tasks=tasks))
    run = await legacy.trigger(JOB, {})
    clock.advance(30)
    async with httpx.AsyncClient(base_url=server.url, headers=_auth()) as http:
        answer = (await http.get("/api/check_run", params={"run_id": run.run_id})).json()
    seed = json.loads(SEED_CHECK_RUN)
    assert set(answer) == set(seed) | {"river_id"}  # river_id: Boomi's sample; rivery-cli reads it
    assert answer["river_id"] == RIVER
    assert [set(t) for t in answer["tasks_status"]] == [set(t) for t in seed["tasks_status"]]
    assert answer["river_run_message"] == seed["river_run_message"]
    assert [t["task_status_message"] for t in answer["tasks_status"]] == [
        t["task_status_message"] for t in seed["tasks_status"]
    ]
    assert answer["run_end_date"] - answer["run_insert_date"] == 28_200
    status = await legacy.get_status(JOB, run.run_id)
    assert status.duration == timedelta(seconds=28.2)


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("W", RunState.QUEUED), ("P", RunState.QUEUED), (None, RunState.QUEUED), ("", RunState.QUEUED),
        ("R", RunState.RUNNING), ("D", RunState.SUCCEEDED), ("d", RunState.SUCCEEDED),
        ("F", RunState.FAILED), ("E", RunState.FAILED),
        ("pending", RunState.QUEUED), ("running", RunState.RUNNING), ("Running", RunState.RUNNING),
        ("succeeded", RunState.SUCCEEDED), ("succeed", RunState.SUCCEEDED),
        ("partially succeeded", RunState.SUCCEEDED), ("Partially Succeed", RunState.SUCCEEDED),
        ("failed", RunState.FAILED), ("FAILED", RunState.FAILED),
        ("canceled", RunState.CANCELED), ("skipped", RunState.CANCELED),
        ("X", RunState.UNKNOWN), ("queued-ish", RunState.UNKNOWN),
    ],
)
def test_map_status(raw: str | None, state: RunState) -> None:
    assert map_status(raw) is state


def test_an_unknown_legacy_code_is_kept_and_not_final() -> None:
    status = parse_check_run({"river_run_status": "Z", "river_run_message": "River x is odd"}, "r1")
    assert status.state is RunState.UNKNOWN
    assert status.raw_status == "Z"
    assert status.message == "River x is odd"
    assert not status.final


# -- legacy specifics -----------------------------------------------------------------------


@pytest.mark.parametrize("code", ["E", "F"])
async def test_a_legacy_failure_as_e_or_f_is_failed_with_rivery_s_words(
    server: RiveryEmulator, legacy: Client, clock: ManualClock, code: str
) -> None:
    server.configure({"failure_code": code})
    server.state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=1, message="Table leads is locked",
                                       failed_tasks=("load",)))
    run = await legacy.trigger(JOB, {})
    clock.advance(5)
    status = await legacy.get_status(JOB, run.run_id)
    assert status.state is RunState.FAILED
    assert status.raw_status == code
    assert status.message == "Table leads is locked"  # river_run_message and error_description, said once
    assert [t.name for t in status.failed_tasks] == ["task 2"]
    assert "load Failed: Table leads is locked" in status.failed_tasks[0].message


async def test_a_missing_legacy_status_means_waiting(
    server: RiveryEmulator, legacy: Client, clock: ManualClock
) -> None:
    server.configure({"omit_waiting_status": True})
    run = await legacy.trigger(JOB, {})
    waiting = await legacy.get_status(JOB, run.run_id)
    assert waiting.state is RunState.QUEUED
    assert waiting.raw_status == ""
    async with httpx.AsyncClient(base_url=server.url, headers=_auth()) as http:
        answer = (await http.get("/api/check_run", params={"run_id": run.run_id})).json()
    assert "river_run_status" not in answer
    assert [t["task_status"] for t in answer["tasks_status"]] == ["W", "W"]
    clock.advance(11)
    assert (await legacy.get_status(JOB, run.run_id)).raw_status == "R"


async def test_a_legacy_run_waits_then_prepares(server: RiveryEmulator, legacy: Client, clock: ManualClock) -> None:
    run = await legacy.trigger(JOB, {})
    assert (await legacy.get_status(JOB, run.run_id)).raw_status == "W"
    clock.advance(6)
    preparing = await legacy.get_status(JOB, run.run_id)
    assert (preparing.raw_status, preparing.state) == ("P", RunState.QUEUED)


async def test_the_emulator_serves_me_and_run_logs(server: RiveryEmulator, legacy: Client) -> None:
    run = await legacy.trigger(JOB, {})
    async with httpx.AsyncClient(base_url=server.url, headers=_auth()) as http:
        me = await http.get("/api/me")
        assert me.json() == {"account_id": ACCOUNT, "environment_id": ENV}
        first = await http.get("/api/activities/runs/logs", params={"id": run.run_id})
        assert first.status_code == 202
        query_id = first.headers["queryid"]
        polled = [
            await http.get("/api/activities/runs/logs", params={"id": run.run_id, "queryId": query_id})
            for _ in range(2)
        ]
        assert [p.status_code for p in polled] == [202, 200]
        assert polled[1].headers["queryid"] == query_id
        assert polled[1].text.startswith("time,level,message")
        assert "extract Waiting" in polled[1].text
        missing = await http.get("/api/activities/runs/logs", params={"id": "nope"})
        assert missing.status_code == 404
        assert "message" in missing.json()


# -- v1 lifecycle ---------------------------------------------------------------------------


@pytest.mark.lenient(
    "v1 run fields beyond run_id and status (start_date_utc, end_date_utc, run_group_id, river_cross_id) "
    "and a status in the trigger answer's runs are assumed"
)
async def test_v1_trigger_then_status_follows_the_run(server: RiveryEmulator, v1: Client, clock: ManualClock) -> None:
    triggered = await v1.trigger(JOB, {})
    assert triggered.status is not None
    assert triggered.status.state is RunState.QUEUED
    answer = server.state.requests_to("v1_trigger")[0]
    assert answer.path == f"{V1_PREFIX}/rivers/{RIVER}/run"
    run_group = server.state.runs[triggered.run_id].extra["run_group_id"]
    assert triggered.status.extra["run_group_id"] == run_group

    first = await v1.get_status(JOB, triggered.run_id)
    assert (first.state, first.raw_status, first.started_at) == (RunState.QUEUED, "pending", None)
    clock.advance(11)
    running = await v1.get_status(JOB, triggered.run_id)
    assert (running.state, running.raw_status) == (RunState.RUNNING, "running")
    assert running.started_at is not None
    assert not running.final
    clock.advance(61)
    done = await v1.get_status(JOB, triggered.run_id)
    assert (done.state, done.raw_status, done.final) == (RunState.SUCCEEDED, "succeeded", True)
    assert done.duration == timedelta(seconds=60)
    assert done.extra["river_cross_id"] == RIVER


@pytest.mark.lenient("error_description on a v1 run is assumed (the legacy API documents it)")
async def test_v1_failure_carries_the_error_description(
    server: RiveryEmulator, v1: Client, clock: ManualClock
) -> None:
    server.state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=1, message="Quota exceeded"))
    run = await v1.trigger(JOB, {})
    clock.advance(3)
    status = await v1.get_status(JOB, run.run_id)
    assert (status.state, status.raw_status, status.message) == (RunState.FAILED, "failed", "Quota exceeded")


@pytest.mark.parametrize("spelling", ["succeeded", "succeed"])
async def test_v1_partial_success_is_success_with_a_warning(
    server: RiveryEmulator, v1: Client, clock: ManualClock, spelling: str
) -> None:
    server.configure({"success_spelling": spelling})
    server.state.script(RIVER, Outcome(queued_s=1, running_s=1, failed_tasks=("load",)))
    run = await v1.trigger(JOB, {})
    clock.advance(3)
    status = await v1.get_status(JOB, run.run_id)
    assert status.state is RunState.SUCCEEDED
    assert status.raw_status == f"partially {spelling}"
    assert "load" in status.warning


@pytest.mark.lenient(
    "run parameters as a variables object: no document or vendor client shows a run body beyond river_id"
)
@pytest.mark.parametrize("api", ["legacy", "v1"])
async def test_parameters_reach_rivery_as_variables(
    server: RiveryEmulator, legacy: Client, v1: Client, api: str
) -> None:
    client, route = (legacy, "trigger") if api == "legacy" else (v1, "v1_trigger")
    run = await client.trigger(JOB, {"load_date": "2020-04-11", "full_load": "false"})
    body = server.state.requests_to(route)[0].body
    assert body["variables"] == {"load_date": "2020-04-11", "full_load": "false"}
    if api == "legacy":
        assert body["river_id"] == RIVER
    assert server.state.runs[run.run_id].parameters == {"load_date": "2020-04-11", "full_load": "false"}


async def test_a_trigger_without_parameters_sends_no_variables(
    server: RiveryEmulator, legacy: Client, v1: Client
) -> None:
    await legacy.trigger(JOB, {})
    await v1.trigger(JOB, {})
    assert server.state.requests_to("trigger")[0].body == {"river_id": RIVER}
    assert server.state.requests_to("v1_trigger")[0].body == {}


# -- listing --------------------------------------------------------------------------------


def _history(state: EmulatorState, clock: ManualClock, runs: int) -> datetime:
    """Five old runs, then ``runs`` runs one second apart (and one of another river); returns the cut."""
    state.script(RIVER, Outcome(queued_s=0, running_s=0.5))
    for _ in range(5):
        state.start_run(RIVER, external=True)
        clock.advance(10)
    since = datetime.fromtimestamp(clock.now(), UTC)
    clock.advance(1)
    for _ in range(runs):
        state.start_run(RIVER, external=True)
        clock.advance(1)
    state.start_run(OTHER, external=True)
    return since


@pytest.mark.lenient("the runs' start_date_utc (to order them newest first) is assumed")
async def test_list_runs_follows_pages_newest_first_within_the_window(
    server: RiveryEmulator, v1: Client, state: EmulatorState, clock: ManualClock
) -> None:
    since = _history(state, clock, 450)
    runs = await v1.list_runs(JOB, since=since, limit=1000)
    assert len(runs) == 450
    wanted = {r.run_id for r in state.runs_of(RIVER) if r.created_at >= since.timestamp()}
    assert {r.run_id for r in runs} == wanted
    starts = [r.started_at for r in runs if r.started_at is not None]
    assert len(set(starts)) == 450
    assert starts == sorted(starts, reverse=True)
    asked = server.state.requests_to("v1_runs")
    assert [r.query["page"] for r in asked] == ["1", "2", "3"]
    assert {r.query["items_per_page"] for r in asked} == {"200"}
    assert asked[0].query["start_time"] == since.strftime("%Y-%m-%dT%H:%M:%S")  # R2:655-657: no zone suffix
    assert not asked[0].query["end_time"].endswith("Z")


async def test_list_runs_stops_at_the_limit(
    server: RiveryEmulator, v1: Client, state: EmulatorState, clock: ManualClock
) -> None:
    since = _history(state, clock, 450)
    runs = await v1.list_runs(JOB, since=since, limit=250)
    newest = [r.run_id for r in state.runs_of(RIVER)][:250]
    assert [r.run_id for r in runs] == newest
    assert len(server.state.requests_to("v1_runs")) == 2


@pytest.mark.parametrize("form", ["number", "string"])
async def test_list_runs_still_follows_a_page_number_or_cursor(
    server: RiveryEmulator, v1: Client, state: EmulatorState, clock: ManualClock, form: str
) -> None:
    server.configure({"next_page_as": form})
    since = _history(state, clock, 401)
    assert len(await v1.list_runs(JOB, since=since, limit=1000)) == 401
    asked = server.state.requests_to("v1_runs")
    assert [r.query["page"] for r in asked] == ["1", "2", "3"]
    assert {r.query["start_time"] for r in asked} == {since.strftime("%Y-%m-%dT%H:%M:%S")}


@pytest.mark.lenient("a next_page relative to the host: no source shows one; the bot must not send it as a page number")
async def test_a_next_page_relative_to_the_host_is_followed_on_that_host(
    server: RiveryEmulator, v1: Client, state: EmulatorState, clock: ManualClock
) -> None:
    server.configure({"next_page_as": "path"})
    since = _history(state, clock, 401)
    assert len(await v1.list_runs(JOB, since=since, limit=1000)) == 401
    assert [r.query["page"] for r in server.state.requests_to("v1_runs")] == ["1", "2", "3"]


async def test_next_page_is_the_next_page_s_url_and_is_followed_as_given(
    server: RiveryEmulator, v1: Client, state: EmulatorState, clock: ManualClock
) -> None:
    """Boomi's Data Integration API reference: ``next_page`` is "The next page URL" on its list endpoints."""
    since = _history(state, clock, 250)
    path = f"{V1_PREFIX}/rivers/{RIVER}/runs"
    window = {"start_time": since.strftime("%Y-%m-%dT%H:%M:%SZ"), "end_time": "2100-01-01T00:00:00Z"}
    async with httpx.AsyncClient(base_url=server.url, headers=_auth()) as http:
        first = (await http.get(path, params={**window, "items_per_page": 200})).json()
    following = httpx.URL(first["next_page"])
    assert (following.scheme, following.host, following.port, following.path) == (
        "http", "127.0.0.1", httpx.URL(server.url).port, path
    )
    assert following.params["page"] == "2" and following.params["start_time"] == window["start_time"]
    server.state.requests.clear()

    assert len(await v1.list_runs(JOB, since=since, limit=1000)) == 250
    assert [r.query["page"] for r in server.state.requests_to("v1_runs")] == ["1", "2"]


async def test_a_next_page_on_another_host_is_not_followed(
    server: RiveryEmulator, v1: Client, state: EmulatorState, clock: ManualClock
) -> None:
    """The next page's URL carries the API token: only the connection's own host gets it."""
    elsewhere = RiveryEmulator(EmulatorState(clock=clock, default=None))
    await elsewhere.start()
    try:
        server.configure({"next_page_base": elsewhere.url})
        since = _history(state, clock, 250)
        with pytest.raises(ProviderResponseError) as err:
            await v1.list_runs(JOB, since=since, limit=1000)
    finally:
        await elsewhere.stop()
    assert "another host" in str(err.value) and "not followed" in str(err.value)
    assert not elsewhere.state.requests
    assert len(server.state.requests_to("v1_runs")) == 1


async def test_the_runs_endpoint_wants_both_times_and_at_most_200_a_page(server: RiveryEmulator) -> None:
    path = f"{V1_PREFIX}/rivers/{RIVER}/runs"
    window = {"start_time": "2024-05-01T00:00:00Z", "end_time": "2024-05-02T00:00:00"}
    async with httpx.AsyncClient(base_url=server.url, headers=_auth()) as http:
        none = await http.get(path)
        assert none.status_code == 422
        assert none.json() == {
            "detail": [
                {"loc": ["query", "start_time"], "msg": "field required", "type": "value_error.missing"},
                {"loc": ["query", "end_time"], "msg": "field required", "type": "value_error.missing"},
            ]
        }
        half = await http.get(path, params={"start_time": window["start_time"]})
        assert [d["loc"] for d in half.json()["detail"]] == [["query", "end_time"]]
        too_many = await http.get(path, params={**window, "items_per_page": 201})
        assert too_many.status_code == 422
        assert too_many.json()["detail"][0]["loc"] == ["query", "items_per_page"]
        fine = await http.get(path, params={**window, "items_per_page": 200})
        assert fine.status_code == 200
        assert set(fine.json()) == {"items", "next_page", "page", "total_items"}  # what a source names
        unknown = await http.get(f"{V1_PREFIX}/rivers/{UNKNOWN}/runs", params=window)
        assert unknown.status_code == 404


async def test_a_422_becomes_rejected_with_the_detail_text(v1: Client) -> None:
    call = Call("GET", f"v1/accounts/{ACCOUNT}/environments/{ENV}/rivers/{RIVER}/runs", "list runs")
    with pytest.raises(ProviderRejected) as err:
        await v1.caller.send(call)
    assert err.value.status_code == 422
    assert "start_time: field required; end_time: field required" in str(err.value)


# -- cancel ---------------------------------------------------------------------------------


@pytest.mark.lenient("the cancel body {run_id} is assumed")
@pytest.mark.parametrize("answer", ["json", "empty", "no_content"])
async def test_v1_cancel_tolerates_every_answer(
    server: RiveryEmulator, v1: Client, clock: ManualClock, answer: str
) -> None:
    server.configure({"cancel_answer": answer})
    run = await v1.trigger(JOB, {})
    clock.advance(11)
    await v1.cancel(JOB, run.run_id)
    asked = server.state.requests_to("v1_cancel")[0]
    assert asked.path == f"{V1_PREFIX}/rivers/{RIVER}/cancel_run"
    assert asked.body == {"run_id": run.run_id}
    status = await v1.get_status(JOB, run.run_id)
    assert (status.state, status.raw_status, status.final) == (RunState.CANCELED, "canceled", True)


@pytest.mark.lenient("the cancel body {run_id} is assumed")
@pytest.mark.parametrize("answer", ["json", "no_content"])
async def test_legacy_cancel_sends_the_run_id(
    server: RiveryEmulator, legacy: Client, clock: ManualClock, answer: str
) -> None:
    server.configure({"cancel_answer": answer})
    run = await legacy.trigger(JOB, {})
    clock.advance(11)
    await legacy.cancel(JOB, run.run_id)
    assert server.state.requests_to("cancel")[0].body == {"run_id": run.run_id}
    status = await legacy.get_status(JOB, run.run_id)
    assert status.final
    assert "canceled" in status.message


@pytest.mark.lenient("the cancel body {run_id} is assumed")
async def test_cancelling_an_ended_run_is_refused_with_rivery_s_words(
    server: RiveryEmulator, v1: Client, clock: ManualClock
) -> None:
    run = await v1.trigger(JOB, {})
    clock.advance(100)
    with pytest.raises(ProviderRejected) as err:
        await v1.cancel(JOB, run.run_id)
    assert "not running any more" in str(err.value)


# -- enable / disable -----------------------------------------------------------------------


async def test_enable_and_disable_answered_at_once(server: RiveryEmulator, v1: Client) -> None:
    await v1.disable(JOB)
    assert server.active[RIVER] is False
    await v1.enable(JOB)
    assert server.active[RIVER] is True
    assert server.state.requests_to("v1_disable")[0].path == f"{V1_PREFIX}/rivers/{RIVER}/disable_river"
    assert not server.state.requests_to("v1_operation")


async def test_enable_waits_for_the_operation(server: RiveryEmulator, v1: Client, sleeps: SleepRecorder) -> None:
    server.configure({"async_operations": True, "operation_polls": 2})
    await v1.enable(JOB)
    assert server.active[RIVER] is True
    assert len(server.state.requests_to("v1_operation")) == 3
    assert sleeps.delays == [Client.operation_interval] * 2


async def test_an_operation_in_error_is_rejected_with_its_message(server: RiveryEmulator, v1: Client) -> None:
    server.configure({"async_operations": True, "operation_polls": 0, "operation_error": "Target is invalid"})
    with pytest.raises(ProviderRejected) as err:
        await v1.disable(JOB)
    assert "Target is invalid" in str(err.value)
    assert RIVER not in server.active


async def test_an_operation_that_never_ends_is_checked_a_bounded_number_of_times(
    server: RiveryEmulator, v1: Client
) -> None:
    server.configure({"async_operations": True, "operation_polls": 1000})
    with pytest.raises(ProviderUnavailable) as err:
        await v1.enable(JOB)
    assert len(server.state.requests_to("v1_operation")) == Client.operation_checks
    assert "console" in str(err.value)


# -- statistics -----------------------------------------------------------------------------


@pytest.mark.lenient("the activities_statistics answer is undocumented: its shapes are assumed")
@pytest.mark.parametrize("shape", ["list", "dict", "flat"])
async def test_stats_count_runs_per_state(
    server: RiveryEmulator, v1: Client, state: EmulatorState, clock: ManualClock, shape: str
) -> None:
    server.configure({"stats_shape": shape})
    start = datetime.fromtimestamp(clock.now(), UTC) - timedelta(seconds=1)
    outcomes = [Outcome(queued_s=0, running_s=1)] * 3 + [Outcome(result="fail", queued_s=0, running_s=1)]
    for outcome in outcomes:
        state.start_run(RIVER, outcome=outcome, external=True)
    state.start_run(RIVER, outcome=Outcome(result="hang", queued_s=0), external=True)
    state.start_run(OTHER, outcome=Outcome(result="fail", queued_s=0, running_s=1), external=True)
    clock.advance(5)
    end = datetime.fromtimestamp(clock.now(), UTC)
    river = await v1.stats(JOB, start=start, end=end)
    assert dict(river.counts) == {RunState.SUCCEEDED: 3, RunState.FAILED: 1, RunState.RUNNING: 1}
    assert river.failure_rate == 0.25
    assert river.raw["units"] == 1.0
    assert (river.start, river.end) == (start, end)
    environment = await v1.stats(None, start=start, end=end)
    assert environment.counts[RunState.FAILED] == 2
    assert server.state.requests_to("v1_stats")[0].path == f"{V1_PREFIX}/activities_statistics"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", server.state.requests_to("v1_river_stats")[0].query["start_time"])


@pytest.mark.parametrize(
    "body",
    [
        {"succeeded": 4, "failed": 1, "units": 3.5},
        [{"status": "succeed", "count": 4}, {"status": "failed", "count": 1}],
        {"data": {"statuses": [{"run_status": "succeeded", "runs": 4}, {"run_status": "failed", "runs": "1"}]}},
        {"runs": {"partially succeed": 1, "succeed": 3, "failed": 1}, "total_runs": 5},
    ],
)
def test_plausible_statistics_shapes(body: Any) -> None:
    assert parse_statistics(body) == {RunState.SUCCEEDED: 4, RunState.FAILED: 1}


# -- configuration, narrowing, links --------------------------------------------------------


def test_a_v1_connection_needs_account_and_environment() -> None:
    with pytest.raises(ValidationError) as err:
        Connection(api="v1", api_token="t0ken-value")
    assert "account_id and environment_id" in str(err.value)
    with pytest.raises(ValidationError) as err:
        Connection(api="v1", api_token="t0ken-value", account_id="a")
    assert "needs environment_id" in str(err.value)
    conn = Connection(api="v1", api_token="t0ken-value", account_id="a", environment_id="e")
    assert conn.base_url == "https://api.rivery.io"
    assert Connection(api_token="t0ken-value").base_url == "https://console.rivery.io/api"
    assert Connection(api_token="t0ken-value", base_url="").base_url == "https://console.rivery.io/api"


def test_a_river_id_must_not_be_blank() -> None:
    with pytest.raises(ValidationError):
        Job(river_id="  ")
    assert Job(river_id=f" {RIVER} ").river_id == RIVER


async def test_the_console_link_points_at_the_river(legacy: Client) -> None:
    assert legacy.console_url(JOB, "run-1") == f"https://console.rivery.io/#/river/{RIVER}"


async def test_legacy_offers_cancel_and_logs_only_and_says_how_to_get_more(
    server: RiveryEmulator, legacy: Client, v1: Client
) -> None:
    # the log download is the legacy API's (rivery-cli's fetch_run_logs); v1 documents none
    assert legacy.offered() == frozenset({Capability.CANCEL, Capability.LOGS})
    assert not legacy.can(Capability.LIST_RUNS)
    assert v1.offered() == frozenset(Capability) - {Capability.ARCHIVE, Capability.RESET, Capability.RESUME,
                                                    Capability.LOGS}
    now = datetime.now(UTC)
    attempts = [
        legacy.list_runs(JOB, since=now),
        legacy.stats(JOB, start=now, end=now),
        legacy.enable(JOB),
        legacy.disable(JOB),
    ]
    for attempt in attempts:
        with pytest.raises(OperationNotSupported) as err:
            await attempt
        message = str(err.value)
        assert "legacy" in message
        assert "api: v1" in message
        assert "account_id and environment_id" in message
    assert not server.state.requests


# -- not found and refused credentials ------------------------------------------------------


@pytest.mark.parametrize("api", ["legacy", "v1"])
async def test_an_unknown_river_says_to_check_pipelines_yml(
    server: RiveryEmulator, legacy: Client, v1: Client, api: str
) -> None:
    client = legacy if api == "legacy" else v1
    with pytest.raises(ProviderNotFound) as err:
        await client.trigger(Job(river_id=UNKNOWN), {})
    message = str(err.value)
    assert f"Rivery does not know river {UNKNOWN}" in message
    assert "HTTP 404" in message
    assert f"River {UNKNOWN} was not found" in message  # Rivery's own words
    assert f"Check river_id '{UNKNOWN}' in pipelines.yml" in message
    assert not server.state.runs


@pytest.mark.parametrize("api", ["legacy", "v1"])
async def test_an_unknown_run_names_run_and_river(
    server: RiveryEmulator, legacy: Client, v1: Client, sleeps: SleepRecorder, api: str
) -> None:
    client = legacy if api == "legacy" else v1
    with pytest.raises(ProviderNotFound) as err:
        await client.get_status(JOB, "feedbeef")
    assert f"run feedbeef of river {RIVER}" in str(err.value)
    assert sleeps.delays == []


async def test_a_wrong_account_is_not_found_and_names_the_connection_settings(
    server: RiveryEmulator, sleeps: SleepRecorder
) -> None:
    conn = Connection(api="v1", base_url=server.url, api_token=TOKEN, account_id="other", environment_id=ENV)
    async with Client("rivery-v1", conn, retry=RETRY, sleep=sleeps) as client:
        with pytest.raises(ProviderNotFound) as err:
            await client.trigger(JOB, {})
    assert "account_id/environment_id of connection rivery-v1" in str(err.value)


@pytest.mark.parametrize("api", ["legacy", "v1"])
async def test_a_401_is_final_and_not_retried(
    server: RiveryEmulator, sleeps: SleepRecorder, clock: ManualClock, api: str
) -> None:
    run = server.state.start_run(RIVER)
    if api == "legacy":
        client, route = _legacy_client(server.url, sleeps, token="revoked-token-99"), "status"
    else:
        client, route = _v1_client(server.url, sleeps, clock, token="revoked-token-99"), "v1_status"
    try:
        with pytest.raises(ProviderAuthError) as err:
            await client.get_status(JOB, run.run_id)
    finally:
        await client.aclose()
    assert err.value.status_code == 401
    assert "revoked-token-99" not in str(err.value)
    assert len(server.state.requests_to(route)) == 1
    assert sleeps.delays == []


async def test_an_expired_token_fault_is_an_auth_error(server: RiveryEmulator, legacy: Client) -> None:
    run = await legacy.trigger(JOB, {})
    server.state.add_fault(Fault(route="status", kind="expired_token"))
    with pytest.raises(ProviderAuthError) as err:
        await legacy.get_status(JOB, run.run_id)
    assert "expired" in str(err.value)


async def test_the_emulator_refuses_missing_and_wrong_tokens(server: RiveryEmulator) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        missing = await http.get("/api/me")
        wrong = await http.get("/api/me", headers=_auth("nope-nope"))
        basic = await http.get("/api/me", headers={"Authorization": "Basic abc"})
    for answer in (missing, wrong, basic):
        assert answer.status_code == 401
        assert answer.json()["message"]


async def test_without_configured_tokens_any_bearer_token_is_accepted(state: EmulatorState) -> None:
    emulator = RiveryEmulator(state)
    await emulator.start()
    try:
        async with httpx.AsyncClient(base_url=emulator.url) as http:
            assert (await http.get("/api/me", headers=_auth("anything-goes"))).status_code == 200
            assert (await http.get("/api/me")).status_code == 401
    finally:
        await emulator.stop()


def test_configure_rejects_unknown_keys_and_bad_values() -> None:
    emulator = RiveryEmulator()
    emulator.configure({"tokens": ["a"], "account_id": "x", "environment_id": "y", "failure_code": "E"})
    assert (emulator.tokens, emulator.account_id, emulator.environment_id) == ({"a"}, "x", "y")
    emulator.configure({"tokens": "single-token"})
    assert emulator.tokens == {"single-token"}
    with pytest.raises(ValueError, match="unknown scenario keys"):
        emulator.configure({"colour": "blue"})
    with pytest.raises(ValueError, match="failure_code"):
        emulator.configure({"failure_code": "X"})


# -- regions --------------------------------------------------------------------------------


def test_the_base_url_help_points_eu_users_at_the_api_host_not_the_console() -> None:
    """seeds/rivery-api-overview-and-activities.txt, lines 55-57: the EU base URL is the API host."""
    text = Connection.model_fields["base_url"].description or ""
    assert "https://api.eu-west-1.rivery.io" in text
    assert "or the EU console's" not in text


async def test_a_legacy_connection_on_the_eu_api_host_runs_and_checks(state: EmulatorState, sleeps: SleepRecorder,
                                                                     clock: ManualClock) -> None:
    """The EU API host has the legacy paths at its root (``https://api.eu-west-1.rivery.io/run``), not under /api."""
    state.script(RIVER, Outcome(queued_s=1, running_s=1))
    emulator = RiveryEmulator(state, tokens={TOKEN}, legacy_prefix="")
    await emulator.start()
    client = Client("rivery-eu", Connection(base_url=emulator.url, api_token=TOKEN), retry=RETRY, sleep=sleeps)
    try:
        run = await client.trigger(JOB, {})
        clock.advance(5)
        assert (await client.get_status(JOB, run.run_id)).state is RunState.SUCCEEDED
    finally:
        await client.aclose()
        await emulator.stop()
    assert [r.path for r in state.requests] == ["/run", "/check_run"]


@pytest.mark.parametrize("api", ["legacy", "v1"])
async def test_a_trigger_answered_without_a_run_id_may_have_started(
    server: RiveryEmulator, legacy: Client, v1: Client, api: str
) -> None:
    """Rivery said yes but gave no id: the river may be running, so this is not "did not start"."""
    server.configure({"omit_run_id": True})
    client = legacy if api == "legacy" else v1
    with pytest.raises(TriggerOutcomeUnknown) as err:
        await client.trigger(JOB, {})
    assert "may have started" in str(err.value) and "Check the Rivery console" in str(err.value)
    assert len(server.state.runs) == 1  # it did start


# -- rate limits ----------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["legacy", "v1"])
async def test_the_emulator_allows_two_runs_of_a_river_a_minute_and_answers_429_past_that(
    server: RiveryEmulator, legacy: Client, v1: Client, clock: ManualClock, api: str
) -> None:
    """Boomi's legacy API reference, RunRiver: "River can be executed up to 2 times per minute"."""
    client = legacy if api == "legacy" else v1
    await client.trigger(JOB, {})
    clock.advance(30)
    await client.trigger(JOB, {})
    with pytest.raises(ProviderUnavailable) as err:
        await client.trigger(JOB, {})
    assert err.value.status_code == 429
    assert "up to 2 times per minute" in str(err.value)  # Rivery's JSON message
    assert "did not start" in str(err.value) or "rate limiting" in str(err.value)
    await client.trigger(Job(river_id=OTHER), {})  # another river is not held
    clock.advance(31)  # the first run left the minute
    await client.trigger(JOB, {})
    assert len(server.state.runs) == 4


async def test_the_emulator_allows_fifteen_runs_a_minute_per_token(
    server: RiveryEmulator, legacy: Client, clock: ManualClock
) -> None:
    """Boomi: "Each user can execute a river up to 15 times per minute" (across rivers)."""
    server.configure({"river_runs_per_minute": 0})
    for _ in range(15):
        await legacy.trigger(JOB, {})
    with pytest.raises(ProviderUnavailable) as err:
        await legacy.trigger(Job(river_id=OTHER), {})
    assert err.value.status_code == 429 and "15 times per minute" in str(err.value)
    clock.advance(60)
    await legacy.trigger(Job(river_id=OTHER), {})


def test_the_client_states_rivery_s_limits_per_river_and_per_token(legacy: Client) -> None:
    river, token = legacy.trigger_limits(JOB)
    assert (river.count, river.window, dict(river.job)) == (2, timedelta(minutes=1), {"river_id": RIVER})
    assert river.reason == "Rivery allows 2 runs of a river a minute"
    assert (token.count, token.window, dict(token.job)) == (15, timedelta(minutes=1), {})
    assert river.counts({"river_id": RIVER}) and not river.counts({"river_id": OTHER})



# -- strict mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["legacy", "v1"])
async def test_strict_refuses_run_variables_which_no_source_documents(
    server: RiveryEmulator, legacy: Client, v1: Client, api: str
) -> None:
    client = legacy if api == "legacy" else v1
    with pytest.raises(ProviderRejected) as err:
        await client.trigger(JOB, {"load_date": "2020-04-11"})
    assert err.value.status_code == 400
    assert "strict: no source for" in str(err.value)
    assert not server.state.runs


async def test_strict_refuses_a_cancel_whose_body_no_source_shows(server: RiveryEmulator, legacy: Client,
                                                                   v1: Client) -> None:
    run = await legacy.trigger(JOB, {})
    for client in (legacy, v1):
        with pytest.raises(ProviderRejected) as err:
            await client.cancel(JOB, run.run_id)
        assert "strict: no source for the body of" in str(err.value)
    assert server.state.runs[run.run_id].phase(server.state.now()) == "queued"


async def test_strict_v1_answers_carry_only_the_fields_a_source_names(
    server: RiveryEmulator, v1: Client, clock: ManualClock
) -> None:
    triggered = await v1.trigger(JOB, {})
    assert triggered.status is None  # the trigger answer's runs carry run_id only
    async with httpx.AsyncClient(base_url=server.url, headers=_auth()) as http:
        one = (await http.get(f"{V1_PREFIX}/rivers/{RIVER}/runs/{triggered.run_id}")).json()
    assert set(one) == {"run_id", "status"}
    clock.advance(11)
    running = await v1.get_status(JOB, triggered.run_id)
    assert (running.state, running.raw_status) == (RunState.RUNNING, "running")
    clock.advance(61)
    done = await v1.get_status(JOB, triggered.run_id)
    assert (done.state, done.raw_status, done.final, done.duration) == (RunState.SUCCEEDED, "succeeded", True, None)


async def test_strict_legacy_answers_are_the_seed_s_and_boomi_s_fields(
    server: RiveryEmulator, legacy: Client, clock: ManualClock
) -> None:
    server.state.script(RIVER, Outcome(result="fail", queued_s=1, running_s=1, message="Quota exceeded"))
    async with httpx.AsyncClient(base_url=server.url, headers=_auth()) as http:
        started = (await http.post("/api/run", json={"river_id": RIVER})).json()
        assert set(started) <= set(BOOMI_RUN_RIVER_SAMPLE)
        clock.advance(5)
        checked = (await http.get("/api/check_run", params={"run_id": started["run_id"]})).json()
    # the seed's check_run sample, error_description (Boomi's guide, rivery-cli's check_run) and river_id (Boomi)
    assert set(checked) <= set(json.loads(SEED_CHECK_RUN)) | {"error_description", "river_id"}
    assert checked["error_description"] == "Quota exceeded"
