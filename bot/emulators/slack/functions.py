"""The ``functions.*`` Web API family of the fake Slack (custom steps of Workflow Builder), and the
``function_executed`` event that starts one.

Provenance (Slack's documentation):

- ``function_executed`` (https://docs.slack.dev/reference/events/function_executed/): an ``event_callback``
  whose event carries ``function`` (``id``, ``callback_id``, ``title``, ``type: "app"``, ``input_parameters``,
  ``output_parameters``, ``app_id``, dates), ``inputs``, ``function_execution_id`` (``Fx…``),
  ``workflow_execution_id`` (``Wx…``), ``event_ts`` and ``bot_access_token`` (a token for this execution).
- ``functions.completeSuccess`` (https://api.slack.com/methods/functions.completeSuccess): arguments
  ``function_execution_id`` and ``outputs`` (an object, "conforms to the output parameters schema"); errors
  ``function_execution_not_found``, ``execution_not_in_running_state``, ``parameter_validation_failed``.
  ``functions.completeError``: ``function_execution_id`` and ``error`` (a human-readable string), the same
  errors. Both answer ``{"ok": true}``; no scope is needed.
- Which token may complete a step: the methods' reference lists bot tokens (no scope needed), and the app's bot
  token is accepted. The event's ``bot_access_token`` (``xwfp-``, a workflow token: what Bolt's
  ``AsyncAttachingFunctionToken`` puts on the listener's client, and so what its ``complete``/``fail`` use) is
  accepted too, but only for a while: "the tokens either expire 15 mins after being issued OR are revoked when the
  step is completed" (Slack's answer in slackapi/bolt-python#1075). So a step that waits longer for its run must
  be completed with the bot token, as the bot does; the fake refuses a workflow token past either (the error
  names, ``token_expired`` and ``token_revoked``, are Slack's common auth errors: which one Slack answers here is
  an *assumption*).
- The person who used the workflow reaches a step as an input of type ``slack#/types/user_context``
  (https://docs.slack.dev/reference/types/user_context-type): ``{"id": "U…", "secret": "…"}``, set by Slack,
  never by the workflow's builder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bot.emulators._core import Json
from bot.emulators.slack.api import ApiError, Method
from bot.emulators.slack.state import SlackState

__all__ = ["WORKFLOW_TOKEN_SECONDS", "FunctionExecution", "FunctionsApi"]

#: how long an execution's workflow token lasts (slackapi/bolt-python#1075: 15 minutes, or until the step ends)
WORKFLOW_TOKEN_SECONDS = 15 * 60


@dataclass
class FunctionExecution:
    """One run of a custom step: ``running`` until the app completes it (``completed``) or fails it (``failed``)."""

    id: str
    callback_id: str
    inputs: Json
    state: str = "running"
    outputs: Json | None = None
    error: str | None = None
    #: every completion the app sent, answered or refused (a second one is refused: not running any more)
    attempts: list[str] = field(default_factory=list)
    #: the event's ``bot_access_token`` and when it was issued (the fake's clock)
    token: str = ""
    issued_at: float = 0.0


class FunctionsApi:
    def __init__(self, state: SlackState) -> None:
        self.state = state
        self.executions: dict[str, FunctionExecution] = {}
        #: the outputs a step's manifest entry requires (``output_parameters.required``), per callback_id: a
        #: completion without one is refused as Slack refuses it (tests load them from manifest.yml)
        self.required_outputs: dict[str, set[str]] = {}
        state.workflow_token_refusal = self.token_refusal

    def token_refusal(self, token: str) -> str | None:
        """Why a workflow token is refused now ("" while it is good); None for a token no execution was given."""
        execution = next((e for e in self.executions.values() if e.token == token), None)
        if execution is None:
            return None
        if execution.state != "running":
            return "token_revoked"
        if self.state.clock() - execution.issued_at > WORKFLOW_TOKEN_SECONDS:
            return "token_expired"
        return ""

    def methods(self) -> dict[str, Method]:
        return {"functions.completeSuccess": self.complete_success, "functions.completeError": self.complete_error}

    def _running(self, params: Json, outcome: str) -> FunctionExecution:
        execution = self.executions.get(str(params.get("function_execution_id") or ""))
        if execution is None:
            raise ApiError("function_execution_not_found")
        execution.attempts.append(outcome)
        if execution.state != "running":
            raise ApiError("execution_not_in_running_state")
        return execution

    def complete_success(self, params: Json) -> Json:
        outputs = params.get("outputs")
        if not isinstance(outputs, dict):
            raise ApiError("invalid_arguments", errors=["outputs must be an object"])
        execution = self._running(params, "success")
        missing = sorted(self.required_outputs.get(execution.callback_id, set()) - set(outputs))
        if missing:
            raise ApiError("parameter_validation_failed", errors=[f"missing output {name}" for name in missing])
        execution.state, execution.outputs = "completed", outputs
        self.state.changed()
        return {}

    def complete_error(self, params: Json) -> Json:
        error = params.get("error")
        if not isinstance(error, str) or not error:
            raise ApiError("invalid_arguments", errors=["error must be a string"])
        execution = self._running(params, "error")
        execution.state, execution.error = "failed", error
        self.state.changed()
        return {}

    def start(self, callback_id: str, inputs: Json, *, user: str) -> tuple[FunctionExecution, Json]:
        """A workflow reaches the app's step ``callback_id``: the execution, and the event Slack sends for it.
        ``user`` is who used the workflow: the ``user_context`` input Slack fills in."""
        state = self.state
        state.known_user(user)
        number = state.next_id()
        execution_id = f"Fx{number:010d}"
        filled = {**inputs, "user_context": {"id": user, "secret": f"secret-{number}"}}
        token = f"xwfp-{number}-function-token"
        execution = FunctionExecution(execution_id, callback_id, filled, token=token, issued_at=state.clock())
        self.executions[execution_id] = execution
        event: Json = {
            "type": "function_executed",
            "function": {
                "id": f"Fn{number:010d}", "callback_id": callback_id, "title": callback_id, "type": "app",
                "input_parameters": [], "output_parameters": [], "app_id": state.api_app_id,
                "date_created": 1694727597, "date_updated": 1698947481, "date_deleted": 0,
            },
            "inputs": filled,
            "function_execution_id": execution_id,
            "workflow_execution_id": f"Wx{number:010d}",
            "event_ts": f"{time.time():.6f}",
            "bot_access_token": token,
        }
        return execution, event
