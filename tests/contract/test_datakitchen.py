"""DataKitchen beyond the shared suite: the session (login, validatetoken, refreshed_token, 401),
order runs addressed by order and by order run, node breakdowns, listing, stop, resume, pause, and
the vendor's own examples against the emulator."""

from __future__ import annotations

import asyncio
import base64
import json
import textwrap
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web

from bot.catalog.load import parse_catalog
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
from bot.providers.base import LOG_KEEP_LINES
from bot.providers.datakitchen import Client, Connection, Job, answers, jwt_expiry, logs, map_status
from tests.contract import dk_samples as samples
from tests.contract.case_datakitchen import KITCHEN, PASSWORD, RECIPE, USERNAME, VARIATION
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder
from tests.local_servers import web_server

ROOT = Path(__file__).resolve().parents[2]
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
    """Strict: the emulator serves only what a DataKitchen source shows (see ``relies_on_assumption``)."""
    return DataKitchenEmulator(state, users={USERNAME: PASSWORD}, strict=True)


def relies_on_assumption(emulator: DataKitchenEmulator, why: str) -> None:
    """A test that depends on something no DataKitchen source shows says what, and leaves strict mode."""
    assert why.strip(), "say which assumption the test depends on"
    emulator.strict = False


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
    assert query == {"start": "0", "count": "50", "scount": "50", "r": RECIPE}  # DKCloudCommand's list_order


async def test_list_runs_pages_through_the_recipes_orders(
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
    assert [q.query["start"] for q in emulator.state.requests_to("list")] == ["0", "49"]  # overlapping by one order
    assert {q.query["r"] for q in emulator.state.requests_to("list")} == {RECIPE}


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


def order_of(emulator: DataKitchenEmulator, hid: str) -> str:
    return str(emulator.state.runs[hid].extra["order_id"])


async def test_disable_pauses_only_the_active_orders_and_enable_only_the_paused_ones(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    """Orders say their state under ``order-status``: a finished or paused order is not paused again."""
    emulator.state.script(KEY, [Outcome(result="hang"), Outcome(queued_s=1, running_s=1), Outcome(result="hang")])
    live = order_of(emulator, emulator.external_run(KEY, {}))  # the oldest: listed last
    clock.advance(1)
    done = order_of(emulator, emulator.external_run(KEY, {}))
    clock.advance(5)  # finished: COMPLETED_ORDER, listed before the live one
    paused = order_of(emulator, emulator.external_run(KEY, {}))
    emulator.orders[paused].paused = True  # paused in the console: PAUSED_ORDER
    emulator.state.script(f"{KITCHEN}/Other_Recipe/{VARIATION}", Outcome(result="hang"))
    other = order_of(emulator, emulator.external_run(f"{KITCHEN}/Other_Recipe/{VARIATION}", {}))

    await client.disable(JOB)
    assert [r.path for r in emulator.state.requests_to("pause")] == [f"/v2/order/pause/{live}"]
    assert emulator.orders[live].paused
    assert not emulator.orders[done].paused
    assert not emulator.orders[other].paused  # another recipe in the same kitchen
    (listing,) = emulator.state.requests_to("list")
    assert listing.query["r"] == RECIPE  # the platform filters by recipe, as DKCloudCommand asks

    await client.enable(JOB)
    unpaused = {r.path for r in emulator.state.requests_to("unpause")}
    assert unpaused == {f"/v2/order/unpause/{live}", f"/v2/order/unpause/{paused}"}
    assert not emulator.orders[live].paused
    assert not emulator.orders[paused].paused
    with pytest.raises(ProviderRejected) as err:
        await client.enable(JOB)
    assert "none of the 3 order(s)" in str(err.value)
    assert "PAUSED_ORDER" in str(err.value)
    assert "ACTIVE_ORDER, COMPLETED_ORDER" in str(err.value)


async def test_one_refused_pause_does_not_keep_the_other_orders_running(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    emulator.state.script(KEY, Outcome(result="hang"))
    first = order_of(emulator, emulator.external_run(KEY, {}))
    clock.advance(1)
    second = order_of(emulator, emulator.external_run(KEY, {}))
    emulator.state.add_fault(Fault(route="pause", status=417, times=1))  # the newest order refuses
    with pytest.raises(ProviderRejected) as err:
        await client.disable(JOB)
    assert "paused 1 of the 2 order(s)" in str(err.value)
    assert f"pause order {second}" in str(err.value)
    assert emulator.orders[first].paused
    assert not emulator.orders[second].paused


async def test_the_emulator_pauses_only_active_orders_and_unpauses_only_paused_ones(
    url: str, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    emulator.state.script(KEY, Outcome(queued_s=1, running_s=1))
    done = order_of(emulator, emulator.external_run(KEY, {}))
    clock.advance(5)
    async with httpx.AsyncClient(base_url=url) as http:
        token = (await http.post("/v2/login", data={"username": USERNAME, "password": PASSWORD})).text
        auth = {"Authorization": f"Bearer {token}"}
        body = {"kitchen_name": KITCHEN}
        listed = (await http.get(f"/v2/order/status/{KITCHEN}", params={"r": RECIPE}, headers=auth)).json()
        assert [o["order-status"] for o in listed["orders"]] == ["COMPLETED_ORDER"]
        refused = await http.put(f"/v2/order/pause/{done}", json=body, headers=auth)
        assert refused.status_code == 417
        assert "COMPLETED_ORDER" in refused.json()["message"]["error"]
        assert (await http.put(f"/v2/order/unpause/{done}", json=body, headers=auth)).status_code == 417


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
        assert set(answer) == {"order_id", "serving_hid", "variable_overrides"}  # what a source shows
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
    """DKCloudCommand 1.0's create_order read the new order's id as ``serving_hid``; 1.5 and DKUtils read
    ``order_id``."""
    documented = {
        "status": "success",
        "serving_hid": "f891ab00-ffcb-11e8-ad07-0242ac110002",
        "variable_overrides": {"some key": "some value"},
    }
    assert answers._order_id_of(documented, answers._CREATED_KEYS) == "f891ab00-ffcb-11e8-ad07-0242ac110002"
    emulator.configure({"create_keys": ["serving_hid"]})
    run = await client.trigger(JOB, {})
    (order,) = emulator.orders.values()
    assert run.run_id == order.order_id
    assert (await client.get_status(JOB, run.run_id)).state is RunState.QUEUED


async def test_the_dkutils_order_run_sample_parses(client: Client) -> None:
    """The order-run entry DKUtils documents for order/servings."""
    sample = samples.ORDER_RUN
    status = client._serving_status(sample["order_id"], sample["order_id"], sample)
    assert status.state is RunState.SUCCEEDED
    assert status.final
    assert status.extra["serving_hid"] == "a8978ddc-83c7-11ea-88ba-9a815c325cee"
    assert status.started_at == datetime.fromtimestamp(1587470413.845, UTC)
    assert status.ended_at == datetime.fromtimestamp(1587470432.441, UTC)
    assert status.duration == timedelta(milliseconds=18596)


class SampleServer(DataKitchenEmulator):
    """Answers order/status, order/servings and order/details with DataKitchen's documented samples,
    unchanged; the login, the token check and strict mode's request check stay the emulator's."""

    detail: dict[str, Any]  # the order run's details that order/details answers; set by the fixture and tests

    async def on_order_status(self, request: web.Request) -> web.StreamResponse:
        return json_response(samples.ORDER_STATUS_ANSWER)

    async def on_servings(self, request: web.Request) -> web.StreamResponse:
        return json_response({"servings": []})  # not among the newest: the client asks for it by id

    async def on_details(self, request: web.Request) -> web.StreamResponse:
        return json_response({"orders": [], "servings": [self.detail]})


@pytest.fixture
async def sample_client(emulator: DataKitchenEmulator) -> AsyncIterator[tuple[Client, SampleServer]]:
    server = SampleServer(emulator.state, users={USERNAME: PASSWORD}, strict=True)
    server.detail = {}
    server_url = await server.start()
    conn = Connection(base_url=server_url, username=USERNAME, password=PASSWORD)
    async with Client("dk-test", conn, retry=RETRY, sleep=SleepRecorder()) as client:
        yield client, server
    await server.stop()


async def test_the_dkutils_order_status_sample_is_listed_and_its_failed_order_is_not_paused(
    sample_client: tuple[Client, SampleServer],
) -> None:
    client, server = sample_client
    job = Job(kitchen=samples.SAMPLE_KITCHEN, recipe=samples.SAMPLE_RECIPE, variation=samples.SAMPLE_VARIATION)
    runs = await client.list_runs(job, since=datetime(2021, 1, 1, tzinfo=UTC))
    assert [r.run_id for r in runs] == [f"{samples.SAMPLE_ORDER}/{samples.SAMPLE_RUN}"]
    (run,) = runs
    assert run.state is RunState.FAILED
    assert run.started_at == datetime.fromtimestamp(1616526372.945, UTC)
    assert run.duration == timedelta(milliseconds=120439)
    assert run.extra["orderrun_status"] == "Error in OrderRun"
    other = Job(kitchen=samples.SAMPLE_KITCHEN, recipe=samples.SAMPLE_RECIPE, variation="another_variation")
    assert await client.list_runs(other, since=datetime(2021, 1, 1, tzinfo=UTC)) == []

    with pytest.raises(ProviderRejected) as err:  # its one order is ORDER_ERROR: nothing to pause
        await client.disable(job)
    assert "none of the 1 order(s)" in str(err.value)
    assert "(they are ORDER_ERROR)" in str(err.value)
    assert not server.state.requests_to("pause")


async def test_the_dkutils_details_sample_with_its_log_entry_names_the_failed_node_and_why(
    sample_client: tuple[Client, SampleServer],
) -> None:
    """DKUtils' order-run details, asked with summary and logs: ``summary.nodes`` as OrderRunMonitor reads
    it, and ``log.lines`` with the entry OrderRunMonitor.parse_log_entry documents."""
    client, server = sample_client
    server.detail = {
        **samples.ORDER_RUN_DETAIL,
        "summary": {"nodes": {"Fail_Node": {"status": samples.NODE_FAILED, "start_time": 1588342780000,
                                            "timing": 3000},
                              "Load_Node": {"status": samples.NODE_SUCCEEDED, "start_time": 1588342779000,
                                            "timing": 900}}},
        "log": {"lines": [samples.LOG_ENTRY]},
    }
    detail = samples.ORDER_RUN_DETAIL
    job = Job(kitchen=samples.DETAIL_KITCHEN, recipe=detail["recipe_name"], variation=detail["variation_name"])
    status = await client.get_status(job, f"{detail['order_id']}/{detail['hid']}")
    assert status.state is RunState.FAILED
    assert status.raw_status == "SERVING_ERROR"
    assert [t.name for t in status.failed_tasks] == ["Fail_Node"]
    assert status.failed_tasks[0].message == "ERROR Test Fail: DKDataTestFailed"
    assert status.message == "Failed node: Fail_Node.\nERROR Test Fail: DKDataTestFailed"
    (asked,) = server.state.requests_to("details")
    assert asked.body["serving_hid"] == detail["hid"]


async def test_typed_parameters_keep_their_json_type_from_the_catalog_to_the_order(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    """``type: int`` / ``type: bool`` parameters reach DataKitchen as JSON numbers and booleans."""
    raw = yaml.safe_load(textwrap.dedent(f"""
        connections:
          dk: {{provider: datakitchen, base_url: "{client.connection.base_url}", username: u, password: "${{PW}}"}}
        pipelines:
          sales:
            connection: dk
            kitchen: {KITCHEN}
            recipe: {RECIPE}
            variation: {VARIATION}
            parameters:
              BATCH_SIZE: {{type: int}}
              FULL_RELOAD: {{type: bool}}
              DT: {{type: date}}
              ZIP: {{type: string}}
        """))
    pipeline = parse_catalog(raw, {"PW": "secret-value"}).pipelines["sales"]
    job = Job.model_validate(pipeline.job.model_dump())  # as a run stores its job and reads it back
    assert job.parameter_types == {"BATCH_SIZE": "int", "FULL_RELOAD": "bool"}
    emulator.state.script(KEY, Outcome(result="fail", queued_s=1, running_s=1, failed_tasks=("load",)))

    run = await client.trigger(job, {"BATCH_SIZE": "500", "FULL_RELOAD": "True", "DT": "2024-05-01", "ZIP": "007"})
    (create,) = emulator.state.requests_to("trigger")
    assert create.body["parameters"] == {"BATCH_SIZE": 500, "FULL_RELOAD": True, "DT": "2024-05-01", "ZIP": "007"}
    clock.advance(5)
    await client.resume(job, run.run_id, {"BATCH_SIZE": "-3", "FULL_RELOAD": "false"})
    (resume,) = emulator.state.requests_to("resume")
    assert resume.body["parameters"] == {"BATCH_SIZE": -3, "FULL_RELOAD": False}

    untyped = await client.trigger(JOB, {"BATCH_SIZE": "500"})  # an ad hoc run: nothing typed, text
    assert untyped.run_id
    assert emulator.state.requests_to("trigger")[-1].body["parameters"] == {"BATCH_SIZE": "500"}


async def test_a_legacy_create_answer_naming_the_order_serving_chronos_id(
    client: Client, emulator: DataKitchenEmulator
) -> None:
    emulator.configure({"create_keys": ["serving_chronos_id"]})
    with pytest.raises(TriggerOutcomeUnknown):  # strict: no source shows the key in a create answer
        await client.trigger(JOB, {})
    relies_on_assumption(
        emulator,
        "the legacy create answer names the order serving_chronos_id: DKCloudCommand 1.0 keys orders by it in "
        "order/status (list_order, _get_order), but no source shows it in a create answer",
    )
    run = await client.trigger(JOB, {})
    assert run.run_id == list(emulator.orders)[-1]  # the second order
    assert (await client.get_status(JOB, run.run_id)).state is RunState.QUEUED


# -- strict mode ------------------------------------------------------------------------------


async def login(http: httpx.AsyncClient) -> dict[str, str]:
    token = (await http.post("/v2/login", data={"username": USERNAME, "password": PASSWORD})).text
    return {"Authorization": f"Bearer {token}"}


async def test_strict_mode_refuses_a_request_no_source_sends(url: str, emulator: DataKitchenEmulator) -> None:
    hid = emulator.external_run(KEY, {})
    async with httpx.AsyncClient(base_url=url) as http:
        auth = await login(http)
        listing = await http.get(f"/v2/order/status/{KITCHEN}", params={"r": RECIPE, "colour": "blue"}, headers=auth)
        assert listing.status_code == 400
        assert listing.json() == {"message": {"error": (
            "strict: no source for the query parameter 'colour' of GET /v2/order/status/{kitchen}")}}
        details = await http.post(f"/v2/order/details/{KITCHEN}", json={"order_id": order_of(emulator, hid)},
                                  headers=auth)
        assert details.status_code == 400
        assert "strict: no source for the body field 'order_id'" in details.json()["message"]["error"]
        sourced = await http.post(f"/v2/order/details/{KITCHEN}", json={"serving_hid": hid, "summary": True},
                                  headers=auth)
        assert sourced.status_code == 200

        emulator.strict = False
        assert (await http.get(f"/v2/order/status/{KITCHEN}", params={"colour": "blue"}, headers=auth)).is_success
        assert (await http.post(f"/v2/order/details/{KITCHEN}", json={"order_id": order_of(emulator, hid)},
                                headers=auth)).is_success


async def test_strict_mode_leaves_out_the_fields_no_source_shows(url: str, emulator: DataKitchenEmulator) -> None:
    hid = emulator.external_run(KEY, {"DT": "1"})
    order_id = order_of(emulator, hid)
    async with httpx.AsyncClient(base_url=url) as http:
        auth = await login(http)

        async def answers() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
            listed = (await http.get(f"/v2/order/status/{KITCHEN}", params={"r": RECIPE}, headers=auth)).json()
            servings = (await http.get(f"/v2/order/servings/{KITCHEN}/{order_id}", headers=auth)).json()
            detail = (await http.post(f"/v2/order/details/{KITCHEN}", json={"serving_hid": hid, "summary": True},
                                      headers=auth)).json()
            return listed, servings, detail

        listed, servings, detail = await answers()
        assert set(listed) == {"kitchenname", "orders", "servings", "total-orders"}
        assert set(listed["orders"][0]) == {"hid", "recipe", "variation", "order-status", "schedule", "input_settings"}
        assert set(servings) == {"servings"}
        assert set(servings["servings"][0]) == {"hid", "order_id", "status", "orderrun_status", "timings",
                                                "variation_name"}
        assert set(detail) == {"orders", "servings"}
        assert "timings" not in detail["servings"][0]
        assert set(detail["servings"][0]["summary"]) <= {"name", "start-time", "total-recipe-time", "nodes"}

        emulator.strict = False
        listed, servings, detail = await answers()
        assert {"created_time", "order_id"} <= set(listed["orders"][0])
        assert "total" in servings
        assert "recipe_name" in servings["servings"][0]
        assert "timings" in detail["servings"][0]


def test_every_route_and_answer_shape_has_its_sources_listed(emulator: DataKitchenEmulator) -> None:
    """A route without a row in SOURCED_REQUESTS would fail at start-up; this says so at once."""
    from bot.emulators.datakitchen import SOURCED_FIELDS, SOURCED_REQUESTS

    assert {r.name for r in emulator.routes()} == set(SOURCED_REQUESTS)
    text = (ROOT / "docs" / "PROVIDERS.md").read_text(encoding="utf-8")
    section = text.split("## DataKitchen: provenance", 1)[1].split("\n## ", 1)[0]
    for fields in SOURCED_FIELDS.values():
        for name in fields:
            assert f"`{name}`" in section, f"{name} is served in strict mode but not in the provenance table"


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
        assert page["total-orders"] == 3
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
    emulator.configure({"strict": False})
    assert not emulator.strict
    from bot.emulators.standalone import build_emulator

    standalone = build_emulator("datakitchen", {"strict": True})
    assert isinstance(standalone, DataKitchenEmulator)
    assert standalone.strict


# -- found by a second independent pass: a compressed log inflated without limit ------------------------------------


def compressed_log(lines: list[bytes], repeat: int, last: bytes) -> str:
    """base64 of zlib (what DKCloudCommand decompresses) of ``lines`` said ``repeat`` times, then ``last``."""
    deflater = zlib.compressobj(9)
    block = b"".join(lines) * 1000
    parts = [deflater.compress(block) for _ in range(repeat // 1000)]
    return base64.b64encode(b"".join([*parts, deflater.compress(last), deflater.flush()])).decode()


async def status_with_log(log: str) -> tuple[Any, int]:
    """A failed order run whose details carry ``log``, read by the client over HTTP: its status, and the most
    memory held at once while reading it."""
    token = "eyJhbGciOiJub25lIn0.eyJleHAiOjQxMDI0NDQ4MDB9.sig"

    async def answer(request: web.Request) -> web.StreamResponse:
        if request.path.endswith("/v2/login"):
            return web.Response(text=token)
        if "/v2/order/servings/" in request.path:
            return json_response({"servings": [{"hid": "h1", "status": "SERVING_ERROR"}]})
        return json_response({"servings": [{"hid": "h1", "status": "SERVING_ERROR", "logs": log}]})

    async with web_server(answer) as url:
        client = Client("dk", Connection(base_url=url, username=USERNAME, password=PASSWORD),
                        retry=RETRY)
        tracemalloc.start()
        try:
            status = await client.get_status(JOB, "order-1")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            await client.aclose()
    return status, peak


async def test_a_compressed_log_is_inflated_a_bounded_piece_at_a_time() -> None:
    """150 KB of answer that inflates to 96 MB (it could be 10 GB): read up to 32 MB, keeping its last 1 MB."""
    log = compressed_log([b"INFO step done\n"], 96 * 1024 * 1024 // 15, b"ERROR never reached\n")
    status, peak = await status_with_log(log)
    assert status.state is RunState.FAILED
    assert "the log goes on past 32 MB once decompressed" in status.message, status.message
    assert "never reached" not in status.message
    assert peak < 40 * 1024 * 1024, f"{peak / 2**20:.0f} MB held at once"


async def test_a_long_compressed_log_keeps_its_end_where_the_failure_is() -> None:
    log = compressed_log([b"INFO step done\n"], 3 * 1024 * 1024 // 15, b"ERROR node load: disk full\n")
    status, _ = await status_with_log(log)
    assert "ERROR node load: disk full" in status.message, status.message
    assert len(logs._log_lines({"logs": log})) == 5000  # its last 5,000 lines (of 200,000), no more


# -- the whole log, exported ----------------------------------------------------------------------------------------


async def test_a_log_longer_than_the_client_keeps_is_cut_and_paged_whole_from_the_export(
    client: Client, emulator: DataKitchenEmulator, clock: ManualClock
) -> None:
    """The details' log past LOG_KEEP_LINES entries is kept from its end and said cut; the export (DKCloudCommand's
    ``get_order_run_full_log``) pages through all of it: its last page, its first, each redacted. The export's
    lines are the emulator's own text (an assumption); its ``log`` field and the zip are DKCloudCommand's."""
    emulator.state.script(KEY, Outcome(result="fail", queued_s=1, running_s=5, message=f"disk full ({PASSWORD})",
                                       tasks=("extract", "load"), failed_tasks=("load",), log_lines=25_000))
    run = await client.trigger(JOB, {})
    clock.advance(10)
    found = await client.run_log(JOB, run.run_id)
    assert found.cut and len(found.lines) <= LOG_KEEP_LINES + 10
    last = await client.run_log_page(JOB, run.run_id, 0, 50)
    # 1 planned, 25,000 of the filler, extract's start and end, load's start and error
    assert (last.total, last.page, last.pages, last.first) == (25_005, 0, 501, 24_956)
    assert "ERROR" in last.lines[-1] and "disk full" in last.lines[-1] and PASSWORD not in last.lines[-1]
    first = await client.run_log_page(JOB, run.run_id, 10_000, 50)  # clamped to the log's first page
    assert (first.first, first.page, len(first.lines)) == (1, 500, 5) and "planned" in first.lines[0]
    assert "v2/order/export/logs" in first.source
    [asked, *_] = emulator.state.requests_to("export_log")
    assert asked.path.endswith(f"/{KITCHEN}/{only_run(emulator)[1]}")


async def test_a_short_log_is_not_cut() -> None:
    entries = [{"record_type": "INFO", "message": f"line {i}", "node": "load"} for i in range(100)]
    found = logs.log_of({"log": {"lines": entries}}, str, "h")
    assert not found.cut and len(found.lines) == 100


def test_an_export_of_another_shape_is_refused_plainly() -> None:
    with pytest.raises(ValueError, match="not base64 of a zip"):
        logs.export_page("not base64!", 0, 50, str, "h")
    with pytest.raises(ValueError, match="not base64 of a zip"):
        logs.export_page(base64.b64encode(b"plain text").decode(), 0, 50, str, "h")
