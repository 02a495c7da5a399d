"""Sends what the store says Slack should show: card posts and updates, thread replies, notices.

- Intent first: a card's content and every message are in the store before any Slack call, and
  marked sent only after Slack confirmed; a crash in between means one more try, never a loss.
- A post whose answer we never saw (the process died mid-call) is looked up in the channel's
  history by its metadata before posting again, so it is not posted twice. A post Slack answered but
  the store failed to record (the database errored, the tick was cancelled) is remembered in memory and
  recorded at the next try without asking Slack again.
- Posts are paced per channel (Slack allows about one per second); 429 waits for ``Retry-After``,
  5xx and network errors back off; messages of one run go out in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.delivery.answers import REASON_LIMIT, slack_error
from bot.delivery.steps import StepCompletions
from bot.models import Json, JsonValue
from bot.ops.logs import run_context
from bot.ops.metrics import SLACK_CALLS, SLACK_RATE_LIMITED, Metrics
from bot.ops.redact import PROCESS
from bot.ops.retry_after import parse_retry_after
from bot.ops.ticks import TickGuard
from bot.store import keys
from bot.store.away import database_away
from bot.store.records import CardRecord, OutboxItem, OutboxKind
from bot.store.store import Store

__all__ = ["ChannelPacer", "Deliverer"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]
Linked = Callable[[str], Awaitable[None]]

# a channel that takes no post from the bot, for good: its messages move to the fallback channel, which is told why
# and what fixes it once. The restricted_action family is a channel's posting permissions (Slack's answers to
# chat.postMessage): admins only, read-only, threads only
CHANNEL_PROBLEMS = {
    "not_in_channel": "I am not a member of it: invite me with `/invite @pipeline-bot`",
    "channel_not_found": "it does not exist (or I cannot see it)",
    "is_archived": "it is archived: unarchive it, or change the channel in the catalog",
    "restricted_action": (
        "its posting permissions keep me out (only some people, such as admins, may post): let apps post there "
        "(channel settings, *Posting permissions*), or change the channel in the catalog"
    ),
    "restricted_action_read_only_channel": (
        "it is read-only: let apps post there (channel settings, *Posting permissions*), or change the channel in "
        "the catalog"
    ),
    "restricted_action_thread_only_channel": (
        "it takes replies in threads only: let apps post there (channel settings, *Posting permissions*), or change "
        "the channel in the catalog"
    ),
}
#: the longest wait a ``Retry-After`` from Slack is taken for: Slack asks for seconds; a larger value (or whatever
#: answers at SLACK_API_URL) never leaves a card or message waiting in the store for more than this before a new try
SLACK_RETRY_AFTER_MAX = 300.0
CARD_EVENT = "pipeline_bot_card"
MESSAGE_EVENT = "pipeline_bot_message"
# Slack answers these for good: retrying cannot help, an operator has to act
PERMANENT = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_blocks",
        "msg_too_long",
        "no_text",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "cant_update_message",
        "edit_window_closed",
        "invalid_arguments",
    }
)


@dataclass
class ChannelPacer:
    """A token bucket per channel: ``rate`` posts a second, bursts of ``burst``."""

    rate: float = 1.0
    burst: int = 3
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def wait_time(self, channel: str) -> float:
        tokens, _ = self._state(channel)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, channel: str) -> None:
        tokens, at = self._state(channel)
        self._buckets[channel] = (tokens - 1, at)

    def _state(self, channel: str) -> tuple[float, float]:
        now = self.clock()
        tokens, at = self._buckets.get(channel, (float(self.burst), now))
        tokens = min(self.burst, tokens + (now - at) * self.rate)
        self._buckets[channel] = (tokens, now)
        return tokens, now


class Deliverer:
    def __init__(
        self,
        store: Store,
        client: AsyncWebClient,
        *,
        owner: str,
        now: Now,
        pacer: ChannelPacer | None = None,
        fallback: str | None = None,
        metrics: Metrics | None = None,
        batch: int = 100,
        lease: timedelta = timedelta(seconds=60),
        edit_gap: float = 5.0,
        on_linked: Linked | None = None,
    ) -> None:
        self.store = store
        #: a card or an alert got its permalink: the messages linking to it are rewritten (``Outcomes.linked``)
        self.on_linked = on_linked
        self.client = client
        self.owner = owner
        self.now = now
        self.pacer = pacer or ChannelPacer()
        self.fallback = fallback
        self.metrics = metrics or Metrics()
        self.batch = batch
        self.lease = lease
        self.edit_gap = edit_gap
        # posts Slack answered whose recording failed: card id → (ts, channel, version shown), item id → ts
        self._unrecorded_cards: dict[int, tuple[str, str, int]] = {}
        self._unrecorded_items: dict[int, str] = {}
        self._ticks = TickGuard(lambda: self.store.release_delivery_leases(self.owner))
        self._steps = StepCompletions(store, self._call, now, self._retry_wait, self._backoff)

    async def tick(self) -> int:
        """Send what is due. Returns how many Slack calls succeeded. Ticks never overlap (the scheduler's and the
        one at shutdown); each waits for every send it started, even when some fail (``TickGuard``)."""
        return await self._ticks.run(self._tick)

    async def _tick(self) -> int:
        cards = await self.store.cards.claim(self.owner, now=self.now(), limit=self.batch, lease=self.lease)
        items = await self.store.outbox.claim(self.owner, now=self.now(), limit=self.batch, lease=self.lease)
        # different channels in parallel, one channel in order
        by_channel: dict[str, tuple[list[CardRecord], list[OutboxItem]]] = {}
        for card in cards:
            by_channel.setdefault(card.channel, ([], []))[0].append(card)
        for item in items:
            by_channel.setdefault(item.thread_channel or item.channel or "", ([], []))[1].append(item)
        results = await asyncio.gather(*(self._channel(*work) for work in by_channel.values()), return_exceptions=True)
        return self._count(results)

    async def _channel(self, cards: list[CardRecord], items: list[OutboxItem]) -> int:
        """One channel's cards and messages. Card posts take the channel's pace (a post a second): with dozens of
        cards in a channel (a workflow's steps, a storm) a message sent after them was put off tick after tick
        until the last card was posted (45 s in a replica run). A message that calls people (an alert, a
        workflow stopped: it mentions its owners) goes first; other messages keep their place after the cards."""
        if any(_calls_people(item) for item in items):
            return await self._items(items) + await self._cards(cards)
        return await self._cards(cards) + await self._items(items)

    def _count(self, results: list[int | BaseException]) -> int:
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:  # the database went away mid-tick, most likely: the next tick hands their leases back
            self._ticks.failed_midway()
            if all(database_away(f) for f in failed):  # one line, no traceback: the next ticks say it once more
                log.warning("%d of %d deliveries failed: the database is away (%s); they are tried again",
                            len(failed), len(results), type(failed[0]).__name__)
                return sum(r for r in results if not isinstance(r, BaseException))
            log.error("%d of %d deliveries failed", len(failed), len(results), exc_info=failed[0])
        return sum(r for r in results if not isinstance(r, BaseException))

    # -- cards ------------------------------------------------------------------------------

    def _lease_running_out(self, claimed: float) -> bool:
        """Half the lease gone: hand the rest back rather than risk another replica sending it too."""
        return time.monotonic() - claimed > self.lease.total_seconds() / 2

    async def _cards(self, cards: list[CardRecord]) -> int:
        sent = 0
        claimed = time.monotonic()
        for i, card in enumerate(cards):
            if self._lease_running_out(claimed):
                for later in cards[i:]:
                    await self.store.cards.retry_later(later.id, not_before=self.now(), error="")
                break
            sent += await self._card(card)
        return sent

    async def _card(self, card: CardRecord) -> int:
        with run_context(card.run_id):
            return await self._send_card(card)

    async def _send_card(self, card: CardRecord) -> int:
        try:
            if card.ts is None:
                known = self._unrecorded_cards.get(card.id)  # ours, answered: only the recording is left to do
                if known is None:
                    known = await self._post_card(card)
                    if known is None:
                        return 0
                ts, channel, version = known
                if not await self.store.cards.posted(
                    card.id, version, ts, channel=channel, next_edit_at=self._next_edit(card)
                ):
                    await self._delete_duplicate(channel, ts)
                else:
                    await self._link(card.key, channel, ts)
                del self._unrecorded_cards[card.id]
            else:
                self._unrecorded_cards.pop(card.id, None)  # recorded meanwhile (another replica found it)
                await self._call("chat.update", channel=card.channel, ts=card.ts, text=card.text, blocks=card.blocks)
                await self.store.cards.sent(card.id, card.version, None, next_edit_at=self._next_edit(card))
            return 1
        except SlackApiError as exc:
            await self._failed_card(card, exc)
        except Exception as exc:  # network, timeouts: try again later
            log.warning("card %s not delivered: %s", card.id, _reason(exc), extra={"run_id": card.run_id})
            await self.store.cards.retry_later(card.id, not_before=self._backoff(card.attempts), error=_reason(exc))
        return 0

    async def _post_card(self, card: CardRecord) -> tuple[str, str, int] | None:
        """The card's first post (or the one an earlier try left in Slack): its ts, channel and the version it shows,
        remembered until recorded. None when the channel's pace says later."""
        if not await self._paced(
            card.channel,
            lambda: self.store.cards.retry_later(
                card.id, not_before=self._later(self.pacer.wait_time(card.channel)), error="paced"
            ),
        ):
            return None
        ts, channel = await self._find(card.channel, CARD_EVENT, "card", card.id, card.attempting_since)
        if ts is None:
            await self.store.cards.attempt(card.id, now=self.now())
            self.pacer.take(card.channel)
            answer = await self._call(
                "chat.postMessage",
                channel=card.channel,
                text=card.text,
                blocks=card.blocks,
                unfurl_links=False,
                metadata={"event_type": CARD_EVENT, "event_payload": {"card": card.id, "run": card.run_id}},
            )
            ts, channel = answer["ts"], answer.get("channel", card.channel)
        self._unrecorded_cards[card.id] = (ts, channel, card.version)
        return ts, channel, card.version

    async def _failed_card(self, card: CardRecord, exc: SlackApiError) -> None:
        error = slack_error(exc.response)
        if error == "message_not_found" and card.ts is not None:
            log.warning("card of run %s was deleted in Slack; posting it again", card.run_id)
            await self.store.cards.lost(card.id)
            return
        wait = self._retry_wait(exc)
        if card.ts is None and await self._reroute(card.channel, error):
            await self.store.cards.move(card.id, self.fallback or card.channel)
            return
        if wait is None:
            log.error("Slack refused the card of run %s: %s", card.run_id, error or _reason(exc),
                      extra={"run_id": card.run_id})
            await self.store.cards.given_up(card.id, card.version, error or _reason(exc))
            return
        await self.store.cards.retry_later(card.id, not_before=self._later(wait), error=error or _reason(exc))

    # -- outbox -----------------------------------------------------------------------------

    async def _items(self, items: list[OutboxItem]) -> int:
        sent = 0
        claimed = time.monotonic()
        for i, item in enumerate(items):
            ok = not self._lease_running_out(claimed) and await self._item(item)
            if not ok:  # keep the order: the rest of this target waits for the next tick
                for later in items[i + 1 :]:
                    await self.store.outbox.retry_later(later.id, not_before=self.now(), error="waiting in order")
                break
            sent += 1
        return sent

    async def _item(self, item: OutboxItem) -> bool:
        with run_context(item.run_id):
            return await self._send_item(item)

    async def _send_item(self, item: OutboxItem) -> bool:
        if item.kind == OutboxKind.FUNCTION:
            return await self._steps.send(item)
        channel = item.thread_channel if item.kind == OutboxKind.THREAD else item.channel
        if channel is None:
            await self.store.outbox.dead(item.id, "no channel to post to")
            return True
        try:
            ts = self._unrecorded_items.get(item.id)  # ours, answered: only the recording is left to do
            if ts is None:
                if not await self._paced(
                    channel,
                    lambda: self.store.outbox.retry_later(
                        item.id, not_before=self._later(self.pacer.wait_time(channel)), error="paced"
                    ),
                ):
                    return False
                thread = item.thread_ts if item.kind == OutboxKind.THREAD else None
                ts, _ = await self._find(channel, MESSAGE_EVENT, "key", item.key, item.attempting_since, thread=thread)
            if ts is None:
                await self.store.outbox.attempt(item.id, now=self.now())
                self.pacer.take(channel)
                kwargs: Json = {"thread_ts": item.thread_ts} if item.kind == OutboxKind.THREAD else {}
                answer = await self._call(
                    "chat.postMessage",
                    channel=channel,
                    text=item.text,
                    blocks=item.blocks,
                    unfurl_links=False,
                    metadata={"event_type": MESSAGE_EVENT, "event_payload": {"key": item.key}},
                    **kwargs,
                )
                ts = answer["ts"]
            if ts:
                self._unrecorded_items[item.id] = ts
            if not await self.store.outbox.sent(item.id, ts, now=self.now()) and ts:
                await self._delete_duplicate(channel, ts)
            self._unrecorded_items.pop(item.id, None)
            return True
        except SlackApiError as exc:
            error = slack_error(exc.response)
            wait = self._retry_wait(exc)
            if item.kind == OutboxKind.POST and await self._reroute(channel, error):
                await self.store.outbox.move(item.id, self.fallback or channel)
                return False
            if item.kind == OutboxKind.THREAD and await self._out_of_thread(item, channel, error):
                return False
            if wait is None:
                log.error(
                    "Slack refused message %s: %s", item.key, error or _reason(exc), extra={"run_id": item.run_id}
                )
                await self.store.outbox.dead(item.id, error or _reason(exc))
                return True
            await self.store.outbox.retry_later(item.id, not_before=self._later(wait), error=error or _reason(exc))
        except Exception as exc:
            log.warning("message %s not delivered: %s", item.key, _reason(exc), extra={"run_id": item.run_id})
            await self.store.outbox.retry_later(item.id, not_before=self._backoff(item.attempts), error=_reason(exc))
        return False

    # -- helpers ----------------------------------------------------------------------------

    async def _call(self, method: str, **kwargs: JsonValue) -> AsyncSlackResponse:
        """One Web API call, counted by method and outcome."""
        try:
            answer = await self.client.api_call(method, json=kwargs)
        except SlackApiError as exc:
            error = slack_error(exc.response) if exc.response is not None else "error"
            self.metrics.inc(SLACK_CALLS, {"method": method, "outcome": error or "error"})
            raise
        except Exception:
            self.metrics.inc(SLACK_CALLS, {"method": method, "outcome": "unreachable"})
            raise
        self.metrics.inc(SLACK_CALLS, {"method": method, "outcome": "ok"})
        return answer

    async def _link(self, key: str, channel: str, ts: str) -> None:
        """A run's card or an alert, just posted: its permalink stored for the messages that link to it (a card
        to its alert, an alert to its card and its retries' cards). Best effort: without one they show no link."""
        if keys.run_of_card(key) is None and not keys.is_alert_group(key):
            return
        try:
            answer = await self.client.chat_getPermalink(channel=channel, message_ts=ts)
            self.metrics.inc(SLACK_CALLS, {"method": "chat.getPermalink", "outcome": "ok"})
            await self.store.cards.set_permalink(key, str(answer["permalink"]))
            if self.on_linked is not None:
                await self.on_linked(key)
        except Exception as exc:
            self.metrics.inc(SLACK_CALLS, {"method": "chat.getPermalink", "outcome": "error"})
            log.warning("no permalink for %s: %s", key, _reason(exc))

    async def _delete_duplicate(self, channel: str, ts: str) -> None:
        """Another replica posted the same message a moment before us (its lease ran out mid-call):
        take ours back, so the channel shows it once."""
        log.warning("message %s in %s duplicated another replica's post: deleting it", ts, channel)
        try:
            await self._call("chat.delete", channel=channel, ts=ts)
        except Exception as exc:
            log.error("could not delete the duplicate %s in %s: %s", ts, channel, exc)

    async def _reroute(self, channel: str, error: str) -> bool:
        """A channel that is gone or keeps the bot out: say so once in the fallback channel, and move
        the message there rather than drop it. False when there is nowhere else to go."""
        if error not in CHANNEL_PROBLEMS or not self.fallback or self.fallback.lstrip("#") == channel.lstrip("#"):
            return False
        log.warning("cannot post to %s (%s): using %s", channel, error, self.fallback)
        what = CHANNEL_PROBLEMS[error]
        shown = f"<#{channel}>" if channel[:1] in ("C", "G") else channel.replace("<", "&lt;").replace(">", "&gt;")
        text = (
            f"⚠️ I could not post to {shown}: {what}. Its messages come here until it is fixed "
            "(or change the channel in the catalog)."
        )
        await self.store.outbox.enqueue(
            keys.channel_problem(channel),
            kind=OutboxKind.POST,
            channel=self.fallback,
            text=text,
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            now=self.now(),
        )
        return True

    async def _out_of_thread(self, item: OutboxItem, channel: str, error: str) -> bool:
        """A thread reply its channel refuses for good (the card was posted before the channel changed): posted on
        its own, in the channel when only replies are refused, else in the fallback channel. False: nowhere."""
        if error == "restricted_action_non_threadable_channel":
            log.warning("%s takes no thread replies: message %s posted in the channel", channel, item.key)
            await self.store.outbox.out_of_thread(item.id, channel)
            return True
        if await self._reroute(channel, error):
            await self.store.outbox.out_of_thread(item.id, self.fallback or channel)
            return True
        return False

    async def _paced(self, channel: str, defer: Callable[[], Awaitable[object]]) -> bool:
        if self.pacer.wait_time(channel) > 0:
            await defer()
            return False
        return True

    async def _find(
        self,
        channel: str,
        event_type: str,
        field_name: str,
        value: object,
        since: datetime | None,
        *,
        thread: str | None = None,
    ) -> tuple[str | None, str]:
        """After a crash mid-post: did the post reach Slack? Look for our metadata in the channel, or in the
        thread for a reply (a channel's history does not hold replies)."""
        if since is None:
            return None, channel
        query: Json = {
            "channel": channel, "oldest": f"{since.timestamp() - 5:.6f}", "include_all_metadata": True, "limit": 200
        }
        read: Callable[..., Awaitable[AsyncSlackResponse]] = self.client.conversations_history
        if thread is not None:
            read, query["ts"] = self.client.conversations_replies, thread
        cursor = ""
        for _ in range(10):  # 2,000 messages since the attempt: more than any channel gets in a lease
            try:
                answer = await read(**query, cursor=cursor or None)
            except SlackApiError as exc:
                if self._retry_wait(exc) is not None:
                    raise  # Slack busy or down: ask again later rather than risk a second post
                # no history scope, not in the channel: post again (at least once)
                log.warning("cannot check %s for an earlier post: %s", channel, exc)
                return None, channel
            messages: list[Json] = answer.get("messages") or []
            for message in messages:
                meta = message.get("metadata") or {}
                if meta.get("event_type") == event_type and (meta.get("event_payload") or {}).get(field_name) == value:
                    return str(message["ts"]), str(answer.get("channel", channel))
            cursor = str((answer.get("response_metadata") or {}).get("next_cursor") or "")
            if not answer.get("has_more") or not cursor:
                break
        return None, channel

    def _retry_wait(self, exc: SlackApiError) -> float | None:
        """Seconds to wait before retrying, or None when Slack's answer is final."""
        response = exc.response
        status = getattr(response, "status_code", 200)
        error = slack_error(response)
        if status == 429 or error == "ratelimited":
            self.metrics.inc(SLACK_RATE_LIMITED)
            header = (getattr(response, "headers", None) or {}).get("Retry-After") or (
                getattr(response, "headers", None) or {}
            ).get("retry-after")
            wait = parse_retry_after(header)  # digits or a date; "nan", "inf", "1e20" are no header
            return min(max(wait, 1.0), SLACK_RETRY_AFTER_MAX) if wait is not None else 1.0
        if status >= 500 or error in ("internal_error", "fatal_error", "service_unavailable", "request_timeout"):
            return 2.0
        if error in PERMANENT:
            return None
        if error in ("invalid_auth", "not_authed", "token_revoked", "account_inactive"):
            return 60.0  # configuration problem: keep everything until someone fixes the token
        return None

    def _next_edit(self, card: CardRecord) -> datetime | None:
        """A run's card shows each change at once (they come a poll apart). A message many runs share (an alert
        listing a storm's failures, a workflow's card) is edited at most every ``edit_gap`` seconds: the edit
        shows the latest content, and chat.update's rate limit (about 50 a minute) is not spent on versions
        nobody had time to read."""
        if keys.is_run_card(card.key) or self.edit_gap <= 0:
            return None
        return self._later(self.edit_gap)

    def _later(self, seconds: float) -> datetime:
        return self.now() + timedelta(seconds=seconds)

    def _backoff(self, attempts: int) -> datetime:
        return self._later(min(2.0 ** min(attempts, 8), 300.0))


def _calls_people(item: OutboxItem) -> bool:
    """A message that mentions someone (``<@U…>``, ``<!subteam^S…>``, ``<!here>``): somebody is being called."""
    return "<@" in item.text or "<!" in item.text


def _reason(exc: Exception) -> str:
    """What went wrong, never empty (a timeout's text is), redacted: it is kept in the store as well as logged, and
    a gateway in front of the Slack API whose error page shows the request put ``Authorization: Bearer xoxb-…`` in
    a ``SlackApiError``'s text."""
    return PROCESS.head(str(exc), REASON_LIMIT) or type(exc).__name__
