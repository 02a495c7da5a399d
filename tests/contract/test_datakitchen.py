"""DataKitchen beyond the shared suite: the session (login, validatetoken, refreshed_token, 401),
order runs addressed by order and by order run, node breakdowns, listing, stop, resume, pause, and
the vendor's own examples against the emulator."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.emulators._core import EmulatorState, Fault, ManualClock, Outcome
from bot.emulators._server import json_response
from bot.emulators.datakitchen import DataKitchenEmulator
from bot.errors import (
    ProviderAuthError,
    ProviderRejected,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
)
from bot.models import RunState
from bot.providers import datakitchen
from bot.providers.datakitchen import Client, Connection, Job, jwt_expiry, map_status
from tests.contract.case_datakitchen import KITCHEN, PASSWORD, RECIPE, USERNAME, VARIATION
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder

JOB = Job(kitchen=KITCHEN, recipe=RECIPE, variation=VARIATION)
KEY = f"{KITCHEN}/{RECIPE}/{VARIATION}"
OTHER_KEY = f"{KITCHEN}/{RECIPE}/hourly_run"

Factory = Callable[..., Client]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def state(clock: ManualClock) -> EmulatorState:
    state = EmulatorState(clock=clock, default=None)
    state.script(KEY, Outcome(queued_s=10, running_s=60))
    state.script(OTHER_KEY, Outcome(queued_s=10, running_s=60))
    return state


@pytest.fixture
def emulator(state: EmulatorState) -> DataKitchenEmulator:
    return DataKitchenEmulator(state, users={USERNAME: PASSWORD})


@pytest.fixture
async def url(emulator: DataKitchenEmulator) -> AsyncIterator[str]:
    yield await emulator.start()
    await emulator.stop()


@pytest.fixture
async def make(url: str) -> AsyncIterator[Factory]:
    clients: list[Client] = []

    def factory(*, password: str = PASSWORD, clock: Callable[[], float] | None = None, timeout: float = 5.0) -> Client:
        conn = Connection(base_url=url, username=USERNAME, password=password, timeout_seconds=timeout)
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        client = Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder(), **extra)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


@pytest.fixture
def client(make: Factory) -> Client:
    return make()


def bearer(request: Any) -> str:
    return str(request.headers["authorization"]).removeprefix("Bearer ")


def only_run(emulator: DataKitchenEmulator) -> tuple[str, str]:
    """(order_id, hid) of the single order the test created."""
    (order,) = emulator.orders.values()
    return order.order_id, order.servings[-1]


# -- the session ------------------------------------------------------------------------------


async def test_a_401_logs_in_again_once_and_the_request_succeeds(
    client: Client, emulator: DataKitchenEmulator
) -> None:
    run = await client.trigger(JOB, {})
    emulator.state.add_fault(Fault(route="status", kind="expired_token", times=1))
    status = await client.get_status(JOB, run.run_id)
    assert status.state is RunState.QUEUED
    assert len(emulator.state.requests_to("login")) == 2
    assert len(emulator.state.requests_to("status")) == 2
    first, replay = emulator.state.requests_to("status")
    assert bearer(first) != bearer(replay)  # the replay carries the new session's token


async def test_401s_after_logging_in_again_are_an_auth_error_not_a_loop(
    client: Client, emulator: DataKitchenEmulator
) -> None:
    run = await client.trigger(JOB, {})
    emulator.state.add_fault(Fault(route="status", kind="expired_token", times=None))
    with pytest.raises(ProviderAuthError) as err:
        await client.get_status(JOB, run.run_id)
    assert "token expired" in str(err.value)
    assert len(emulator.state.requests_to("login")) == 2  # the first login and one more, no loop
    assert len(emulator.state.requests_to("status")) == 2
    message = str(err.value)
    assert PASSWORD not in message
    for token in client.session.tokens():
        assert token not in message


async def test_a_wrong_password_is_an_auth_error_that_names_the_user_not_the_password(
    make: Factory, emulator: DataKitchenEmulator
) -> None:
    client = make(password="not-the-password")
    with pytest.raises(ProviderAuthError) as err:
        await client.get_status(JOB, "1a2b3c")
    message = str(err.value)
    assert "Wrong username or password" in message
    assert USERNAME in message
    assert "not-the-password" not in message
    assert err.value.status_code == 401
    assert len(emulator.state.requests_to("login")) == 1  # a refused login is not retried
    assert not emulator.state.requests_to("status")


async def test_validatetoken_renews_a_token_that_is_about_to_expire(
    make: Factory, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    emulator.configure({"token_ttl_s": 600})
    client = make(clock=clock.now)
    run = await client.trigger(JOB, {})
    assert len(emulator.state.requests_to("validatetoken")) == 1  # the read before the create
    before = bearer(emulator.state.requests_to("trigger")[-1])
    clock.advance(450)  # 150 s left: fewer than 180
    await client.get_status(JOB, run.run_id)
    assert len(emulator.state.requests_to("validatetoken")) == 2
    assert len(emulator.state.requests_to("login")) == 1
    after = bearer(emulator.state.requests_to("status")[-1])
    assert after != before
    expiry = jwt_expiry(after)
    assert expiry is not None
    assert expiry - clock.now() > 500
    await client.get_status(JOB, run.run_id)  # fresh again: no further renewal
    assert len(emulator.state.requests_to("validatetoken")) == 2


async def test_a_refreshed_token_header_is_adopted(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    emulator.configure({"token_ttl_s": 600, "refreshed_token_header": True})
    run = await client.trigger(JOB, {})
    clock.advance(500)  # the emulator now offers a fresh token with its answers
    await client.get_status(JOB, run.run_id)
    clock.advance(200)  # the first token has expired by now
    status = await client.get_status(JOB, run.run_id)
    assert status.run_id == run.run_id
    first, second = emulator.state.requests_to("status")
    assert bearer(first) != bearer(second)
    assert len(emulator.state.requests_to("login")) == 1  # no 401, no second login


async def test_a_login_answered_with_a_quoted_token(client: Client, emulator: DataKitchenEmulator) -> None:
    emulator.configure({"quoted_token": True})
    run = await client.trigger(JOB, {})
    await client.get_status(JOB, run.run_id)
    token = bearer(emulator.state.requests_to("status")[-1])
    assert not token.startswith('"')
    assert token.count(".") == 2
    assert len(emulator.state.requests_to("login")) == 1


async def test_concurrent_first_reads_share_one_login(client: Client, emulator: DataKitchenEmulator) -> None:
    hid = emulator.external_run(KEY, {})
    run_id = f"{emulator.state.runs[hid].extra['order_id']}/{hid}"
    statuses = await asyncio.gather(*(client.get_status(JOB, run_id) for _ in range(8)))
    assert {s.state for s in statuses} == {RunState.QUEUED}
    assert len(emulator.state.requests_to("login")) == 1


async def test_a_busy_login_before_a_trigger_is_retried_and_the_order_created_once(
    client: Client, emulator: DataKitchenEmulator
) -> None:
    emulator.state.add_fault(Fault(route="login", status=503, times=1))
    run = await client.trigger(JOB, {})
    assert run.run_id
    assert len(emulator.state.requests_to("login")) == 2
    assert len(emulator.state.requests_to("trigger")) == 1


async def test_tokens_are_redacted_from_error_messages(url: str, emulator: DataKitchenEmulator) -> None:
    class Echo(DataKitchenEmulator):
        async def on_create(self, request: web.Request) -> web.StreamResponse:
            said = request.headers["authorization"]
            return json_response({"message": {"error": f"bad order for session {said}"}}, 412)

    echo = Echo(emulator.state, users={USERNAME: PASSWORD})
    echo_url = await echo.start()
    try:
        conn = Connection(base_url=echo_url, username=USERNAME, password=PASSWORD)
        async with Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder()) as client:
            with pytest.raises(ProviderRejected) as err:
                await client.trigger(JOB, {})
            message = str(err.value)
            assert "bad order for session Bearer ***" in message
            assert client.session.token
            assert client.session.token not in message
    finally:
        await echo.stop()


# -- create, status, details ------------------------------------------------------------------


async def test_parameters_reach_the_create_body_as_runtime_overrides(
    client: Client, emulator: DataKitchenEmulator
) -> None:
    run = await client.trigger(JOB, {"DT": "20240501", "target_schema": "sales_v2"})
    (create,) = emulator.state.requests_to("trigger")
    assert create.method == "PUT"
    assert create.path == f"/v2/order/create/{KITCHEN}/{RECIPE}/{VARIATION}"
    assert create.body == {"parameters": {"DT": "20240501", "target_schema": "sales_v2"}, "schedule": "now"}
    order_id, hid = only_run(emulator)
    assert run.run_id == order_id
    assert emulator.state.runs[hid].parameters == {"DT": "20240501", "target_schema": "sales_v2"}


async def test_get_status_by_order_and_by_order_run(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    run = await client.trigger(JOB, {})
    order_id, hid = only_run(emulator)
    clock.advance(11)
    by_order = await client.get_status(JOB, order_id)
    by_run = await client.get_status(JOB, f"{order_id}/{hid}")
    for status in (by_order, by_run):
        assert status.state is RunState.RUNNING
        assert status.raw_status == "ACTIVE_SERVING"
        assert status.extra["order_id"] == order_id
        assert status.extra["serving_hid"] == hid
        assert status.started_at is not None
        assert abs(status.started_at.timestamp() - (clock.now() - 1)) < 1
    assert by_order.run_id == run.run_id == order_id
    assert by_run.run_id == f"{order_id}/{hid}"
    assert not emulator.state.requests_to("details")  # one call per poll while running
    clock.advance(61)
    done = await client.get_status(JOB, f"{order_id}/{hid}")
    assert done.state is RunState.SUCCEEDED
    assert done.final
    assert done.duration == timedelta(seconds=60)
    assert [t.name for t in done.tasks] == ["extract", "load"]
    assert {t.state for t in done.tasks} == {RunState.SUCCEEDED}
    assert done.message == ""


async def test_an_order_without_an_order_run_yet_is_queued(client: Client, emulator: DataKitchenEmulator) -> None:
    run = await client.trigger(JOB, {})
    emulator.orders[run.run_id].servings.clear()  # the platform has not planned the run yet
    status = await client.get_status(JOB, run.run_id)
    assert status.state is RunState.QUEUED
    assert status.raw_status == "PLANNED_SERVING"
    assert status.message == "no order run yet"
    assert not status.final


async def test_a_failed_run_names_the_failed_node_and_the_log_message(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    emulator.state.script(KEY, Outcome(result="fail", queued_s=1, running_s=5, message="disk full on /data",
                                       tasks=("extract", "transform", "load"), failed_tasks=("load",)))
    run = await client.trigger(JOB, {})
    clock.advance(3)
    running = await client.get_status(JOB, run.run_id)
    assert running.state is RunState.RUNNING
    assert not emulator.state.requests_to("details")
    clock.advance(10)
    status = await client.get_status(JOB, run.run_id)
    assert status.state is RunState.FAILED
    assert status.final
    assert status.raw_status == "SERVING_ERROR"
    assert [t.name for t in status.failed_tasks] == ["load"]
    assert status.failed_tasks[0].raw_status == "DKNodeStatus_production_error"
    assert "disk full on /data" in status.failed_tasks[0].message
    assert "Failed node: load." in status.message
    assert "disk full on /data" in status.message
    (details,) = emulator.state.requests_to("details")
    assert details.body["serving_hid"] == status.extra["serving_hid"]
    assert details.body["summary"] is True
    assert details.body["logs"] is True


async def test_a_details_call_that_fails_for_good_still_reports_the_end(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    run = await client.trigger(JOB, {})
    clock.advance(100)
    emulator.state.add_fault(Fault(route="details", status=417, times=None))
    status = await client.get_status(JOB, run.run_id)
    assert status.state is RunState.SUCCEEDED
    assert "gave no details" in status.message


async def test_a_200_with_an_error_key_is_an_error(url: str, emulator: DataKitchenEmulator) -> None:
    class ErrorIn200(DataKitchenEmulator):
        async def on_create(self, request: web.Request) -> web.StreamResponse:
            return json_response({"status": "error", "error": "Order could not be scheduled: agent offline"})

        async def on_servings(self, request: web.Request) -> web.StreamResponse:
            return json_response({"error": {"message": "Order lookup failed"}, "servings": []})

    server = ErrorIn200(emulator.state, users={USERNAME: PASSWORD})
    server_url = await server.start()
    try:
        conn = Connection(base_url=server_url, username=USERNAME, password=PASSWORD)
        async with Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder()) as client:
            with pytest.raises(ProviderRejected) as err:
                await client.trigger(JOB, {})
            assert "agent offline" in str(err.value)
            with pytest.raises(ProviderRejected) as err2:
                await client.get_status(JOB, "some-order")
            assert "Order lookup failed" in str(err2.value)
    finally:
        await server.stop()


async def test_a_502_html_page_is_not_shown_in_messages(
    client: Client, emulator: DataKitchenEmulator
) -> None:
    await client.trigger(JOB, {})
    emulator.state.add_fault(Fault(route="list", kind="html", status=502, times=None))
    with pytest.raises(ProviderUnavailable) as err:
        await client.list_runs(JOB, since=datetime.now(UTC) - timedelta(days=1))
    assert "502" in str(err.value)
    assert "<html>" not in str(err.value)
    assert "Bad Gateway" not in str(err.value)
    emulator.state.clear_faults()
    emulator.state.add_fault(Fault(route="trigger", kind="html", status=504, times=1))
    with pytest.raises(TriggerOutcomeUnknown) as unknown:
        await client.trigger(JOB, {})
    assert "<html>" not in str(unknown.value)


async def test_417_on_an_unknown_recipe_carries_the_api_error_text(
    client: Client, emulator: DataKitchenEmulator
) -> None:
    emulator.configure({"kitchens": {KITCHEN: {RECIPE: [VARIATION]}}})
    with pytest.raises(ProviderRejected) as err:
        await client.trigger(Job(kitchen=KITCHEN, recipe="No_Such_Recipe", variation=VARIATION), {})
    assert err.value.status_code == 417
    assert f"Recipe No_Such_Recipe does not exist in kitchen {KITCHEN}" in str(err.value)
    assert "pipelines.yml" in str(err.value)
    assert not emulator.orders


async def test_a_403_is_an_auth_error_about_permissions(client: Client, emulator: DataKitchenEmulator) -> None:
    run = await client.trigger(JOB, {})
    emulator.state.add_fault(Fault(route="status", status=403, times=1))
    with pytest.raises(ProviderAuthError) as err:
        await client.get_status(JOB, run.run_id)
    assert "permission" in str(err.value)


# -- list, stop, resume, pause ----------------------------------------------------------------


async def test_list_runs_includes_runs_started_outside_the_bot(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    since = datetime.fromtimestamp(clock.now(), UTC)
    external_hid = emulator.external_run(KEY, {"DT": "20240430"})
    clock.advance(30)
    ours = await client.trigger(JOB, {})
    emulator.external_run(OTHER_KEY, {})  # another variation: not this pipeline's
    clock.advance(30)
    runs = await client.list_runs(JOB, since=since)
    external_order = emulator.state.runs[external_hid].extra["order_id"]
    our_order = ours.run_id
    our_hid = emulator.orders[our_order].servings[0]
    assert [r.run_id for r in runs] == [f"{our_order}/{our_hid}", f"{external_order}/{external_hid}"]
    assert [r.state for r in runs] == [RunState.RUNNING, RunState.RUNNING]
    later = await client.list_runs(JOB, since=datetime.fromtimestamp(clock.now() - 25, UTC))
    assert [r.run_id for r in later] == [f"{our_order}/{our_hid}"]
    query = emulator.state.requests_to("list")[0].query
    assert query == {"start": "0", "count": "50", "scount": "50"}


async def test_list_runs_pages_through_the_kitchen(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    since = datetime.fromtimestamp(clock.now() - 1, UTC)
    for _ in range(55):
        emulator.external_run(OTHER_KEY, {})
        clock.advance(1)
    emulator.external_run(KEY, {})  # the newest order is ours…
    clock.advance(1)
    for _ in range(3):
        emulator.external_run(OTHER_KEY, {})
    first = next(iter(emulator.orders.values()))
    first.variation = VARIATION  # …and so is the oldest one, on the second page
    runs = await client.list_runs(JOB, since=since, limit=10)
    assert len(runs) == 2
    assert [q.query["start"] for q in emulator.state.requests_to("list")] == ["0", "50"]


async def test_cancel_stops_the_order_run(client: Client, emulator: DataKitchenEmulator, clock: ManualClock) -> None:
    emulator.state.script(KEY, Outcome(result="hang", queued_s=1))
    run = await client.trigger(JOB, {})
    clock.advance(5)
    await client.cancel(JOB, run.run_id)
    status = await client.get_status(JOB, run.run_id)
    assert status.state is RunState.CANCELED
    assert status.final
    assert status.raw_status == "STOPPED_SERVING"
    order_id, hid = only_run(emulator)
    (stop,) = emulator.state.requests_to("stop")
    assert stop.path == f"/v2/serving/stop/{hid}"
    assert stop.body == {"serving_hid": hid, "kitchen_name": KITCHEN}
    with pytest.raises(ProviderRejected) as err:  # a second stop: nothing is running any more
        await client.cancel(JOB, f"{order_id}/{hid}")
    assert "cannot be stopped" in str(err.value)


async def test_resume_after_a_failure_reruns_the_order(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    emulator.state.script(KEY, [Outcome(result="fail", queued_s=1, running_s=1, message="bad row",
                                        failed_tasks=("load",)),
                                Outcome(queued_s=1, running_s=5)])
    run = await client.trigger(JOB, {"DT": "20240501"})
    clock.advance(5)
    assert (await client.get_status(JOB, run.run_id)).state is RunState.FAILED
    order_id, failed_hid = only_run(emulator)

    resumed = await client.resume(JOB, run.run_id, {"DT": "20240502"})
    assert resumed.run_id == order_id
    (resume,) = emulator.state.requests_to("resume")
    assert resume.path == f"/v2/order/resume/{failed_hid}"
    assert resume.body == {"kitchen_name": KITCHEN, "serving_hid": failed_hid, "skip-failed-nodes": False,
                           "parameters": {"DT": "20240502"}}

    old = await client.get_status(JOB, f"{order_id}/{failed_hid}")
    assert old.state is RunState.UNKNOWN
    assert old.final
    assert old.raw_status == "SERVING_RERAN"
    assert "superseded" in old.message

    new = await client.get_status(JOB, resumed.run_id)
    assert new.state is RunState.QUEUED
    assert new.extra["serving_hid"] != failed_hid
    clock.advance(10)
    done = await client.get_status(JOB, resumed.run_id)
    assert done.state is RunState.SUCCEEDED
    assert emulator.state.runs[done.extra["serving_hid"]].parameters == {"DT": "20240502"}


async def test_resuming_a_run_that_did_not_fail_is_refused(client: Client, clock: ManualClock) -> None:
    run = await client.trigger(JOB, {})
    clock.advance(100)
    with pytest.raises(ProviderRejected) as err:
        await client.resume(JOB, run.run_id, {})
    assert "Only failed order runs can be resumed" in str(err.value)


async def test_disable_and_enable_pause_and_unpause_the_orders(
    client: Client, emulator: DataKitchenEmulator
) -> None:
    emulator.state.script(KEY, Outcome(result="hang"))
    run = await client.trigger(JOB, {})
    emulator.external_run(OTHER_KEY, {})
    await client.disable(JOB)
    assert emulator.orders[run.run_id].paused
    assert [o.paused for o in emulator.orders.values()] == [True, False]
    (pause,) = emulator.state.requests_to("pause")
    assert pause.path == f"/v2/order/pause/{run.run_id}"
    assert pause.body == {"kitchen_name": KITCHEN}
    with pytest.raises(ProviderRejected) as err:  # paused already
        await client.disable(JOB)
    assert "no order to pause" in str(err.value)
    await client.enable(JOB)
    assert not emulator.orders[run.run_id].paused
    assert len(emulator.state.requests_to("unpause")) == 1


async def test_disable_without_any_order_is_refused(client: Client) -> None:
    with pytest.raises(ProviderRejected) as err:
        await client.disable(JOB)
    assert "there is no order to pause" in str(err.value)


# -- the status model -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "state", "final"),
    [
        ("PLANNED_SERVING", RunState.QUEUED, False),
        ("ACTIVE_SERVING", RunState.RUNNING, False),
        ("COMPLETED_SERVING", RunState.SUCCEEDED, True),
        ("SERVING_ERROR", RunState.FAILED, True),
        ("STOPPED_SERVING", RunState.CANCELED, True),
        ("SERVING_RERAN", RunState.UNKNOWN, True),
        ("completed_serving", RunState.SUCCEEDED, True),
        ("SOMETHING_NEW", RunState.UNKNOWN, False),
        ("", RunState.UNKNOWN, False),
    ],
)
def test_map_status_table(raw: str, state: RunState, final: bool) -> None:
    assert map_status(raw) is state
    assert datakitchen.is_final(raw) is final


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("DKNodeStatus_ready_for_production", RunState.QUEUED),
        ("DKNodeStatus_in_production", RunState.RUNNING),
        ("DKNodeStatus_completed_production", RunState.SUCCEEDED),
        ("DKNodeStatus_production_error", RunState.FAILED),
        ("DKNodeStatus_production_stopped", RunState.CANCELED),
        ("DKNodeStatus_Skipped", RunState.CANCELED),
        ("SERVING_ERROR", RunState.FAILED),
        ("DKNodeStatus_Unknown", RunState.UNKNOWN),
    ],
)
def test_node_status_table(raw: str, state: RunState) -> None:
    assert datakitchen.node_state(raw) is state


def test_jwt_expiry_is_read_without_the_signature() -> None:
    payload = base64.urlsafe_b64encode(json.dumps({"exp": 1700000000}).encode()).rstrip(b"=").decode()
    assert jwt_expiry(f"eyJhbGciOiJIUzI1NiJ9.{payload}.not-a-signature") == 1700000000.0
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.!!!.c") is None


# -- the vendor's own examples ----------------------------------------------------------------


async def test_the_seed_flow_works_with_plain_httpx(url: str, emulator: DataKitchenEmulator) -> None:
    """The seed's Python example: login with form fields, then create with a JSON body."""
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/v2/login", data={"username": USERNAME, "password": PASSWORD})
        assert r.status_code == 200
        token = r.text
        assert token.count(".") == 2
        overrides = {"variable1": "override1", "value2": "override2"}
        parameters = json.dumps({"parameters": overrides})
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
        r2 = await http.put(f"/v2/order/create/{KITCHEN}/{RECIPE}/{VARIATION}", headers=headers, content=parameters)
        assert r2.status_code == 200
        answer = r2.json()
        assert answer["status"] == "success"
        assert answer["serving_hid"] == answer["order_id"]
        assert answer["variable_overrides"] == overrides

        # the seed's bash example: curl -d without a working JSON header sends a form content type
        r3 = await http.put(
            f"/v2/order/create/{KITCHEN}/{RECIPE}/{VARIATION}",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {token}"},
            content='{"parameters":{"testvar":"override_value"}}',
        )
        assert r3.status_code == 200

        # curl -f: a refused login fails (non-2xx)
        bad = await http.post("/v2/login", data={"username": USERNAME, "password": "nope"})
        assert bad.status_code == 401
    sent = [run.parameters for run in emulator.state.runs.values()]
    assert sent == [{"variable1": "override1", "value2": "override2"}, {"testvar": "override_value"}]
    assert {r.body.get("schedule") for r in emulator.state.requests_to("trigger")} == {None}  # the seed sends none


async def test_the_documented_create_answer_with_only_serving_hid(
    client: Client, emulator: DataKitchenEmulator
) -> None:
    """The vendor docs' create answer names the order ``serving_hid``; DKUtils reads ``order_id``."""
    documented = {
        "status": "success",
        "serving_hid": "f891ab00-ffcb-11e8-ad07-0242ac110002",
        "variable_overrides": {"some key": "some value"},
    }
    assert datakitchen._order_id_of(documented) == "f891ab00-ffcb-11e8-ad07-0242ac110002"
    emulator.configure({"create_keys": ["serving_hid"]})
    run = await client.trigger(JOB, {})
    (order,) = emulator.orders.values()
    assert run.run_id == order.order_id
    assert (await client.get_status(JOB, run.run_id)).state is RunState.QUEUED


async def test_the_dkutils_order_run_sample_parses(client: Client) -> None:
    """The order-run entry DKUtils documents for order/servings, verbatim."""
    sample = {
        "order_id": "71d8a966-38e0-11ea-8cf9-a6bbea194887",
        "status": "COMPLETED_SERVING",
        "orderrun_status": "OrderRun Completed",
        "hid": "a8978ddc-83c7-11ea-88ba-9a815c325cee",
        "variation_name": "dk_agent_checker_run_hourly",
        "timings": {
            "start-time": 1587470413845,
            "end-time": 1587470432441,
            "duration": 18596
        }
    }
    status = client._serving_status(sample["order_id"], sample["order_id"], sample)
    assert status.state is RunState.SUCCEEDED
    assert status.final
    assert status.extra["serving_hid"] == "a8978ddc-83c7-11ea-88ba-9a815c325cee"
    assert status.started_at == datetime.fromtimestamp(1587470413.845, UTC)
    assert status.ended_at == datetime.fromtimestamp(1587470432.441, UTC)
    assert status.duration == timedelta(milliseconds=18596)


# -- the emulator on its own ------------------------------------------------------------------


async def test_emulator_refuses_tokens_it_did_not_issue_or_that_expired(
    url: str, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        assert (await http.get("/v2/validatetoken")).status_code == 401
        forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4IiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl"
        r = await http.get("/v2/kitchen/list", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401
        assert r.json() == {"message": {"error": "invalid token"}}
        token = (await http.post("/v2/login", json={"username": USERNAME, "password": PASSWORD})).text
        auth = {"Authorization": f"Bearer {token}"}
        fresh = await http.get("/v2/validatetoken", headers=auth)
        assert fresh.status_code == 200
        assert fresh.json()["token"] != token
        clock.advance(4 * 3600 + 1)
        expired = await http.get("/v2/kitchen/list", headers=auth)
        assert expired.status_code == 401
        assert expired.json() == {"message": {"error": "token expired"}}
        assert (await http.get("/v2/validatetoken", headers=auth)).status_code == 401


async def test_emulator_answers_what_dkutils_reads_before_creating_an_order(
    url: str, emulator: DataKitchenEmulator
) -> None:
    emulator.configure({"kitchens": {KITCHEN: {RECIPE: [VARIATION, "hourly_run"]}}})
    async with httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/v2/login", data={"username": USERNAME, "password": PASSWORD})).text
        auth = {"authorization": f"bearer {token}"}  # header names and scheme in lower case
        kitchens = (await http.get("/v2/kitchen/list", headers=auth)).json()["kitchens"]
        assert [k["name"] for k in kitchens] == [KITCHEN]
        recipes = (await http.get(f"/v2/kitchen/recipenames/{KITCHEN}", headers=auth)).json()["recipes"]
        assert recipes == [RECIPE]
        answer = (await http.get(f"/v2/recipe/file/{KITCHEN}/{RECIPE}/variations.json", headers=auth)).json()
        assert sorted(json.loads(answer["contents"])["variation-list"]) == sorted(["hourly_run", VARIATION])
        missing = await http.get("/v2/kitchen/recipenames/Nowhere", headers=auth)
        assert missing.status_code == 404
        assert "Nowhere" in missing.json()["message"]["error"]


async def test_emulator_order_status_pages_and_details_put_the_requested_run_first(
    url: str, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    hids = []
    for _ in range(3):
        hids.append(emulator.external_run(KEY, {}))
        clock.advance(1)
    orders = [emulator.state.runs[h].extra["order_id"] for h in hids]
    async with httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/v2/login", data={"username": USERNAME, "password": PASSWORD})).text
        auth = {"Authorization": f"Bearer {token}"}
        page = (await http.get(f"/v2/order/status/{KITCHEN}", params={"start": 1, "count": 1, "scount": 1},
                               headers=auth)).json()
        assert [o["hid"] for o in page["orders"]] == [orders[1]]
        assert page["total"] == 3
        assert [s["hid"] for s in page["servings"][orders[1]]["servings"]] == [hids[1]]
        by_body = (await http.request("GET", f"/v2/order/status/{KITCHEN}", headers=auth,
                                      json={"recipe": RECIPE, "variation": "other", "servingsCount": 1})).json()
        assert by_body["orders"] == []
        detail = (await http.post(f"/v2/order/details/{KITCHEN}", headers=auth,
                                  json={"serving_hid": hids[0], "summary": True})).json()
        assert [s["hid"] for s in detail["servings"]] == [hids[0]]
        assert set(detail["servings"][0]["summary"]["nodes"]) == {"extract", "load"}
        by_order = (await http.post(f"/v2/order/details/{KITCHEN}", headers=auth,
                                    json={"serving_book_hid": orders[2]})).json()
        assert [s["hid"] for s in by_order["servings"]] == [hids[2]]
        assert "summary" not in by_order["servings"][0]  # only when asked for
        newest = (await http.post(f"/v2/order/details/{KITCHEN}", headers=auth, json={})).json()
        assert [s["hid"] for s in newest["servings"]] == [hids[2]]
        unknown = await http.post(f"/v2/order/details/{KITCHEN}", headers=auth, json={"serving_hid": "nope"})
        assert unknown.status_code == 404


async def test_emulator_control_api_starts_external_orders(url: str, emulator: DataKitchenEmulator) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/_emulator/runs", json={"job": KEY, "parameters": {"DT": "1"}})
        assert r.status_code == 201
        hid = r.json()["run_id"]
        bad = await http.post("/_emulator/runs", json={"job": "no-slashes"})
        assert bad.status_code == 400
    assert emulator.state.runs[hid].external
    assert emulator.state.runs[hid].extra["order_id"] in emulator.orders


def test_emulator_scenario_keys(emulator: DataKitchenEmulator) -> None:
    emulator.configure({"users": {"a": "b"}, "token_ttl_s": 60, "quoted_token": True})
    assert emulator.users == {"a": "b"}
    assert emulator.token_ttl_s == 60
    assert emulator.quoted_token
    with pytest.raises(ValueError, match="unknown scenario keys"):
        emulator.configure({"colour": "blue"})
    with pytest.raises(ValueError, match="create_keys"):
        emulator.configure({"create_keys": ["run_id"]})
