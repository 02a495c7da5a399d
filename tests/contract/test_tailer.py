"""Tailer beyond the shared contract: the seed document's requests and answers, token renewal and
expiry, service-account tokens, configuration changes, workflow reset, run lists and the status table.

The emulator runs strict here (it serves only what docs/PROVIDERS.md "Tailer: provenance" gives a
source for); a test that relies on an assumption turns strictness off and says which assumption."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from bot.emulators._core import EmulatorState, Fault, ManualClock, Outcome
from bot.emulators.tailer import TailerEmulator
from bot.errors import (
    ConfigError,
    OperationNotSupported,
    ProviderAuthError,
    ProviderNoNews,
    ProviderNotFound,
    ProviderRejected,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
)
from bot.models import RunState
from bot.providers import tailer
from bot.providers.base import Capability
from tests.contract.case_tailer import SENT_CONFIGURATION_ID, TOKEN
from tests.contract.cases import RETRY
from tests.contract.conftest import SleepRecorder

API = "https://tailer-api-nqonovswsq-ew.a.run.app"
JOB = tailer.Job(
    account="000099", environment="DEV", configuration_type="table-to-table",
    configuration_id="000099_iowa_liquor_prepare_pda",
)
WORKFLOW = tailer.Job(
    account="000099", environment="DEV", configuration_type="workflow", configuration_id="000099-iowa-liquor-load-pda",
    job_id="workflow|000099-iowa-liquor-load-pda",  # no rule derives a workflow's job_id: this is the emulator's
)
#: the seed's storage-to-storage data operation, with the job_id its answers show (line 161)
STORAGE = tailer.Job(
    account="000099", environment="DEV", configuration_type="storage-to-storage",
    configuration_id="000099-jarvis-demo-iowa-liquor-storage-to-storage",
    job_id="storage-to-storage|000099|000099-jarvis-demo-iowa-liquor-storage-to-storage|DEV|stores-{{FD_DATE}}-{{FD_TIME}}.csv",
)
EMAIL = "pipeline-bot@tailer-demo.iam.gserviceaccount.com"

# -- the seed document's answers, verbatim ----------------------------------------------------------

CHECK_RUN_STATUS = """{
	"results": [
		{
			"account": "000099",
			"configuration_id": "000099_iowa_liquor_prepare_pda_DEV",
			"configuration_type": "table-to-table",
			"duration": "0:01:24.002519",
			"environment": "DEV",
			"job_id": "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV",
			"last_update_date": "2020-12-30T11:30:07.960767+00:00",
			"run_id": "20201230-112837-0a795c70-2557-4a60-ba16-788aa2bea179",
			"start_execution_date": "2020-12-30T11:28:43.861340+00:00",
			"status": "SUCCESS"
		}
	]
}"""

LAST_STATUS_JOB = """{
	"results": [
		{
			"account": "000099",
			"configuration_id": "000099_iowa_liquor_prepare_pda_DEV",
			"configuration_type": "gbq-to-gbq",
			"duration": "0:01:24.002519",
			"environment": "DEV",
			"job_id": "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV",
			"last_update_date": "2020-12-30T11:30:07.960767+00:00",
			"run_id": "20201230-112837-0a795c70-2557-4a60-ba16-788aa2bea179",
			"start_execution_date": "2020-12-30T11:28:43.861340+00:00",
			"status": "SUCCESS"
		},
		{
			"account": "000099",
			"configuration_id": "000099_iowa_liquor_prepare_pda_DEV",
			"configuration_type": "gbq-to-gbq",
			"duration": "0:01:35.345232",
			"environment": "DEV",
			"job_id": "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV",
			"last_update_date": "2020-12-30T11:10:49.097747+00:00",
			"run_id": "20201230-110907-47b31b2d-a54a-4a95-a3a6-b4fbc2168333",
			"start_execution_date": "2020-12-30T11:09:13.665798+00:00",
			"status": "SUCCESS"
		},
		{
			"account": "000099",
			"configuration_id": "000099_iowa_liquor_prepare_pda_DEV",
			"configuration_type": "gbq-to-gbq",
			"duration": "0:01:39.201091",
			"environment": "DEV",
			"job_id": "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV",
			"last_update_date": "2020-12-10T14:07:56.739284+00:00",
			"run_id": "20201210-140612-19e547a1-de6a-47f0-b563-b8a3d5754118",
			"start_execution_date": "2020-12-10T14:06:17.415294+00:00",
			"status": "SUCCESS"
		}
	]
}"""

LAST_STATUS_OPERATION = """{
	"results": [
		{
			"account": "000099",
			"configuration_id": "000099-jarvis-demo-iowa-liquor-storage-to-storage",
			"configuration_type": "storage-to-storage",
			"duration": "0:00:03.885654",
			"environment": "DEV",
			"job_id": "storage-to-storage|000099|000099-jarvis-demo-iowa-liquor-storage-to-storage|DEV|stores-{{FD_DATE}}-{{FD_TIME}}.csv",
			"run_id": "20201209-cf026ae9-c79c-4cf9-8ffb-0bb63ad39469",
			"start_execution_date": "2020-12-09T17:17:23+00:00",
			"status": "SUCCESS"
		},
		{
			"account": "000099",
			"configuration_id": "000099-jarvis-demo-iowa-liquor-storage-to-storage",
			"configuration_type": "storage-to-storage",
			"duration": "0:00:04.373931",
			"environment": "DEV",
			"job_id": "storage-to-storage|000099|000099-jarvis-demo-iowa-liquor-storage-to-storage|DEV|stores-{{FD_DATE}}-{{FD_TIME}}.csv",
			"run_id": "20201209-7b7b7a66-1cc0-4f09-a893-ce4a35adf09b",
			"start_execution_date": "2020-12-09T17:17:18+00:00",
			"status": "SUCCESS"
		},
		{
			"account": "000099",
			"configuration_id": "000099-jarvis-demo-iowa-liquor-storage-to-storage",
			"configuration_type": "storage-to-storage",
			"duration": "0:00:04.295537",
			"environment": "DEV",
			"job_id": "storage-to-storage|000099|000099-jarvis-demo-iowa-liquor-storage-to-storage|DEV|stores-{{FD_DATE}}-{{FD_TIME}}.csv",
			"run_id": "20201209-4d76a90a-b092-4c69-a87f-b0cd79305428",
			"start_execution_date": "2020-12-09T17:17:18+00:00",
			"status": "SUCCESS"
		}
	]
}"""

LAST_STATUS_LIMIT_2 = """{
	"results": [
		{
			"account": "000099",
			"configuration_id": "000099-jarvis-demo-iowa-liquor-storage-to-storage",
			"configuration_type": "storage-to-storage",
			"duration": "0:00:03.885654",
			"environment": "DEV",
			"job_id": "storage-to-storage|000099|000099-jarvis-demo-iowa-liquor-storage-to-storage|DEV|stores-{{FD_DATE}}-{{FD_TIME}}.csv",
			"run_id": "20201209-cf026ae9-c79c-4cf9-8ffb-0bb63ad39469",
			"start_execution_date": "2020-12-09T17:17:23+00:00",
			"status": "SUCCESS"
		},
		{
			"account": "000099",
			"configuration_id": "000099-jarvis-demo-iowa-liquor-storage-to-storage",
			"configuration_type": "storage-to-storage",
			"duration": "0:00:04.373931",
			"environment": "DEV",
			"job_id": "storage-to-storage|000099|000099-jarvis-demo-iowa-liquor-storage-to-storage|DEV|stores-{{FD_DATE}}-{{FD_TIME}}.csv",
			"run_id": "20201209-7b7b7a66-1cc0-4f09-a893-ce4a35adf09b",
			"start_execution_date": "2020-12-09T17:17:18+00:00",
			"status": "SUCCESS"
		}
	]
}"""

LAUNCH = '{"run_id":"20201230-113940-1fb692b0-3531-4578-9919-acf6fdb0a5b1"}'
WORKFLOW_RESET = '{"code":200,"data":{},"message":"ok"}'
CONFIGURATION_STATUS = '{"message":"ok"}'

# the seed's request bodies (curl --data), verbatim
LAUNCH_REQUEST = """{ "action": "launch_job",
          "account": "000099",
          "environment": "DEV",
          "configuration_type": "table-to-table",
          "configuration_id": "000099_iowa_liquor_prepare_pda_DEV"}"""
CHECK_REQUEST = """{"action": "check_run_status",
         "account": "000099",
         "environment": "DEV",
         "configuration_type": "table-to-table",
         "configuration_id": "000099_iowa_liquor_prepare_pda_DEV",
         "job_id": "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV",
         "run_id": "20201230-112837-0a795c70-2557-4a60-ba16-788aa2bea179"}"""
LIMIT_2_REQUEST = """{ "action": "get_last_status",
          "account": "000099",
          "environment": "DEV",
          "configuration_type": "storage-to-storage",
          "configuration_id": "000099-jarvis-demo-iowa-liquor-storage-to-storage",
          "execution_date": "2020-12-09",
          "status": "SUCCESS",
          "limit": 2}"""
RESET_REQUEST = """{ "action": "reset_workflow_status", 
          "account": "000099", 
          "environment": "DEV", 
          "configuration_type": "workflow",
          "configuration_id": "000099-iowa-liquor-load-pda"}"""  # noqa: W291 (verbatim from the seed)
DISABLE_REQUEST = """{ "action": "set_configuration_status",
          "activated" : false,
          "archived" : false,
          "account": "000099", 
          "environment": "DEV", 
          "configuration_type": "table-to-table",
          "configuration_id": "000099_Load_PDA_f_traffic_ma_DEV"}"""  # noqa: W291 (verbatim from the seed)

SEED_KEYS = set(json.loads(CHECK_RUN_STATUS)["results"][0])
RUN_ID = r"^\d{8}-\d{6}-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
async def emu(state: EmulatorState) -> AsyncIterator[TailerEmulator]:
    state.script(SENT_CONFIGURATION_ID, Outcome(queued_s=10, running_s=60))
    state.script(WORKFLOW.configuration_id, Outcome())
    server = TailerEmulator(state, tokens={TOKEN}, strict=True)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(emu: TailerEmulator, sleeps: SleepRecorder) -> AsyncIterator[tailer.Client]:
    c = tailer.Client("tailer-test", tailer.Connection(base_url=emu.url, token=TOKEN), retry=RETRY, sleep=sleeps)
    yield c
    await c.aclose()


@pytest.fixture(scope="module")
def sa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sa_json(key: rsa.RSAPrivateKey, email: str = EMAIL) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps({
        "type": "service_account", "project_id": "tailer-demo", "private_key_id": "0123456789abcdef",
        "private_key": pem, "client_email": email, "client_id": "1234567890",
    })


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _claims(authorization: str) -> tuple[dict[str, Any], dict[str, Any]]:
    token = authorization.removeprefix("Bearer ")
    header, claims, _ = (base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split("."))
    return json.loads(header), json.loads(claims)


class Recorder:
    """An httpx transport that answers canned bodies and keeps the requests, to feed seed samples."""

    def __init__(self, answer: str, status: int = 200) -> None:
        self.answer = answer
        self.status = status
        self.requests: list[httpx.Request] = []

    def client(self, connection: tailer.Connection | None = None) -> tailer.Client:
        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            headers = {"content-type": "application/json"}
            answer = self.answer.replace("{authorization}", request.headers.get("authorization", ""))
            return httpx.Response(self.status, content=answer.encode(), headers=headers)

        http = httpx.AsyncClient(base_url=f"{API}/", transport=httpx.MockTransport(handle))
        connection = connection or tailer.Connection(token=TOKEN)
        client = tailer.Client("tailer-seed", connection, http=http, retry=RETRY)
        http.auth = client.authn  # a client given its own httpx client leaves auth to it
        return client

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


# -- identity and parameters ------------------------------------------------------------------------


async def test_table_to_table_ids_reach_tailer_with_their_environment(
    client: tailer.Client, emu: TailerEmulator
) -> None:
    run = await client.trigger(JOB, {})
    await client.get_status(JOB, run.run_id)
    launch, status = emu.state.requests_to("trigger")[0].body, emu.state.requests_to("status")[0].body
    assert launch["configuration_id"] == "000099_iowa_liquor_prepare_pda_DEV"
    assert status["configuration_id"] == "000099_iowa_liquor_prepare_pda_DEV"
    assert status["job_id"] == "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV"
    assert emu.state.runs[run.run_id].job == SENT_CONFIGURATION_ID


def test_the_environment_suffix_is_added_once_and_only_for_table_to_table() -> None:
    same = JOB.model_copy(update={"configuration_id": "000099_iowa_liquor_prepare_pda_DEV"})
    assert same.api_configuration_id() == "000099_iowa_liquor_prepare_pda_DEV"
    prod = tailer.Job(account="000099", environment="prod", configuration_type="table-to-table", configuration_id="x")
    assert prod.environment == "PROD"
    assert prod.api_configuration_id() == "x_PROD"
    assert STORAGE.api_configuration_id() == "000099-jarvis-demo-iowa-liquor-storage-to-storage"
    assert STORAGE.status_job_id() == STORAGE.job_id
    assert WORKFLOW.api_configuration_id() == "000099-iowa-liquor-load-pda"


async def test_a_configuration_id_without_its_environment_is_unknown_to_the_emulator(emu: TailerEmulator) -> None:
    body = json.loads(LAUNCH_REQUEST) | {"configuration_id": "000099_iowa_liquor_prepare_pda"}
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{emu.url}/v1/dag/launch", json=body, headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 404
    assert "000099_iowa_liquor_prepare_pda" in answer.json()["message"]
    assert not emu.state.runs


async def test_execution_date_is_passed_and_other_parameters_are_refused(
    client: tailer.Client, emu: TailerEmulator
) -> None:
    run = await client.trigger(JOB, {"execution_date": "2020-12-09"})
    assert emu.state.requests_to("trigger")[0].body["execution_date"] == "2020-12-09"
    assert emu.state.runs[run.run_id].parameters == {"execution_date": "2020-12-09"}
    with pytest.raises(ProviderRejected) as err:
        await client.trigger(JOB, {"execution_date": "2020-12-09", "country": "FR"})
    assert "only execution_date" in str(err.value)
    assert "country" in str(err.value)
    assert len(emu.state.requests_to("trigger")) == 1  # nothing sent


async def test_the_client_sends_the_seed_requests() -> None:
    recorder = Recorder(LAUNCH)
    async with recorder.client() as client:
        triggered = await client.trigger(JOB, {})
        assert triggered.run_id == "20201230-113940-1fb692b0-3531-4578-9919-acf6fdb0a5b1"
        assert recorder.body() == json.loads(LAUNCH_REQUEST)
        assert str(recorder.requests[-1].url) == f"{API}/v1/dag/launch"
        assert recorder.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
        recorder.answer = CHECK_RUN_STATUS
        await client.get_status(JOB, "20201230-112837-0a795c70-2557-4a60-ba16-788aa2bea179")
        assert recorder.body() == json.loads(CHECK_REQUEST)
        assert str(recorder.requests[-1].url) == f"{API}/v1/dag/status"
        recorder.answer = LAST_STATUS_LIMIT_2
        await client.last_status(STORAGE, limit=2, status="SUCCESS", execution_date="2020-12-09")
        assert recorder.body() == json.loads(LIMIT_2_REQUEST)
        recorder.answer = WORKFLOW_RESET
        await client.reset(WORKFLOW)
        assert recorder.body() == json.loads(RESET_REQUEST)
        assert str(recorder.requests[-1].url) == f"{API}/v1/workflow/status"
        recorder.answer = CONFIGURATION_STATUS
        traffic = JOB.model_copy(update={"configuration_id": "000099_Load_PDA_f_traffic_ma"})
        await client.disable(traffic)
        assert recorder.body() == json.loads(DISABLE_REQUEST)
        assert str(recorder.requests[-1].url) == f"{API}/v1/configuration/status"
        await client.enable(traffic)
        assert recorder.body() | {"activated": False} == json.loads(DISABLE_REQUEST)
        assert (recorder.body()["activated"], recorder.body()["archived"]) == (True, False)
        await client.archive(traffic)
        assert (recorder.body()["activated"], recorder.body()["archived"]) == (False, True)


# -- the seed's answers -----------------------------------------------------------------------------


def test_check_run_status_sample_parses() -> None:
    [run] = tailer.parse_results(json.loads(CHECK_RUN_STATUS))
    assert run.run_id == "20201230-112837-0a795c70-2557-4a60-ba16-788aa2bea179"
    assert run.state is RunState.SUCCEEDED
    assert run.raw_status == "SUCCESS"
    assert run.final
    assert run.duration == timedelta(minutes=1, seconds=24, microseconds=2519)
    assert run.started_at == datetime(2020, 12, 30, 11, 28, 43, 861340, tzinfo=UTC)
    assert run.ended_at == run.started_at + run.duration
    assert run.extra["job_id"] == "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV"
    assert run.extra["last_update_date"] == "2020-12-30T11:30:07.960767+00:00"


@pytest.mark.parametrize(
    ("sample", "count", "first_run", "last_duration"),
    [
        (LAST_STATUS_JOB, 3, "20201230-112837-0a795c70-2557-4a60-ba16-788aa2bea179", timedelta(seconds=99.201091)),
        (LAST_STATUS_OPERATION, 3, "20201209-cf026ae9-c79c-4cf9-8ffb-0bb63ad39469", timedelta(seconds=4.295537)),
        (LAST_STATUS_LIMIT_2, 2, "20201209-cf026ae9-c79c-4cf9-8ffb-0bb63ad39469", timedelta(seconds=4.373931)),
    ],
    ids=["job", "data-operation", "limit-2"],
)
def test_get_last_status_samples_parse(sample: str, count: int, first_run: str, last_duration: timedelta) -> None:
    runs = tailer.parse_results(json.loads(sample))
    assert len(runs) == count
    assert runs[0].run_id == first_run
    assert runs[-1].duration == last_duration
    assert all(r.state is RunState.SUCCEEDED and r.final and r.started_at is not None for r in runs)
    assert all(r.ended_at is not None for r in runs)  # from the duration where last_update_date is missing


async def test_last_status_samples_go_through_the_client(sleeps: SleepRecorder) -> None:
    recorder = Recorder(LAST_STATUS_JOB)
    async with recorder.client() as client:
        runs = await client.list_runs(JOB, since=datetime(2020, 12, 20, tzinfo=UTC))
    assert [r.run_id for r in runs] == [
        "20201230-112837-0a795c70-2557-4a60-ba16-788aa2bea179",
        "20201230-110907-47b31b2d-a54a-4a95-a3a6-b4fbc2168333",
    ]  # the December 10 run is older than `since`


def test_the_change_answers_of_the_seed_are_ok_and_ko_is_not() -> None:
    assert tailer.answer_error(json.loads(WORKFLOW_RESET)) is None
    assert tailer.answer_error(json.loads(CONFIGURATION_STATUS)) is None
    assert tailer.answer_error(json.loads(LAUNCH)) is None
    assert tailer.answer_error(json.loads(CHECK_RUN_STATUS)) is None
    assert tailer.answer_error({"message": "KO"}) == "'KO'"
    assert tailer.answer_error({"code": 500, "data": {}, "message": "ok"}) is not None
    assert tailer.parse_launch(json.loads(LAUNCH)) == "20201230-113940-1fb692b0-3531-4578-9919-acf6fdb0a5b1"


@pytest.mark.parametrize("status", [200, 400])
async def test_a_ko_answer_is_an_error(status: int) -> None:
    recorder = Recorder('{"message":"KO"}', status)
    async with recorder.client() as client:
        with pytest.raises(ProviderRejected) as err:
            await client.disable(JOB)
    assert "KO" in str(err.value)
    assert "disable" in str(err.value)
    assert len(recorder.requests) == 1


async def test_a_minted_token_echoed_by_the_server_is_not_shown(sa_key: rsa.RSAPrivateKey) -> None:
    recorder = Recorder('{"message": "bad request from {authorization}"}', 400)
    async with recorder.client(tailer.Connection(service_account_json=_sa_json(sa_key))) as client:
        with pytest.raises(ProviderRejected) as err:
            await client.trigger(JOB, {})
    token = recorder.requests[0].headers["authorization"].removeprefix("Bearer ")
    assert "bad request from Bearer ***" in str(err.value)
    assert token not in str(err.value)


async def test_an_unreadable_launch_answer_leaves_the_outcome_open(client: tailer.Client, emu: TailerEmulator) -> None:
    emu.state.add_fault(Fault(route="trigger", kind="malformed", times=1))
    with pytest.raises(TriggerOutcomeUnknown) as err:
        await client.trigger(JOB, {})
    assert "Tailer Studio" in str(err.value)
    assert len(emu.state.requests_to("trigger")) == 1


async def test_an_unknown_configuration_says_what_to_check(client: tailer.Client, emu: TailerEmulator) -> None:
    unknown = JOB.model_copy(update={"configuration_id": "000099_nope"})
    with pytest.raises(ProviderNotFound) as err:
        await client.trigger(unknown, {})
    assert "000099_nope_DEV" in str(err.value)
    assert "pipelines.yml" in str(err.value)
    assert "appends the environment" in str(err.value)


async def test_an_unclear_answer_to_a_change_is_not_repeated_and_says_to_check_studio(
    client: tailer.Client, emu: TailerEmulator
) -> None:
    emu.state.add_fault(Fault(route="configuration", status=500, times=1))
    with pytest.raises(TriggerOutcomeUnknown) as err:
        await client.disable(JOB)
    assert "whether the change was made" in str(err.value)
    assert "studio.tailer.ai" in str(err.value)
    assert len(emu.state.requests_to("configuration")) == 1


async def test_the_emulator_answers_in_the_seed_shape(
    client: tailer.Client, emu: TailerEmulator, clock: ManualClock
) -> None:
    emu.state.script(SENT_CONFIGURATION_ID, Outcome(queued_s=10, running_s=600))
    run = await client.trigger(JOB, {})
    assert re.match(RUN_ID, run.run_id)
    clock.advance(84.002519 + 10)
    async with httpx.AsyncClient() as http:
        body = json.loads(CHECK_REQUEST) | {"run_id": run.run_id}
        answer = (await http.post(f"{emu.url}/v1/dag/status", content=json.dumps(body),
                                  headers={"authorization": f"Bearer {TOKEN}", "content-type": "text/plain"})).json()
        last = {k: v for k, v in body.items() if k not in ("job_id", "run_id")} | {"action": "get_last_status"}
        listed = (await http.post(f"{emu.url}/v1/dag/status", content=json.dumps(last),
                                  headers={"authorization": f"Bearer {TOKEN}"})).json()
    [entry] = answer["results"]
    assert set(entry) == SEED_KEYS
    assert list(entry) == sorted(entry)  # the vendor's key order
    assert entry["configuration_type"] == "table-to-table"
    assert listed["results"][0]["configuration_type"] == "gbq-to-gbq"  # as in the vendor's list sample
    assert entry["job_id"] == "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV"
    assert entry["status"] == "RUNNING"
    running_for = tailer.parse_duration(entry["duration"])
    assert running_for is not None
    assert abs(running_for - timedelta(seconds=84.002519)) < timedelta(microseconds=3)
    [parsed] = tailer.parse_results(answer)
    assert parsed.started_at is not None
    assert parsed.started_at.tzinfo is not None


# -- service accounts -------------------------------------------------------------------------------
# An assumption: no vendor source says Tailer accepts tokens a service account signs itself, so these
# tests run the emulator with strict=False.


async def test_a_service_account_signs_tokens_the_emulator_verifies_and_renews_them(
    state: EmulatorState, clock: ManualClock, sa_key: rsa.RSAPrivateKey
) -> None:
    state.script(SENT_CONFIGURATION_ID, Outcome(queued_s=1, running_s=1))
    now = [clock.now()]
    async with TailerEmulator(state, service_accounts={EMAIL: _public_pem(sa_key)}, strict=False) as emu:
        conn = tailer.Connection(base_url=emu.url, service_account_json=_sa_json(sa_key))
        async with tailer.Client("tailer-sa", conn, retry=RETRY, clock=lambda: now[0]) as client:
            assert isinstance(client.authn, tailer.ServiceAccountAuth)
            run = await client.trigger(JOB, {})
            first = emu.state.requests_to("trigger")[0].headers["authorization"]
            header, claims = _claims(first)
            assert header == {"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"}
            assert claims["iss"] == claims["sub"] == claims["email"] == EMAIL
            assert claims["aud"] == emu.url
            assert claims["exp"] == claims["iat"] + 3600

            def move(seconds: float) -> None:
                now[0] += seconds
                clock.advance(seconds)

            move(3000)  # 10 minutes left: the cached token is kept
            await client.get_status(JOB, run.run_id)
            assert emu.state.requests_to("status")[-1].headers["authorization"] == first
            assert client.authn.minted == 1
            move(400)  # under 5 minutes left: a new one is signed
            status = await client.get_status(JOB, run.run_id)
            renewed = emu.state.requests_to("status")[-1].headers["authorization"]
            assert renewed != first
            assert client.authn.minted == 2
            assert _claims(renewed)[1]["iat"] == int(now[0])
            assert status.state is RunState.SUCCEEDED


async def test_an_expired_service_account_token_is_refused(
    state: EmulatorState, clock: ManualClock, sa_key: rsa.RSAPrivateKey
) -> None:
    state.script(SENT_CONFIGURATION_ID, Outcome())
    frozen = clock.now()
    async with TailerEmulator(state, service_accounts={EMAIL: _public_pem(sa_key)}, strict=False) as emu:
        conn = tailer.Connection(base_url=emu.url, service_account_json=_sa_json(sa_key))
        async with tailer.Client("tailer-sa", conn, retry=RETRY, clock=lambda: frozen) as client:
            await client.trigger(JOB, {})
            token = client.authn.secrets()[0]
            clock.advance(3600 + 61)  # the bot's clock stands still: it keeps the old token
            with pytest.raises(ProviderAuthError) as err:
                await client.trigger(JOB, {})
    message = str(err.value)
    assert "Jwt is expired" in message
    assert EMAIL in message
    assert token not in message
    assert "PRIVATE KEY" not in message


async def test_a_token_signed_by_another_key_is_refused(state: EmulatorState, sa_key: rsa.RSAPrivateKey) -> None:
    state.script(SENT_CONFIGURATION_ID, Outcome())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    async with TailerEmulator(state, service_accounts={EMAIL: _public_pem(sa_key)}, strict=False) as emu:
        conn = tailer.Connection(base_url=emu.url, service_account_json=_sa_json(other))
        async with tailer.Client("tailer-sa", conn, retry=RETRY) as client:
            with pytest.raises(ProviderAuthError) as err:
                await client.trigger(JOB, {})
        assert "Jwt verification fails" in str(err.value)
        # the wrong audience is refused too
        conn = tailer.Connection(base_url=emu.url, service_account_json=_sa_json(sa_key), audience="https://elsewhere")
        async with tailer.Client("tailer-sa", conn, retry=RETRY) as client:
            with pytest.raises(ProviderAuthError) as err:
                await client.trigger(JOB, {})
        assert "Audiences" in str(err.value)
    assert not state.runs


async def test_a_service_account_key_file_is_read(
    state: EmulatorState, sa_key: rsa.RSAPrivateKey, tmp_path: Any
) -> None:
    state.script(SENT_CONFIGURATION_ID, Outcome())
    path = tmp_path / "sa.json"
    path.write_text(_sa_json(sa_key))
    async with TailerEmulator(state, service_accounts={EMAIL: _public_pem(sa_key)}, strict=False) as emu:
        conn = tailer.Connection(base_url=emu.url, service_account_file=str(path))
        assert conn.secret_values() == []
        async with tailer.Client("tailer-sa", conn, retry=RETRY) as client:
            assert (await client.trigger(JOB, {})).run_id
    with pytest.raises(ConfigError) as err:
        tailer.Client("tailer-sa", tailer.Connection(service_account_file=str(tmp_path / "missing.json")))
    assert "missing.json" in str(err.value)


def test_a_connection_takes_exactly_one_credential(sa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValidationError, match="exactly one of token"):
        tailer.Connection()
    with pytest.raises(ValidationError, match="got token, service_account_file"):
        tailer.Connection(token=TOKEN, service_account_file="/tmp/sa.json")
    broken = _sa_json(sa_key).replace("BEGIN PRIVATE KEY", "BEGIN NOTHING")
    with pytest.raises(ValidationError) as err:
        tailer.Connection(service_account_json=broken)
    assert "not a readable PEM private key" in str(err.value)
    assert "MII" not in str(err.value)  # no key material in the message
    conn = tailer.Connection(service_account_json=_sa_json(sa_key))
    assert conn.effective_audience == API
    assert any("PRIVATE KEY" in s for s in conn.secret_values())


async def test_an_expired_static_token_says_how_to_get_a_new_one(
    client: tailer.Client, emu: TailerEmulator
) -> None:
    emu.state.add_fault(Fault(route="trigger", kind="expired_token", times=1))
    with pytest.raises(ProviderAuthError) as err:
        await client.trigger(JOB, {})
    message = str(err.value)
    assert "tailer auth get-token" in message
    assert "expired" in message
    assert "refresh_token" in message  # the renewal tailer-sdk uses, which the bot can do itself
    assert TOKEN not in message


# -- configuration changes and workflow reset -------------------------------------------------------


async def test_disable_stops_launches_and_ends_live_runs_and_enable_restores(
    client: tailer.Client, emu: TailerEmulator, clock: ManualClock
) -> None:
    running = await client.trigger(JOB, {})
    clock.advance(11)
    await client.disable(JOB)
    assert emu.configurations[SENT_CONFIGURATION_ID] == {"activated": False, "archived": False}
    status = await client.get_status(JOB, running.run_id)
    assert (status.state, status.raw_status, status.final) == (RunState.CANCELED, "DEACTIVATED", True)
    assert "deactivated" in status.message
    with pytest.raises(ProviderRejected) as err:
        await client.trigger(JOB, {})
    assert "deactivated" in str(err.value)
    assert len(emu.state.runs) == 1
    await client.enable(JOB)
    assert emu.configurations[SENT_CONFIGURATION_ID] == {"activated": True, "archived": False}
    assert (await client.trigger(JOB, {})).run_id
    await client.archive(JOB)
    assert emu.configurations[SENT_CONFIGURATION_ID] == {"activated": False, "archived": True}
    with pytest.raises(ProviderRejected, match="archived"):
        await client.trigger(JOB, {})


async def test_reset_a_workflow(client: tailer.Client, emu: TailerEmulator) -> None:
    await client.reset(WORKFLOW)
    assert emu.resets == {WORKFLOW.configuration_id: 1}
    assert emu.state.requests_to("workflow")[0].body["configuration_type"] == "workflow"
    with pytest.raises(ProviderRejected, match="only workflow"):
        await client.reset(JOB)
    assert len(emu.state.requests_to("workflow")) == 1
    unknown = WORKFLOW.model_copy(update={"configuration_id": "000099-nope"})
    with pytest.raises(ProviderNotFound, match=r"pipelines\.yml"):
        await client.reset(unknown)


async def test_cancel_is_not_offered(client: tailer.Client) -> None:
    assert not client.can(Capability.CANCEL)
    assert client.can(Capability.RESET)
    with pytest.raises(OperationNotSupported, match="Tailer has no cancel"):
        await client.cancel(JOB, "20201230-113940-1fb692b0-3531-4578-9919-acf6fdb0a5b1")


# -- lists ------------------------------------------------------------------------------------------


async def _runs(client: tailer.Client, emu: TailerEmulator, clock: ManualClock) -> list[str]:
    """Four runs, oldest first: success, failure, success, still running."""
    emu.state.script(SENT_CONFIGURATION_ID, [
        Outcome(queued_s=1, running_s=5), Outcome(result="fail", queued_s=1, running_s=5),
        Outcome(queued_s=1, running_s=5), Outcome(result="hang", queued_s=1),
    ])
    ids = []
    for _ in range(4):
        ids.append((await client.trigger(JOB, {})).run_id)
        clock.advance(60)
    return ids


async def test_last_status_and_runs_by_status(client: tailer.Client, emu: TailerEmulator, clock: ManualClock) -> None:
    ids = await _runs(client, emu, clock)
    two = await client.last_status(JOB, limit=2)
    assert [r.run_id for r in two] == [ids[3], ids[2]]
    assert [r.state for r in two] == [RunState.RUNNING, RunState.SUCCEEDED]
    assert emu.state.requests_to("status")[-1].body["limit"] == 2
    succeeded = await client.last_status(JOB, limit=10, status="success")
    assert [r.run_id for r in succeeded] == [ids[2], ids[0]]
    with pytest.raises(ProviderRejected, match="strict: no source for the action get_by_status"):
        await client.runs_by_status(JOB, "FAILED", limit=5)
    emu.strict = False  # an assumption: get_by_status is in no vendor source (the bot never calls it)
    failed = await client.runs_by_status(JOB, "FAILED", limit=5)
    assert [(r.run_id, r.state, r.final) for r in failed] == [(ids[1], RunState.FAILED, True)]
    assert emu.state.requests_to("status")[-1].body["action"] == "get_by_status"
    emu.strict = True
    today = datetime.fromtimestamp(clock.now(), UTC).date()
    assert len(await client.last_status(JOB, limit=10, execution_date=today)) >= 1
    assert await client.last_status(JOB, limit=10, execution_date="1999-01-01") == []
    recent = await client.list_runs(JOB, since=datetime.fromtimestamp(clock.now() - 150, UTC))
    assert [r.run_id for r in recent] == [ids[3], ids[2]]


async def test_a_run_tailer_does_not_list_is_no_news_and_says_what_to_check(client: tailer.Client) -> None:
    with pytest.raises(ProviderNoNews) as err:
        await client.get_status(JOB, "20201230-113940-1fb692b0-3531-4578-9919-acf6fdb0a5b1")
    assert "no news" in str(err.value)
    assert "000099_iowa_liquor_prepare_pda_DEV" in str(err.value)
    assert "pipelines.yml" in str(err.value)


async def test_no_match_and_checked_runs(client: tailer.Client, emu: TailerEmulator, clock: ManualClock) -> None:
    emu.strict = False  # assumptions: NO_MATCH and CHECKED are in no vendor source (strict answers FAILED)
    emu.state.script(SENT_CONFIGURATION_ID, [Outcome(result="fail", message="NO_MATCH", queued_s=1, running_s=1),
                                             Outcome(result="fail", queued_s=1, running_s=1)])
    no_match = await client.trigger(JOB, {})
    failed = await client.trigger(JOB, {})
    clock.advance(5)
    status = await client.get_status(JOB, no_match.run_id)
    assert (status.state, status.raw_status, status.final) == (RunState.FAILED, "NO_MATCH", True)
    assert "template" in status.message
    emu.mark_checked(failed.run_id)
    status = await client.get_status(JOB, failed.run_id)
    assert (status.state, status.raw_status, status.final) == (RunState.UNKNOWN, "CHECKED", True)
    assert "marked as handled" in status.message
    emu.strict = True
    assert (await client.get_status(JOB, no_match.run_id)).raw_status == "FAILED"
    assert (await client.get_status(JOB, failed.run_id)).raw_status == "FAILED"


# -- the status table -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "state", "final"),
    [
        ("WAITING", RunState.QUEUED, False),
        ("RUNNING", RunState.RUNNING, False),
        ("SUCCESS", RunState.SUCCEEDED, True),
        ("FAILED", RunState.FAILED, True),
        ("NO_MATCH", RunState.FAILED, True),
        ("DEACTIVATED", RunState.CANCELED, True),
        ("CHECKED", RunState.UNKNOWN, True),
        ("success", RunState.SUCCEEDED, True),
        ("SOMETHING_NEW", RunState.UNKNOWN, False),
        ("", RunState.UNKNOWN, False),
    ],
)
def test_map_status(raw: str, state: RunState, final: bool) -> None:
    assert tailer.map_status(raw) is state
    run = tailer.parse_run({"run_id": "r", "status": raw})
    assert (run.state, run.final, run.raw_status) == (state, final, raw)
    if state in (RunState.FAILED, RunState.UNKNOWN, RunState.CANCELED):
        assert run.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0:01:24.002519", timedelta(minutes=1, seconds=24, microseconds=2519)),
        ("0:00:03", timedelta(seconds=3)),
        ("1 day, 2:03:04.5", timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=500000)),
        ("12:00:00", timedelta(hours=12)),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_duration(text: str | None, expected: timedelta | None) -> None:
    assert tailer.parse_duration(text) == expected


# -- the emulator on its own ------------------------------------------------------------------------


async def _post(emu: TailerEmulator, path: str, body: Any, token: str | None = TOKEN) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        return await http.post(f"{emu.url}{path}", content=json.dumps(body).encode(), headers=headers)


@pytest.mark.parametrize(
    ("path", "body", "token", "code", "words"),
    [
        ("/v1/dag/launch", json.loads(LAUNCH_REQUEST), None, 401, "Jwt is missing"),
        ("/v1/dag/launch", json.loads(LAUNCH_REQUEST), "not-the-token", 401, "Jwt verification fails"),
        ("/v1/dag/launch", json.loads(LAUNCH_REQUEST) | {"action": "launch"}, TOKEN, 400, "Unknown action"),
        ("/v1/dag/status", {"action": "check_run_status"}, TOKEN, 400, "Missing field(s): account"),
        ("/v1/dag/status", json.loads(LAUNCH_REQUEST) | {"action": "check_run_status"}, TOKEN, 400, "run_id"),
        ("/v1/dag/status", {k: v for k, v in json.loads(CHECK_REQUEST).items() if k != "job_id"}, TOKEN, 400,
         "Missing field(s): job_id"),
        ("/v1/dag/status", json.loads(LAUNCH_REQUEST) | {"action": "get_by_status"}, TOKEN, 400,
         "strict: no source for the action get_by_status"),
        ("/v1/dag/launch", json.loads(LAUNCH_REQUEST) | {"job_id": "gbq-to-gbq|x"}, TOKEN, 400,
         "strict: no source for job_id in launch_job"),
        ("/v1/dag/status", json.loads(CHECK_REQUEST) | {"limit": 1}, TOKEN, 400,
         "strict: no source for limit in check_run_status"),
        ("/v1/dag/launch", json.loads(LAUNCH_REQUEST) | {"configuration_type": "storage-to-storage"}, TOKEN, 400,
         "storage-to-storage configurations cannot be launched"),
        ("/v1/configuration/status", json.loads(DISABLE_REQUEST) | {"activated": "no"}, TOKEN, 400, "activated"),
        ("/v1/workflow/status", json.loads(RESET_REQUEST) | {"configuration_type": "table-to-table"}, TOKEN, 400,
         "not a workflow"),
    ],
)
async def test_the_emulator_refuses_bad_requests(
    emu: TailerEmulator, path: str, body: Any, token: str | None, code: int, words: str
) -> None:
    answer = await _post(emu, path, body, token)
    assert answer.status_code == code
    assert words in answer.json()["message"]
    assert not emu.state.runs


async def test_the_emulator_accepts_any_token_when_given_none(state: EmulatorState) -> None:
    state.script(SENT_CONFIGURATION_ID, Outcome())
    async with TailerEmulator(state, strict=True) as emu:
        answer = await _post(emu, "/v1/dag/launch", json.loads(LAUNCH_REQUEST), "whatever")
        assert answer.status_code == 200
        assert set(answer.json()) == {"run_id"}
        assert (await _post(emu, "/v1/dag/launch", json.loads(LAUNCH_REQUEST), None)).status_code == 401
        emu.configure({"tokens": ["t-1"]})
        assert (await _post(emu, "/v1/dag/launch", json.loads(LAUNCH_REQUEST), "whatever")).status_code == 401
        with pytest.raises(ValueError, match="unknown scenario keys"):
            emu.configure({"api_keys": ["x"]})


async def test_external_runs_get_tailer_ids_and_show_in_lists(
    client: tailer.Client, emu: TailerEmulator, clock: ManualClock
) -> None:
    await client.trigger(JOB, {})  # the emulator learns the job's identity
    clock.advance(1)
    external = emu.external_run(SENT_CONFIGURATION_ID, {})
    assert re.match(RUN_ID, external)
    runs = await client.last_status(JOB, limit=5)
    assert runs[0].run_id == external
    assert runs[0].extra["account"] == "000099"


async def test_without_strict_the_emulator_serves_its_assumptions(emu: TailerEmulator) -> None:
    emu.strict = False  # what this test is about: the assumptions strict mode refuses
    body = json.loads(LAUNCH_REQUEST) | {"action": "get_by_status"}
    assert "Missing field(s): status" in (await _post(emu, "/v1/dag/status", body)).json()["message"]
    answer = await _post(emu, "/v1/dag/status", body | {"status": "FAILED"})
    assert answer.status_code == 200
    assert answer.json() == {"results": []}


# -- an answer that does not name the run asked for -------------------------------------------------

ASKED = "20201230-113940-1fb692b0-3531-4578-9919-acf6fdb0a5b1"


@pytest.mark.parametrize("status", ["FAILED", "SUCCESS"])
async def test_an_answer_naming_another_run_is_no_news_never_its_status(status: str) -> None:
    # the seed's own answer (another run's), as Tailer would give it if it ignored run_id
    other = json.loads(CHECK_RUN_STATUS)
    other["results"][0]["status"] = status
    recorder = Recorder(json.dumps(other))
    async with recorder.client() as client:
        with pytest.raises(ProviderNoNews) as err:
            await client.get_status(JOB, ASKED)
    assert recorder.body()["run_id"] == ASKED
    message = str(err.value)
    assert ASKED in message
    assert "does not name that run" in message and "1 other run" in message
    assert "20201230-112837" not in message  # nothing of the other run is reported as this one's


async def test_the_run_asked_for_is_taken_from_a_list_whatever_its_place() -> None:
    recorder = Recorder(LAST_STATUS_JOB)
    async with recorder.client() as client:
        run = await client.get_status(JOB, "20201210-140612-19e547a1-de6a-47f0-b563-b8a3d5754118")
        assert run.run_id == "20201210-140612-19e547a1-de6a-47f0-b563-b8a3d5754118"
        assert run.duration == timedelta(minutes=1, seconds=39, microseconds=201091)
        with pytest.raises(ProviderNoNews, match="3 other run"):
            await client.get_status(JOB, ASKED)


async def test_an_answer_with_entries_without_run_id_is_no_news() -> None:
    answer = json.loads(CHECK_RUN_STATUS)
    del answer["results"][0]["run_id"]
    recorder = Recorder(json.dumps(answer))
    async with recorder.client() as client:
        with pytest.raises(ProviderNoNews):
            await client.get_status(JOB, "20201230-112837-0a795c70-2557-4a60-ba16-788aa2bea179")


# -- the full identity of the job -------------------------------------------------------------------


@pytest.mark.parametrize("ctype", ["storage-to-storage", "table-to-storage", "workflow", "storage-to-tables"])
def test_job_id_is_required_where_no_documented_rule_derives_it(ctype: str) -> None:
    with pytest.raises(ValidationError) as err:
        tailer.Job(account="000099", environment="DEV", configuration_type=ctype, configuration_id="000099-x")
    message = str(err.value)
    assert f"job_id: required for configuration_type {ctype}" in message
    assert "only for table-to-table" in message
    job = tailer.Job(account="000099", environment="DEV", configuration_type=ctype, configuration_id="000099-x",
                     job_id=f"{ctype}|000099-x")
    assert job.status_job_id() == f"{ctype}|000099-x"


def test_the_table_to_table_job_id_follows_the_documented_rule() -> None:
    # seed line 51; tailer-sdk: template_main.py's job_id is "gbq-to-gbq|" + the DAG name, which
    # sql_dag_generator.py makes of the configuration_id and "_" + environment
    assert JOB.status_job_id() == "gbq-to-gbq|000099_iowa_liquor_prepare_pda_DEV"
    assert JOB.model_copy(update={"job_id": "gbq-to-gbq|other"}).status_job_id() == "gbq-to-gbq|other"


async def test_every_status_call_carries_the_job_id_for_every_type(
    client: tailer.Client, emu: TailerEmulator, clock: ManualClock
) -> None:
    # a storage-to-storage data operation started by a file arriving; the emulator's job_id for it
    cid = "000099-jarvis-demo-iowa-liquor-storage-to-storage"
    job_id = f"storage-to-storage|000099|{cid}|DEV|file-{{{{FD_DATE}}}}.csv"
    storage = STORAGE.model_copy(update={"job_id": job_id})
    emu.state.script(cid, Outcome(queued_s=0, running_s=5))
    assert await client.last_status(storage) == []  # the emulator learns the data operation's identity
    run_id = emu.external_run(cid, {})
    clock.advance(1)
    [listed] = await client.list_runs(storage, since=datetime.fromtimestamp(clock.now() - 60, UTC))
    status = await client.get_status(storage, listed.run_id)
    assert (status.run_id, status.state) == (run_id, RunState.RUNNING)
    sent = emu.state.requests_to("status")[-1].body
    assert (sent["action"], sent["job_id"], sent["run_id"]) == ("check_run_status", job_id, run_id)
    assert "job_id" not in emu.state.requests_to("status")[0].body  # get_last_status: as in the seed
    with pytest.raises(ProviderNoNews):  # another job's id: Tailer lists nothing for it
        await client.get_status(storage.model_copy(update={"job_id": "storage-to-storage|other"}), run_id)


async def test_a_configurations_list_keeps_only_the_jobs_runs() -> None:
    recorder = Recorder(LAST_STATUS_OPERATION)
    async with recorder.client() as client:
        assert len(await client.last_status(STORAGE)) == 3
        assert await client.last_status(STORAGE.model_copy(update={"job_id": "storage-to-storage|other"})) == []


# -- only table-to-table and table-to-storage are launched ------------------------------------------


def test_only_tables_to_tables_and_tables_to_storage_can_be_run() -> None:
    assert tailer.LAUNCHABLE == ("table-to-table", "table-to-storage")
    assert JOB.run_refusal() is None
    to_storage = tailer.Job(account="000099", environment="DEV", configuration_type="table-to-storage",
                            configuration_id="000099-export", job_id="table-to-storage|000099-export")
    assert to_storage.run_refusal() is None
    for job in (STORAGE, WORKFLOW):
        refusal = job.run_refusal()
        assert refusal is not None
        assert "launches only Tables to Tables and Tables to Storage" in refusal
        assert job.configuration_type in refusal and "watch" in refusal


async def test_a_pipeline_tailer_does_not_launch_is_refused_before_anything_is_sent(
    client: tailer.Client, emu: TailerEmulator
) -> None:
    with pytest.raises(OperationNotSupported) as err:
        await client.trigger(STORAGE, {})
    assert "storage-to-storage" in str(err.value)
    assert not emu.state.requests_to("trigger")


# -- renewing the token as tailer-sdk does ----------------------------------------------------------

REFRESH = "AMf-vBrefresh-token-of-the-bot-user"
API_KEY = "AIzaSy-test-firebase-web-api-key"


def _jwt(claims: dict[str, Any]) -> str:
    parts = ({"alg": "RS256", "kid": "test"}, claims)
    encoded = (base64.urlsafe_b64encode(json.dumps(p).encode()).rstrip(b"=").decode() for p in parts)
    return ".".join(encoded) + ".c2lnbmF0dXJl"


@pytest.fixture
async def session_emu(state: EmulatorState) -> AsyncIterator[TailerEmulator]:
    state.script(SENT_CONFIGURATION_ID, Outcome(queued_s=10, running_s=6000))
    async with TailerEmulator(state, refresh_tokens={REFRESH}, firebase_api_key=API_KEY, strict=True) as emu:
        yield emu


def _session_client(emu: TailerEmulator, clock: ManualClock, refresh: str = REFRESH) -> tailer.Client:
    conn = tailer.Connection(base_url=emu.url, refresh_token=refresh, firebase_api_key=API_KEY,
                             token_url=f"{emu.url}/v1/token")
    return tailer.Client("tailer-refresh", conn, retry=RETRY, clock=clock.now)


async def test_the_bot_renews_its_token_with_the_refresh_token_as_tailer_sdk_does(
    session_emu: TailerEmulator, clock: ManualClock
) -> None:
    async with _session_client(session_emu, clock) as client:
        assert isinstance(client.authn, tailer.FirebaseSession)
        assert client.credential_deadline() is None  # nothing for a person to renew
        run = await client.trigger(JOB, {})
        [renewal] = session_emu.state.requests_to("token")
        assert renewal.query == {"key": API_KEY}
        assert renewal.body == {"grantType": "refresh_token", "refreshToken": REFRESH}  # firebase's Auth.refresh
        first = session_emu.state.requests_to("trigger")[0].headers["authorization"]
        assert first.removeprefix("Bearer ") in session_emu.id_tokens
        clock.advance(3000)  # 10 minutes left: kept
        await asyncio.gather(*(client.get_status(JOB, run.run_id) for _ in range(5)))
        assert client.authn.renewed == 1
        clock.advance(400)  # under 5 minutes left: renewed once, whatever the number of calls at once
        await asyncio.gather(*(client.get_status(JOB, run.run_id) for _ in range(5)))
        assert client.authn.renewed == 2
        assert len(session_emu.state.requests_to("token")) == 2
        renewed = session_emu.state.requests_to("status")[-1].headers["authorization"]
        assert renewed != first
        session_emu.id_tokens.clear()  # Tailer no longer takes the token (revoked early): 401, renew, replay
        status = await client.get_status(JOB, run.run_id)
        assert status.state is RunState.RUNNING
        assert client.authn.renewed == 3


async def test_a_refused_refresh_token_says_how_to_get_a_new_one(
    session_emu: TailerEmulator, clock: ManualClock
) -> None:
    async with _session_client(session_emu, clock, refresh="AMf-vBrevoked") as client:
        with pytest.raises(ProviderAuthError) as err:
            await client.trigger(JOB, {})
    message = str(err.value)
    assert "INVALID_REFRESH_TOKEN" in message
    assert "tailer auth login" in message and "refreshToken" in message
    assert "AMf-vBrevoked" not in message
    assert API_KEY not in message
    assert not session_emu.state.requests_to("trigger")


async def test_a_failing_token_service_sends_nothing_to_tailer(
    session_emu: TailerEmulator, clock: ManualClock
) -> None:
    session_emu.state.add_fault(Fault(route="token", status=503, times=1))
    async with _session_client(session_emu, clock) as client:
        with pytest.raises(ProviderUnavailable, match="nothing was sent to Tailer"):
            await client.trigger(JOB, {})
        assert not session_emu.state.requests_to("trigger")
        assert (await client.trigger(JOB, {})).run_id  # the next call renews


async def test_the_refresh_answer_of_tailer_sdks_firebase_library_is_read() -> None:
    # firebase 3.0.1 Auth.refresh reads user_id, id_token and refresh_token, nothing else
    token = _jwt({"user_id": "u1", "exp": 4102444800})
    answers = [json.dumps({"user_id": "u1", "id_token": token, "refresh_token": "AMf-vBrotated"}), LAUNCH]
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=answers[len(sent) - 1].encode())

    conn = tailer.Connection(refresh_token=REFRESH, firebase_api_key=API_KEY)
    http = httpx.AsyncClient(base_url=f"{API}/", transport=httpx.MockTransport(handle))
    async with tailer.Client("tailer-seed", conn, http=http, retry=RETRY) as client:
        http.auth = client.authn
        assert (await client.trigger(JOB, {})).run_id == "20201230-113940-1fb692b0-3531-4578-9919-acf6fdb0a5b1"
    assert str(sent[0].url) == f"https://securetoken.googleapis.com/v1/token?key={API_KEY}"
    assert sent[1].headers["authorization"] == f"Bearer {token}"
    assert isinstance(client.authn, tailer.FirebaseSession)
    assert "AMf-vBrotated" in client.authn.secrets()  # a rotated refresh token is kept, and hidden
    await http.aclose()


async def test_the_strict_token_service_answers_only_what_tailer_sdk_reads(session_emu: TailerEmulator) -> None:
    async with httpx.AsyncClient() as http:
        url = f"{session_emu.url}/v1/token?key={API_KEY}"
        body = {"grantType": "refresh_token", "refreshToken": REFRESH}
        assert set((await http.post(url, json=body)).json()) == {"id_token", "refresh_token", "user_id"}
        session_emu.strict = False  # Google's whole answer, an unread part included
        assert "expires_in" in (await http.post(url, json=body)).json()
        refused = await http.post(url, json=body | {"refreshToken": "nope"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "INVALID_REFRESH_TOKEN"


def test_refresh_token_and_api_key_go_together() -> None:
    with pytest.raises(ValidationError, match="go together"):
        tailer.Connection(refresh_token=REFRESH)
    with pytest.raises(ValidationError, match="exactly one of token"):
        tailer.Connection(token=TOKEN, refresh_token=REFRESH, firebase_api_key=API_KEY)
    conn = tailer.Connection(refresh_token=REFRESH, firebase_api_key=API_KEY)
    assert conn.token_url == "https://securetoken.googleapis.com/v1/token"
    assert set(conn.secret_values()) == {REFRESH, API_KEY}


# -- a static token expires -------------------------------------------------------------------------


async def test_a_static_tokens_expiry_is_known_and_an_expired_one_is_not_sent(
    state: EmulatorState, clock: ManualClock
) -> None:
    state.script(SENT_CONFIGURATION_ID, Outcome(queued_s=10, running_s=6000))
    exp = int(clock.now()) + 600
    token = _jwt({"user_id": "u1", "exp": exp})
    async with TailerEmulator(state, tokens={token}, strict=True) as emu:
        conn = tailer.Connection(base_url=emu.url, token=token)
        async with tailer.Client("tailer-static", conn, retry=RETRY, clock=clock.now) as client:
            deadline = client.credential_deadline()
            assert deadline is not None
            assert deadline[0] == datetime.fromtimestamp(exp, UTC)
            assert "tailer auth get-token" in deadline[1] and "refresh_token" in deadline[1]
            run = await client.trigger(JOB, {})
            clock.advance(601)
            with pytest.raises(ProviderAuthError) as err:
                await client.get_status(JOB, run.run_id)
            assert "expired at" in str(err.value) and "tailer auth get-token" in str(err.value)
            assert token not in str(err.value)
            assert not emu.state.requests_to("status")  # no 401 asked for
        clock.advance(60)  # past the gateway's clock skew: Tailer itself refuses it too
        refused = await _post(emu, "/v1/dag/status", json.loads(CHECK_REQUEST) | {"run_id": run.run_id}, token)
        assert (refused.status_code, refused.json()["message"]) == (401, "Jwt is expired")


def test_a_token_without_exp_has_no_deadline() -> None:
    client = tailer.Client("tailer-test", tailer.Connection(token=TOKEN))
    assert client.credential_deadline() is None


# -- samples from tailer-sdk ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "state"),
    [("WAITING", RunState.QUEUED), ("RUNNING", RunState.RUNNING), ("SUCCESS", RunState.SUCCEEDED),
     ("FAILED", RunState.FAILED), ("DEACTIVATED", RunState.CANCELED)],
)
def test_the_statuses_tailer_sdks_dags_publish_parse(raw: str, state: RunState) -> None:
    # template_main.py / sql_dag_generator.py publish these, with duration = str(now - start_time)
    entry = json.loads(CHECK_RUN_STATUS)["results"][0] | {"status": raw, "duration": str(timedelta(seconds=95.5))}
    run = tailer.parse_run(entry)
    assert run.state is state
    assert run.duration == timedelta(seconds=95.5)


async def test_a_renewal_answer_without_id_token_sends_nothing_and_is_not_a_maybe_started_launch() -> None:
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=b'{"user_id": "u1"}')

    conn = tailer.Connection(refresh_token=REFRESH, firebase_api_key=API_KEY)
    http = httpx.AsyncClient(base_url=f"{API}/", transport=httpx.MockTransport(handle))
    async with tailer.Client("tailer-seed", conn, http=http, retry=RETRY) as client:
        http.auth = client.authn
        with pytest.raises(ProviderAuthError, match="without id_token: nothing was sent to Tailer"):
            await client.trigger(JOB, {})
    assert [r.url.host for r in sent] == ["securetoken.googleapis.com"]
    await http.aclose()
