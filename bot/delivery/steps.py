"""Sends a Workflow Builder step's completion (an outbox message of kind ``function``, written by
``bot.service.function_steps``): ``functions.completeSuccess`` with the run's outputs and its card's link, or
``functions.completeError``. Claimed, retried and kept like any outbox message (``Deliverer``), so a step is
completed once, after a restart too."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.delivery.answers import REASON_LIMIT, slack_error
from bot.ops.redact import PROCESS
from bot.store import keys
from bot.store.records import OutboxItem
from bot.store.store import Store

__all__ = ["StepCompletions"]

log = logging.getLogger(__name__)


class StepCompletions:
    def __init__(
        self,
        store: Store,
        call: Callable[..., Awaitable[AsyncSlackResponse]],
        now: Callable[[], datetime],
        retry_wait: Callable[[SlackApiError], float | None],
        backoff: Callable[[int], datetime],
    ) -> None:
        self.store = store
        self._call = call  # the Deliverer's counted Web API call
        self.now = now
        self._retry_wait = retry_wait
        self._backoff = backoff

    async def send(self, item: OutboxItem) -> bool:
        """A Workflow Builder step's end: ``functions.completeSuccess`` (its outputs, with the card's link, known
        now that the card is posted) or ``functions.completeError``. Slack refusing it for good (the execution is
        over: timed out, or completed by an earlier try whose answer we never saw) ends it here."""
        execution_id = item.channel or ""
        payload = (item.blocks or [{}])[0]
        try:
            await self.store.outbox.attempt(item.id, now=self.now())
            if "error" in payload:
                await self._call("functions.completeError", function_execution_id=execution_id, error=payload["error"])
            else:
                outputs = dict(payload.get("outputs") or {})
                card = keys.run_card(item.run_id) if item.run_id is not None else None
                if card is not None:
                    link = (await self.store.alert_events.permalinks([card])).get(card)
                    if link:
                        outputs["card_url"] = link
                await self._call("functions.completeSuccess", function_execution_id=execution_id, outputs=outputs)
            await self.store.outbox.sent(item.id, None, now=self.now())
            return True
        except SlackApiError as exc:
            error = slack_error(exc.response)
            wait = self._retry_wait(exc)
            if wait is None:
                log.error("Slack refused the completion of step %s: %s", execution_id, error or _reason(exc),
                          extra={"run_id": item.run_id})
                await self.store.outbox.dead(item.id, error or _reason(exc))
                return True
            await self.store.outbox.retry_later(
                item.id, not_before=self.now() + timedelta(seconds=wait), error=error or _reason(exc)
            )
        except Exception as exc:
            log.warning("step %s not completed: %s", execution_id, _reason(exc), extra={"run_id": item.run_id})
            await self.store.outbox.retry_later(item.id, not_before=self._backoff(item.attempts), error=_reason(exc))
        return False


def _reason(exc: Exception) -> str:
    """What went wrong, never empty (a timeout's text is), redacted: the store keeps it as well as the logs."""
    return PROCESS.head(str(exc), REASON_LIMIT) or type(exc).__name__
