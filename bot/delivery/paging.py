"""Sends the PagerDuty events the store holds (``bot.store.paging``): a queue and a tick of their own, so PagerDuty
being slow or down never delays a Slack message, and Slack being down never holds a page.

- Each event is claimed under a lease and sent once PagerDuty answered 202; an event waits while an earlier one of
  its alert is pending (the claim sees to it), so a resolve never overtakes its trigger.
- 429, 5xx, timeouts and unreadable answers are tried again, after ``Retry-After`` when PagerDuty gives one, else
  after a wait that doubles from ``retry`` to ``max_wait`` (a 429 at least ``throttled``, as PagerDuty asks);
  every event carries its dedup key, so a second send is harmless. The first failure of an event is logged as a
  warning, the later ones at debug level (an outage is one line per event, not one per try).
- A 400 (the event or its routing key refused) is logged once, with PagerDuty's reason, and dropped (``dead``):
  sending it again cannot help. The events after it go on.
- The routing key is read from the catalog at send time (``routing_key``), never stored; PagerDutyEvents redacts it
  from every error, so no log line carries it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from pydantic import SecretStr

from bot.delivery.pagerduty import Link, PagerDutyEvents, retryable
from bot.errors import ProviderError, ProviderUnavailable
from bot.ops.ticks import TickGuard
from bot.store.away import database_away
from bot.store.paging import PageEvent
from bot.store.store import Store

__all__ = ["PageSender"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]
RoutingKey = Callable[[str], SecretStr | None]  # a pipeline's routing key, None when it pages no service now
Shown = Callable[[int], Awaitable[None]]  # an alert's event was sent or refused: its Slack message says so


class PageSender:
    def __init__(
        self,
        store: Store,
        events: PagerDutyEvents,
        routing_key: RoutingKey,
        *,
        owner: str,
        now: Now,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 50,
        parallel: int = 8,
        retry: timedelta = timedelta(seconds=2),
        max_wait: timedelta = timedelta(minutes=5),
        throttled: timedelta = timedelta(minutes=1),
        on_trigger: Shown | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.routing_key = routing_key
        self.owner = owner
        self.now = now
        self.lease = lease
        self.batch = batch
        self.retry = retry
        self.max_wait = max_wait
        self.throttled = throttled  # a 429 without Retry-After: PagerDuty asks for "a back off of a few minutes"
        self.on_trigger = on_trigger
        self._parallel = asyncio.Semaphore(parallel)  # one slow PagerDuty call does not hold the others
        self._ticks = TickGuard(lambda: self.store.paging.release(self.owner))

    async def tick(self) -> int:
        """Send what is due; returns how many events PagerDuty accepted. Ticks never overlap."""
        return await self._ticks.run(self._tick)

    async def idle(self) -> None:
        await self._ticks.idle()

    async def aclose(self) -> None:
        await self.events.aclose()

    async def _tick(self) -> int:
        due = await self.store.paging.claim(self.owner, now=self.now(), limit=self.batch, lease=self.lease)
        results = await asyncio.gather(*(self._limited(event) for event in due), return_exceptions=True)
        failed = [result for result in results if isinstance(result, BaseException)]
        if failed:
            self._ticks.failed_midway()  # their leases are handed back at the next tick
            away = [f for f in failed if isinstance(f, Exception) and database_away(f)]
            if len(away) == len(failed):
                # the database went away mid-tick: raised to the job's wrapper (``bot.ops.outages``), which says
                # so once per outage and once when it is back, as for every job (an ERROR here came every tick)
                raise away[0]
            for result in failed:
                log.error("PagerDuty event not recorded: %s", result, exc_info=result)
        return sum(1 for result in results if result is True)

    async def _limited(self, event: PageEvent) -> bool:
        async with self._parallel:
            return await self._send(event)

    async def _send(self, event: PageEvent) -> bool:
        what = f"PagerDuty {event.action} of alert {event.alert_id} ({event.pipeline})"
        key = self.routing_key(event.pipeline)
        if key is None:
            log.warning("%s dropped: the catalog no longer pages PagerDuty for %s", what, event.pipeline)
            await self.store.paging.dead(event.id, "the catalog no longer names a PagerDuty service for the pipeline")
            await self._shown(event)
            return False
        try:
            await self._call(key, event)
        except ProviderError as exc:
            if not retryable(exc):
                log.error("%s refused, dropped: %s", what, exc)  # once: it is not tried again
                await self.store.paging.dead(event.id, str(exc))
                await self._shown(event)
                return False
            wait = self._wait(event, exc)
            say = log.warning if event.attempts == 0 else log.debug
            say("%s failed, trying again in %.0f s: %s", what, wait, exc)
            await self.store.paging.retry_later(event.id, not_before=self._later(wait), error=str(exc))
            return False
        except Exception as exc:  # a bug or a surprise: kept and tried again, never lost
            wait = self._wait(event, None)
            log.warning("%s failed (%s), trying again in %.0f s", what, type(exc).__name__, wait)
            await self.store.paging.retry_later(event.id, not_before=self._later(wait), error=type(exc).__name__)
            return False
        await self.store.paging.sent(event.id, now=self.now())
        log.info("%s sent (dedup_key %s)", what, event.dedup_key)
        await self._shown(event)
        return True

    async def _call(self, key: SecretStr, event: PageEvent) -> None:
        if event.action == "acknowledge":
            await self.events.acknowledge(key, event.dedup_key)
        elif event.action == "resolve":
            await self.events.resolve(key, event.dedup_key)
        else:
            body = event.event
            timestamp = body.get("timestamp")
            await self.events.trigger(
                key,
                event.dedup_key,
                str(body.get("summary") or event.pipeline),
                str(body.get("source") or event.pipeline),
                body.get("severity", "error"),
                body.get("custom_details") or None,
                [Link(str(link["href"]), str(link.get("text", ""))) for link in body.get("links") or []],
                timestamp=datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else None,
            )

    async def _shown(self, event: PageEvent) -> None:
        """An event's outcome is known (the trigger's, or when PagerDuty took an acknowledge or a resolve): the
        Slack alert's page line is brought up to date (a nicety: a failure here is logged, the event stays as it
        is)."""
        if self.on_trigger is None:
            return
        try:
            await self.on_trigger(event.alert_id)
        except Exception:
            log.exception("the alert %s could not show its page", event.alert_id)

    def _wait(self, event: PageEvent, exc: ProviderError | None) -> float:
        asked = exc.retry_after if isinstance(exc, ProviderUnavailable) else None
        doubled = self.retry.total_seconds() * 2 ** min(event.attempts, 16)
        if not asked and exc is not None and exc.status_code == 429:
            doubled = max(doubled, self.throttled.total_seconds())
        return min(asked if asked else doubled, self.max_wait.total_seconds())

    def _later(self, seconds: float) -> datetime:
        return self.now() + timedelta(seconds=seconds)
