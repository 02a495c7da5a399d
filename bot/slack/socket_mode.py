"""Socket Mode (``SLACK_APP_TOKEN``): Bolt's handler, with each envelope claimed in the replay ledger first.

A module of its own so that a bot served over HTTP (the default) never imports slack_sdk's and Bolt's Socket Mode
modules (24 of them): ``bot.runtime`` imports this one when the settings ask for Socket Mode, while it builds the
bot at start-up, so a broken install still fails before the bot serves. How a request is claimed, answered and
given back is ``bot.slack.replays``'.
"""

from __future__ import annotations

import logging
from time import monotonic, time
from typing import Protocol

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import run_async_bolt_app, send_async_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.models import JsonValue
from bot.ops.metrics import SLACK_ACK, Metrics
from bot.slack.replays import LedgerUnavailable, Replays

__all__ = ["ReplaySafeSocketModeHandler", "envelope_key"]

log = logging.getLogger(__name__)


def envelope_key(req: SocketModeRequest) -> str:
    """An event is its ``event_id`` whatever carries it; any other envelope is its ``envelope_id``."""
    payload: JsonValue = req.payload
    event_id = payload.get("event_id") if isinstance(payload, dict) else None
    if isinstance(event_id, str) and event_id:
        return "event:" + event_id
    return "envelope:" + req.envelope_id


class _Connection(Protocol):
    """What the handler calls of slack_sdk's Socket Mode client, annotated."""

    async def connect(self) -> None: ...

    async def close(self) -> None: ...


class ReplaySafeSocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler, with each envelope claimed before Bolt sees it. A repeat gets its ack
    (so Slack stops redelivering it) and nothing else."""

    def __init__(self, app: AsyncApp, app_token: str, replays: Replays, metrics: Metrics | None = None) -> None:
        super().__init__(app, app_token)
        self.replays = replays
        self.metrics = metrics

    # Bolt's connect_async and close_async, and the Socket Mode client's connect and close, carry no annotations
    # (mypy --strict refuses a call to them): what they do, through a typed view of the client
    async def connect_async(self) -> None:
        client: _Connection = self.client
        await client.connect()

    async def close_async(self) -> None:
        client: _Connection = self.client
        await client.close()

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:
        arrived = monotonic()
        retry = str(req.retry_attempt) if req.retry_attempt else None
        try:
            claim = await self.replays.claim(envelope_key(req), retry=retry)
        except LedgerUnavailable as exc:  # no ack: Slack redelivers it when the database may answer again
            log.warning("a Socket Mode envelope was left unacknowledged: the database did not answer (%s)", exc)
            return
        if claim is None:
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        acked = False
        renewing = self.replays.keep(claim)
        try:
            start = time()
            response = await run_async_bolt_app(self.app, req)
            # Bolt acked: its listener is at work, so a redelivery must do nothing even if this ack is lost;
            # recorded before the ack is sent, so no redelivery finds the claim held once Slack has the ack
            acked = response.status == 200
            if acked:
                await self.replays.answered(claim)
            await send_async_response(client, req, response, start)
            if acked and self.metrics is not None:
                self.metrics.observe(SLACK_ACK, monotonic() - arrived)
        finally:
            renewing.cancel()
            if not acked:
                await self.replays.failed(claim)
