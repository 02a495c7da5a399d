"""The fake Slack's custom steps: ``functions.completeSuccess`` / ``completeError`` spoken to by a real slack_sdk
client, with Slack's documented errors, and the ``function_executed`` event it builds."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.emulators.slack import FakeSlack
from tests.emulators.conftest import Clock


async def error_of(call: object) -> str:
    with pytest.raises(SlackApiError) as raised:
        await call  # type: ignore[misc]
    return str(raised.value.response["error"])


async def test_a_step_completes_once(fake: FakeSlack, client: AsyncWebClient) -> None:
    fake.functions.required_outputs["run_pipeline"] = {"run_number"}
    execution, event = fake.functions.start("run_pipeline", {"pipeline": "orders"}, user="U0ALICE")
    assert event["type"] == "function_executed"
    assert event["function"]["callback_id"] == "run_pipeline"
    assert event["function_execution_id"] == execution.id and execution.id.startswith("Fx")
    assert event["inputs"]["user_context"]["id"] == "U0ALICE"  # Slack sets who used the workflow
    assert event["bot_access_token"]

    missing = client.functions_completeSuccess(function_execution_id=execution.id, outputs={"state": "ok"})
    assert await error_of(missing) == "parameter_validation_failed"
    assert execution.state == "running"
    answer = await client.functions_completeSuccess(function_execution_id=execution.id, outputs={"run_number": 7})
    assert answer["ok"] is True
    assert (execution.state, execution.outputs) == ("completed", {"run_number": 7})
    again = client.functions_completeError(function_execution_id=execution.id, error="late")
    assert await error_of(again) == "execution_not_in_running_state"
    assert execution.state == "completed"


async def test_a_step_fails_and_unknown_executions_are_refused(fake: FakeSlack, client: AsyncWebClient) -> None:
    execution, _ = fake.functions.start("run_pipeline", {}, user="U0BOB")
    answer = await client.functions_completeError(function_execution_id=execution.id, error="Run #3 failed")
    assert answer["ok"] is True
    assert (execution.state, execution.error) == ("failed", "Run #3 failed")
    unknown = client.functions_completeSuccess(function_execution_id="Fx0NOPE", outputs={})
    assert await error_of(unknown) == "function_execution_not_found"


async def test_a_workflow_token_lasts_15_minutes_or_until_its_step_ends(fake: FakeSlack, clock: Clock) -> None:
    """What Slack answered in slackapi/bolt-python#1075: the event's ``bot_access_token`` expires 15 minutes after
    it was issued, or is revoked when the step completes. The bot token completes a step at any time."""
    first, event = fake.functions.start("run_pipeline", {}, user="U0ALICE")
    workflow = AsyncWebClient(token=event["bot_access_token"], base_url=fake.api_url)
    assert (await workflow.auth_test())["ok"] is True  # good while the step runs
    clock.advance(15 * 60 + 1)
    late = workflow.functions_completeSuccess(function_execution_id=first.id, outputs={})
    assert await error_of(late) == "token_expired"
    bot = AsyncWebClient(token=fake.bot_token, base_url=fake.api_url)
    assert (await bot.functions_completeSuccess(function_execution_id=first.id, outputs={}))["ok"] is True

    second, event = fake.functions.start("run_pipeline", {}, user="U0ALICE")
    workflow = AsyncWebClient(token=event["bot_access_token"], base_url=fake.api_url)
    assert (await workflow.functions_completeError(function_execution_id=second.id, error="no"))["ok"] is True
    assert await error_of(workflow.auth_test()) == "token_revoked"
    assert await error_of(AsyncWebClient(token="xwfp-forged", base_url=fake.api_url).auth_test()) == "invalid_auth"
