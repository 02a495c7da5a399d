"""Workflow Builder's "Run a pipeline" step: the ``function_executed`` listener of the custom step declared in
``manifest.yml`` (``functions.run_pipeline``).

Bolt acknowledges the event; the step is then completed or failed later, through the outbox
(``bot.service.function_steps``), not with the listener's ``complete``/``fail``: a step that waits for its run
outlives this request, and a restart of the bot. Who runs the pipeline is the person who used the workflow, as
Slack says in the ``user_context`` input (set by Slack, never by the workflow's builder), so ``allow_run`` holds
as it does for ``/pipeline run``."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from bot.models import Json
from bot.slack.commands.words import key_values, split_words
from bot.slack.context import Services
from bot.slack.failures import OUR_SIDE

__all__ = ["CALLBACK_ID", "INPUTS", "OUTPUTS", "register", "step_inputs"]

log = logging.getLogger(__name__)

CALLBACK_ID = "run_pipeline"
#: what the step reads, as manifest.yml declares it (tests/unit/test_manifest.py compares the two)
INPUTS = ("pipeline", "parameters", "wait", "user_context")
#: what its completion returns (``StepService`` writes the first two, delivery adds the card's link)
OUTPUTS = ("run_number", "state", "card_url")


class StepInputError(ValueError):
    """The step's inputs cannot be read: the step fails saying why."""


def step_inputs(inputs: Json) -> tuple[str, str, dict[str, str], bool]:
    """The person, the pipeline, its parameters (``key=value`` words, as ``/pipeline run`` takes them) and whether
    to wait for the run's end (by default: yes)."""
    person = inputs.get("user_context")
    user_id = person.get("id") if isinstance(person, dict) else None
    if not isinstance(user_id, str) or not user_id:
        raise StepInputError("The step has no person to run the pipeline as (its user_context input is empty).")
    pipeline = inputs.get("pipeline")
    if not isinstance(pipeline, str) or not pipeline.strip():
        raise StepInputError("The step names no pipeline.")
    text = inputs.get("parameters") or ""
    words = split_words(str(text))
    if words is None:
        raise StepInputError(f"The parameters {text!r} have an unclosed quote.")
    parsed = key_values(words)
    if isinstance(parsed, tuple):
        raise StepInputError(f"The parameters {text!r} are not key=value words: {parsed[1]}")
    wait = inputs.get("wait")
    return user_id, pipeline.strip(), parsed, wait is not False and str(wait).lower() != "false"


def register(app: AsyncApp, services: Services) -> None:
    async def on_step(event: Json) -> None:
        steps = services.steps  # read at each event, as the other listeners read their services
        execution_id = str(event.get("function_execution_id") or "")
        try:
            user_id, pipeline, parameters, wait = step_inputs(event.get("inputs") or {})
        except StepInputError as exc:
            if await steps.claim(execution_id, user_id="", wait=False):
                await steps.fail(execution_id, str(exc))
            return
        try:
            await steps.begin(execution_id, user_id, pipeline, parameters, wait=wait)
        except Exception:
            log.exception("the step %s could not start its run", execution_id)
            await steps.fail(execution_id, OUR_SIDE)

    app.function(CALLBACK_ID)(on_step)
