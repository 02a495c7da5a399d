"""One error path for every listener: whatever a listener raises, the person gets one ephemeral answer and the
log, for an unexpected error, one line with its traceback.

Before its ack, a listener's error reaches Bolt's error handler (``on_error``, installed by ``build_app``). The
work after the ack runs in a task the bot owns (``answering``), whose errors are answered by the same
``answer``: a listener must not raise after it acked, because Bolt's runner then sets the ack's response back
to None, and if the error came before the runner saw the ack, Slack is told the app did not answer.

- ``UserError``: its message (mrkdwn our code built) is the answer; nothing is logged, nothing went wrong.
- any other ``PipelineBotError`` (a provider down, a trigger whose outcome is unknown): its message, escaped.
- anything else: one log line with the traceback (through the log's redacting filter, like every line) and an
  apology that says it is logged.

Before the ack, a slash command's answer travels in the ack itself; after it, through ``respond`` (the
request's response_url). A listener sets ``context["doing"]`` to name its work in the log line.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.response import BoltResponse

from bot.errors import PipelineBotError, UserError
from bot.models import Json, JsonValue
from bot.slack.blocks.replies import ephemeral_error, notice

__all__ = ["OUR_SIDE", "answer", "answering", "ephemeral", "on_error"]

log = logging.getLogger(__name__)

OUR_SIDE = "Something went wrong on our side; it is logged. Try again in a moment."


def answer(error: Exception, *, doing: str) -> tuple[str, list[JsonValue]]:
    """The reply for ``error``; an unexpected one is logged, with its traceback, as ``doing`` failed."""
    if isinstance(error, UserError):
        return notice("⚠️ " + str(error), formatted=True)
    if isinstance(error, PipelineBotError):
        return ephemeral_error(str(error))
    log.error("%s failed", doing, exc_info=error)
    return ephemeral_error(OUR_SIDE)


def ephemeral(text: str, blocks: list[JsonValue]) -> Json:
    """A reply only the person sees, as an ack's or a response_url's body."""
    return {"text": text, "blocks": blocks, "response_type": "ephemeral"}


async def on_error(
    error: Exception,
    body: Json,
    context: AsyncBoltContext,
    respond: AsyncRespond | None,
    response: BoltResponse | None,
) -> BoltResponse | None:
    """Bolt's error handler. ``response`` is None once the listener acked: then the answer goes to ``respond``."""
    reply = answer(error, doing=str(context.get("doing") or "a listener"))
    if response is not None and "command" in body:  # not acked yet: the ack carries the answer
        return BoltResponse(status=200, body=ephemeral(*reply))
    if respond is not None:
        await _tell(respond, reply)
    return None


async def answering(
    work: Awaitable[tuple[str, list[JsonValue]] | None], *, doing: str, respond: AsyncRespond, in_place: bool = False
) -> None:
    """A listener's work after its ack: its reply, if any, or what it raised answered as ``on_error`` would.

    ``in_place``: the reply replaces the message clicked (a confirmation prompt), so the prompt cannot be
    clicked twice; an error still comes as a reply of its own and leaves the prompt, to try again once fixed."""
    try:
        reply = await work
    except Exception as error:
        await _tell(respond, answer(error, doing=doing))
        return
    if reply is not None:
        await respond(**ephemeral(*reply), replace_original=in_place)


async def _tell(respond: AsyncRespond, reply: tuple[str, list[JsonValue]]) -> None:
    try:
        await respond(**ephemeral(*reply), replace_original=False)
    except Exception as exc:  # Slack unreachable, the response_url expired: the log line (if any) remains
        log.warning("could not tell the person about the failure: %s", exc)
