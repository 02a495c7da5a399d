"""The run modal: choosing a pipeline redraws it with that pipeline's parameters; submitting starts the run.

Parameter problems go back in the ``view_submission`` ack, next to the inputs, so the modal stays open.
"""

from __future__ import annotations

import json
import logging
import re

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.web.async_client import AsyncWebClient

from bot.models import Json
from bot.service.permissions import Actor
from bot.slack.blocks import ids
from bot.slack.blocks.modal import parameters_from_state, pipeline_from_state, run_modal, submission_errors
from bot.slack.context import Services
from bot.slack.failures import answer

__all__ = ["register"]

log = logging.getLogger(__name__)
_CHANNEL_ID = re.compile(r"[CGD][A-Z0-9]{2,}")


def register(app: AsyncApp, services: Services) -> None:
    async def on_select(ack: AsyncAck, body: Json, client: AsyncWebClient) -> None:
        await ack()
        view = body.get("view")
        if not isinstance(view, dict) or not isinstance(view.get("id"), str):  # intake checked its state, if any
            log.warning("a pipeline choice arrived without the modal it was made in")
            return
        values = (view.get("state") or {}).get("values") or {}
        chosen = services.catalog.pipelines.get(pipeline_from_state(values) or "")
        updated = run_modal(
            list(services.catalog.pipelines.values()),
            selected=chosen,
            channel=_channel(view),
            display_names=services.display_names(),
        )
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated)

    async def on_submit(ack: AsyncAck, body: Json, view: Json, client: AsyncWebClient) -> None:
        values = view["state"]["values"]
        name = pipeline_from_state(values)
        pipeline = services.catalog.pipelines.get(name or "")
        if pipeline is None:
            await ack(**submission_errors({}, pipeline_error="Choose a pipeline from the list."))
            return
        parameters = parameters_from_state(values, pipeline)
        problems = {}
        for key, spec in pipeline.parameters.items():
            value = parameters.get(key, spec.default)
            if not value:
                if spec.required:
                    problems[key] = "Required."
                continue
            problem = spec.problem_with(value)
            if problem:
                problems[key] = problem[0].upper() + problem[1:] + "."
        if problems:
            await ack(**submission_errors(problems))
            return
        await ack()
        actor = Actor(user_id=body["user"]["id"], channel_id=_channel(view) or None)
        services.tasks.spawn(_start(services, client, actor, pipeline.name, parameters), name="modal run")

    app.action(ids.PIPELINE_SELECT)(on_select)
    app.view(ids.RUN_MODAL)(on_submit)


def _channel(view: Json) -> str:
    """The channel the modal was opened in, from ``private_metadata``: client input, so anything that is not a
    channel id reads as none (the card then goes to the pipeline's own channel)."""
    try:
        data = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return ""
    channel = data.get("channel") if isinstance(data, dict) else None
    return channel if isinstance(channel, str) and _CHANNEL_ID.fullmatch(channel) else ""


async def _member_of(client: AsyncWebClient, channel: str, user: str) -> bool:
    """Whether ``user`` is in ``channel``: the channel came back from the client, so it is checked here."""
    cursor: str | None = None
    for _ in range(50):
        try:
            answer = await client.conversations_members(channel=channel, cursor=cursor, limit=1000)
        except Exception:
            return False
        if user in (answer.get("members") or []):
            return True
        cursor = (answer.get("response_metadata") or {}).get("next_cursor") or None
        if cursor is None:
            return False
    return False


async def _start(
    services: Services, client: AsyncWebClient, actor: Actor, name: str, parameters: dict[str, str]
) -> None:
    if actor.channel_id and not await _member_of(client, actor.channel_id, actor.user_id):
        log.warning("%s submitted the run modal for channel %s without being in it", actor.user_id, actor.channel_id)
        actor = Actor(user_id=actor.user_id, channel_id=None)
    try:
        pipeline = services.catalog.pipelines[name]
        await services.runs.start(actor, pipeline, parameters, channel=actor.channel_id)
        return
    except Exception as exc:  # answered as every listener's errors are (bot.slack.failures)
        text, blocks = answer(exc, doing="run from the modal")
    # a modal has no response_url: tell the person in the channel they were in, else in a DM from the bot
    try:
        if actor.channel_id:
            await client.chat_postEphemeral(channel=actor.channel_id, user=actor.user_id, text=text, blocks=blocks)
        else:
            await client.chat_postMessage(channel=actor.user_id, text=text, blocks=blocks)
    except Exception:
        log.warning("could not tell %s why the run did not start", actor.user_id)
