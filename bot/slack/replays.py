"""Each Slack request is acted on once, across every replica sharing the database.

A signed request can be posted again, byte for byte, while its timestamp is within Slack's five minutes; Slack
retries an event it thinks failed (``X-Slack-Retry-Num``); Socket Mode redelivers an envelope it saw no ack
for (``retry_attempt``). Before Bolt sees a request, its key (``intake.request_key``: the ``event_id`` of an
event, else the exact bytes; an envelope's ``envelope_id`` in Socket Mode) is claimed in the database with one
insert. A repeat is answered 200 with nothing in it and does nothing else.

When a request counts as taken: from the moment its claim is inserted, by the attempt that inserted it.

- The attempt acks (a 2xx answer, or the envelope's ack): the request is *answered*; every repeat within
  ``REMEMBER`` is refused.
- The attempt fails before acking (Bolt's answer is not 2xx, an exception, the connection dropped): the claim
  is given back at once, so Slack's retry is processed as the first delivery would have been.
- While the attempt works, it renews its claim every ``RENEW_EVERY``; the claim is recorded *answered* before
  the ack is written (bounded by ``CLAIM_TIMEOUT``), so no repeat can find it held once Slack has the ack.
- The attempt's process dies before acking: its claim stays *held* and is no longer renewed. A repeat is
  refused until the claim has gone ``TAKEOVER_AFTER`` without renewal; after that it takes the claim over and
  is processed, since Slack has given that attempt up by then.

Why takeover is safe: a claim is taken over only when its holder has stopped renewing it, i.e. its process is
gone, never merely because the attempt is slow (a live attempt renews however long Bolt takes to ack).
``claimed_at`` is the bot's clock read *before* the insert, which may wait for the database's lock for up to
``CLAIM_TIMEOUT``; so ``TAKEOVER_AFTER`` is ``ACK_DEADLINE + CLAIM_TIMEOUT``: a claim cannot look stale the
moment it commits. Until the first renewal a live claim is at most ``CLAIM_TIMEOUT`` old at commit, and renewals
come every ``RENEW_EVERY`` (well under ``ACK_DEADLINE``). If recording *answered* fails, the ack is still sent
(the listener is at work) and the attempt keeps renewing while it retries in the background, so a repeat is
still refused.

``REMEMBER`` covers the window a signature stays valid (a request is accepted up to five minutes either side of
its timestamp, so a replay can come up to ten minutes after the first delivery) and Slack's retry schedule.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.ops.metrics import SLACK_REQUESTS_REFUSED, Metrics
from bot.store.away import database_away
from bot.store.requests import Ledger

__all__ = [
    "ACK_DEADLINE",
    "REMEMBER",
    "TAKEOVER_AFTER",
    "Claim",
    "LedgerUnavailable",
    "Replays",
    "ledger_key",
]

log = logging.getLogger(__name__)

ACK_DEADLINE = timedelta(seconds=3)
REMEMBER = timedelta(minutes=15)
CLAIM_TIMEOUT = timedelta(seconds=2)  # a database that does not answer by then: 503 (HTTP) or no ack (Socket Mode)
TAKEOVER_AFTER = ACK_DEADLINE + CLAIM_TIMEOUT  # a held claim not renewed for this long: its holder is gone
RENEW_EVERY = timedelta(seconds=1)
ANSWER_RETRIES = 30  # recording "answered" after a failure: tries, RENEW_EVERY apart, renewing meanwhile


class LedgerUnavailable(Exception):
    """The database did not answer the claim: the request is neither processed nor dropped (Slack may retry)."""


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    token: str


class Replays:
    def __init__(self, ledger: Ledger, now: Callable[[], datetime], metrics: Metrics | None = None) -> None:
        self.ledger = ledger
        self.now = now
        self.metrics = metrics
        self._later: set[asyncio.Task[None]] = set()

    async def claim(self, key: str, *, retry: str | None = None) -> Claim | None:
        """This attempt's claim on ``key``, or None for a repeat (logged at INFO, counted, nothing else)."""
        digest = ledger_key(key)
        try:
            async with asyncio.timeout(CLAIM_TIMEOUT.total_seconds()):  # an answer in time, even a refusal
                token = await self.ledger.claim(digest, now=self.now(), hold=TAKEOVER_AFTER, keep=REMEMBER)
        except Exception as exc:
            if not database_away(exc):  # not answering in time is (a TimeoutError); a bug of ours is raised as one
                raise
            raise LedgerUnavailable(type(exc).__name__) from exc
        if token is None:
            log.info("a repeat of a Slack request already taken was ignored%s", f" (retry {retry})" if retry else "")
            if self.metrics is not None:
                self.metrics.inc(SLACK_REQUESTS_REFUSED, {"reason": "repeat"})
            return None
        return Claim(digest, token)

    def keep(self, claim: Claim) -> asyncio.Task[None]:
        """Renew ``claim`` every ``RENEW_EVERY`` until the task is cancelled: the attempt is alive."""
        return asyncio.ensure_future(self._renew(claim))

    async def _renew(self, claim: Claim) -> None:
        while True:
            await asyncio.sleep(RENEW_EVERY.total_seconds())
            try:
                async with asyncio.timeout(RENEW_EVERY.total_seconds()):
                    if not await self.ledger.renew(claim.key, claim.token, now=self.now()):
                        return  # answered or given back meanwhile
            except Exception as exc:
                log.warning("could not renew the claim of a Slack request: %s", type(exc).__name__)

    async def answered(self, claim: Claim) -> None:
        """Record ``claim`` answered, within ``CLAIM_TIMEOUT``; if the database does not take it in time, go on
        trying (and renewing) in the background, so the claim never looks abandoned."""
        try:
            async with asyncio.timeout(CLAIM_TIMEOUT.total_seconds()):
                await self.ledger.answered(claim.key, claim.token)
            return
        except Exception as exc:
            log.warning("could not record a Slack request as answered yet: %s", type(exc).__name__)
        self._later.add(task := asyncio.ensure_future(self._answer_later(claim)))
        task.add_done_callback(self._later.discard)

    async def _answer_later(self, claim: Claim) -> None:
        renewing = self.keep(claim)
        try:
            for _ in range(ANSWER_RETRIES):
                await asyncio.sleep(RENEW_EVERY.total_seconds())
                try:
                    await self.ledger.answered(claim.key, claim.token)
                    return
                except Exception:  # noqa: S112 - tried again; the claim is renewed meanwhile
                    continue
            log.warning("gave up recording a Slack request as answered: a repeat may be processed again")
        finally:
            renewing.cancel()

    async def failed(self, claim: Claim) -> None:
        try:
            await self.ledger.release(claim.key, claim.token)
        except Exception as exc:  # the claim lapses after the ack deadline instead
            log.warning("could not give back the claim of an unanswered Slack request: %s", type(exc).__name__)

    async def prune(self) -> None:
        await self.ledger.prune(now=self.now())


def ledger_key(key: str) -> str:
    """What the ledger stores for a request key: fixed length, whatever the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
