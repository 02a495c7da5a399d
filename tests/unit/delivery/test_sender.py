"""The deliverer against the fake Slack and a real SQLite store: a post that reached Slack but was never
recorded as sent (the database went away in between, the tick was cancelled) is recorded at the next try by the
same process, found again in Slack by the next one, and never posted twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.sender import ChannelPacer, Deliverer
from bot.emulators.slack import FakeSlack
from bot.ops.metrics import SLACK_CALLS
from bot.store.records import NewRun, OutboxKind, RunOrigin
from bot.store.store import Store

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    yield fake
    await fake.stop()


async def deliverer_with_a_card(store: Store, slack: FakeSlack) -> tuple[Deliverer, int]:
    run = await store.runs.create(
        NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="leads-ods", started_by="U0ALICE", channel="C0GENERAL", provider_run_id="p-1"),
        now=NOW, next_poll_at=None,
    )
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    deliverer = Deliverer(store, client, owner="test", now=lambda: NOW)
    await store.cards.write_run_card(run.id, "C0GENERAL", "leads-ods failed",
                         [{"type": "header", "text": {"type": "plain_text", "text": "leads-ods failed"}}], now=NOW)
    assert await deliverer.tick() == 1
    return deliverer, run.id


def restarted(deliverer: Deliverer) -> Deliverer:
    """The deliverer of the next process, on the same store and Slack."""
    return Deliverer(deliverer.store, deliverer.client, owner=deliverer.owner, now=deliverer.now)


@pytest.mark.parametrize("failure", [asyncio.CancelledError, ConnectionError])
async def test_a_card_slack_answered_but_the_store_did_not_record_is_recorded_without_asking_slack_again(
    sqlite_store: Store, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, failure: type[BaseException]
) -> None:
    """The tick is cancelled (or the database errs) between Slack's answer to the post and its recording. The next
    try records the post it made, even while Slack cannot say what its channel holds (a shutdown's last delivery
    must not depend on that)."""
    clock = [NOW]
    run = await sqlite_store.runs.create(
        NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="leads-ods", started_by="U0ALICE", channel="C0GENERAL", provider_run_id="p-1"),
        now=NOW, next_poll_at=None,
    )
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    deliverer = Deliverer(sqlite_store, client, owner="test", now=lambda: clock[0])
    await sqlite_store.cards.write_run_card(run.id, "C0GENERAL", "leads-ods is queued",
                                [{"type": "header", "text": {"type": "plain_text", "text": "leads-ods is queued"}}],
                                now=NOW)

    async def recording_fails(*args: object, **kwargs: object) -> bool:
        raise failure()

    monkeypatch.setattr(sqlite_store.cards, "posted", recording_fails)
    assert await deliverer.tick() == 0  # Slack has the card; the store does not know
    monkeypatch.undo()
    assert await sqlite_store.unsent() == 1

    slack.fail_next("conversations.history", status=503, times=100)  # Slack cannot say what the channel holds
    clock[0] = NOW + timedelta(seconds=5)  # past the backoff
    assert await deliverer.tick() == 1
    assert await sqlite_store.unsent() == 0
    assert len([c for c in slack.calls_to("chat.postMessage") if c.ok]) == 1
    [message] = slack.messages("C0GENERAL")
    card = await sqlite_store.cards.of_run(run.id)
    assert card is not None and card.ts == message.ts  # the post it made, not another


@pytest.mark.parametrize("kind", [OutboxKind.THREAD, OutboxKind.POST])
async def test_a_message_slack_got_but_the_store_never_recorded_is_not_posted_again(
    sqlite_store: Store, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch, kind: OutboxKind
) -> None:
    deliverer, run_id = await deliverer_with_a_card(sqlite_store, slack)
    await sqlite_store.outbox.enqueue(f"details:{run_id}", kind=kind, run_id=run_id, channel="C0GENERAL",
                               text="details of the failure", now=NOW)

    async def database_away(*args: object, **kwargs: object) -> bool:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(sqlite_store.outbox, "sent", database_away)
    monkeypatch.setattr(sqlite_store.outbox, "retry_later", database_away)
    await deliverer.tick()  # Slack has the message; the store does not know
    monkeypatch.undo()

    deliverer = restarted(deliverer)  # the process died there: its memory of the post with it
    await sqlite_store.release_leases()  # what a start on SQLite does
    assert await deliverer.tick() == 1  # found, not sent again
    posts = [c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("text") == "details of the failure"]
    assert len(posts) == 1
    # found in Slack: the restarted deliverer posted nothing itself
    assert deliverer.metrics.value(SLACK_CALLS, {"method": "chat.postMessage", "outcome": "ok"}) == 0
    assert await sqlite_store.unsent() == 0
    looked = "conversations.replies" if kind == "thread" else "conversations.history"
    assert slack.calls_to(looked), f"the deliverer did not look in {looked}"


async def test_when_slack_cannot_say_whether_it_got_a_message_the_deliverer_waits_rather_than_repost(
    sqlite_store: Store, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    deliverer, run_id = await deliverer_with_a_card(sqlite_store, slack)
    clock = [NOW]
    deliverer.now = lambda: clock[0]
    await sqlite_store.outbox.enqueue(f"details:{run_id}", kind=OutboxKind.THREAD, run_id=run_id, text="details", now=NOW)

    async def database_away(*args: object, **kwargs: object) -> bool:
        raise ConnectionError("the database went away")

    monkeypatch.setattr(sqlite_store.outbox, "sent", database_away)
    monkeypatch.setattr(sqlite_store.outbox, "retry_later", database_away)
    await deliverer.tick()
    monkeypatch.undo()

    deliverer = restarted(deliverer)  # the process died there: its memory of the post with it
    deliverer.now = lambda: clock[0]
    await sqlite_store.release_leases()
    slack.fail_next("conversations.replies", status=503, times=1)
    assert await deliverer.tick() == 0  # cannot look: no second post, try again later
    clock[0] = NOW + timedelta(seconds=5)
    assert await deliverer.tick() == 1
    assert len([c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("text") == "details"]) == 1


async def test_a_message_many_runs_share_is_edited_at_most_every_gap_and_shows_the_latest(
    sqlite_store: Store, slack: FakeSlack
) -> None:
    clock = [NOW]
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    deliverer = Deliverer(sqlite_store, client, owner="test", now=lambda: clock[0], edit_gap=5.0)

    async def show(text: str) -> None:
        await sqlite_store.cards.write("alert:C0GENERAL:1", "C0GENERAL", text,
                                       [{"type": "section", "text": {"type": "mrkdwn", "text": text}}], now=clock[0])

    await show("2 pipeline failures")
    assert await deliverer.tick() == 1  # posted
    for n in (3, 4, 5):  # more failures land within the gap: nothing is edited yet
        await show(f"{n} pipeline failures")
        clock[0] += timedelta(seconds=1)
        assert await deliverer.tick() == 0
    clock[0] += timedelta(seconds=2)
    assert await deliverer.tick() == 1  # one edit, showing the latest
    [message] = slack.messages("C0GENERAL")
    assert message.text == "5 pipeline failures" and len(message.edits) == 1
    assert [c.params["text"] for c in slack.calls_to("chat.update")] == ["5 pipeline failures"]

    # a run's own card is edited at every change
    _, run_id = await deliverer_with_a_card(sqlite_store, slack)
    card = [{"type": "header", "text": {"type": "plain_text", "text": "leads-ods succeeded"}}]
    await sqlite_store.cards.write_run_card(run_id, "C0GENERAL", "leads-ods succeeded", card, now=clock[0])
    assert await deliverer.tick() == 1


async def test_a_note_that_calls_owners_goes_before_the_channels_card_posts(
    sqlite_store: Store, slack: FakeSlack
) -> None:
    """Found by the seventh pass: a workflow's "stopped … cc <@owner>" note waited 4.5-45 s behind the cards of one
    channel (48 in the replica runs). Each tick sent the cards first, and their first posts took the channel's pace
    (a post a second): the note, claimed after them, found no pace left and was put off again at every tick until
    the cards were all posted. A note that mentions someone (an alert, a workflow stopped) now goes first."""
    frozen = [0.0]
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    deliverer = Deliverer(sqlite_store, client, owner="test", now=lambda: NOW, pacer=ChannelPacer(clock=lambda: frozen[0]))
    for i in range(6):
        run = await sqlite_store.runs.create(
            NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={},
                   origin=RunOrigin.WORKFLOW, pipeline="leads-ods", channel="C0GENERAL", provider_run_id=f"p-{i}"),
            now=NOW, next_poll_at=None,
        )
        await sqlite_store.cards.write_run_card(run.id, "C0GENERAL", f"step {i} running",
                                                [{"type": "header", "text": {"type": "plain_text", "text": "step"}}],
                                                now=NOW)
    note = "🛑 daily-sales stopped: its step transform was given up. cc <@U0BOB>"
    await sqlite_store.outbox.enqueue("stopped:1", kind=OutboxKind.POST, channel="C0GENERAL", text=note, now=NOW)

    await deliverer.tick()  # the channel's pace allows 3 posts at once, none after until time passes
    assert [m.text for m in slack.messages("C0GENERAL") if m.text == note], "the note waited behind the cards"
    assert len(slack.messages("C0GENERAL")) == 3  # the pace still holds: two cards went, the others wait


async def test_a_runs_messages_keep_their_order_when_the_first_is_put_off(sqlite_store: Store, slack: FakeSlack) -> None:
    """Slack answers 500 to the first of a run's two messages: it is tried again in 2 s; the second, put off "in
    order", must not be claimed and posted before it at the next tick."""
    clock = [NOW]
    deliverer, run_id = await deliverer_with_a_card(sqlite_store, slack)
    deliverer.now = lambda: clock[0]
    deliverer.pacer = ChannelPacer(clock=lambda: (clock[0] - NOW).total_seconds())
    for n, text in enumerate(("first: the run failed", "second: <@U0BOB> retried it")):
        await sqlite_store.outbox.enqueue(f"note:{run_id}:{n}", kind=OutboxKind.POST, run_id=run_id,
                                          channel="C0GENERAL", text=text, now=NOW)
    slack.fail_next("chat.postMessage", status=500)
    await deliverer.tick()
    for step in range(1, 121):  # the ticks of the next minute
        clock[0] = NOW + timedelta(seconds=step / 2)
        await deliverer.tick()
    posted = [c.params.get("text") for c in slack.calls_to("chat.postMessage") if c.ok]
    assert posted[-2:] == ["first: the run failed", "second: <@U0BOB> retried it"], posted
    assert await sqlite_store.unsent() == 0


@pytest.mark.parametrize(
    ("posting", "archived", "cause"),
    [
        ("admins", False, "its posting permissions keep me out"),
        ("read_only", False, "it is read-only"),
        ("threads_only", False, "it takes replies in threads only"),
        ("anyone", True, "it is archived"),
    ],
    ids=["restricted_action", "read_only", "thread_only", "is_archived"],
)
async def test_a_channel_that_refuses_the_bots_posts_sends_everything_to_the_fallback_with_the_cause(
    sqlite_store: Store, slack: FakeSlack, posting: str, archived: bool, cause: str
) -> None:
    """Issue 11's lows (found by the tenth pass): a channel whose posting permissions keep the bot out (only admins
    post, read-only, threads only) answered ``restricted_action…``, which was not a channel problem: the card was
    given up, its thread replies (the failure's details, the owners' mention) waited for ever, an alert posted there
    was dead; one ERROR line each, nothing in the fallback channel. The fake Slack did not refuse posts to an
    archived channel either. Now each is handled as a missing channel: everything goes to the fallback channel,
    which is told once why and what fixes it."""
    slack.add_channel("C0LOCKED", "locked", posting=posting, archived=archived)
    clock = [NOW]
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    deliverer = Deliverer(sqlite_store, client, owner="test", now=lambda: clock[0], fallback="C0ALERTS",
                          pacer=ChannelPacer(clock=lambda: (clock[0] - NOW).total_seconds()))
    run = await sqlite_store.runs.create(
        NewRun(provider="rivery", connection="rivery-us", job={"river_id": "r1"}, parameters={}, origin=RunOrigin.SLACK,
               pipeline="leads-ods", started_by="U0ALICE", channel="C0LOCKED", provider_run_id="p-1"),
        now=NOW, next_poll_at=None,
    )
    await sqlite_store.cards.write_run_card(run.id, "C0LOCKED", "leads-ods failed",
                                            [{"type": "header", "text": {"type": "plain_text", "text": "failed"}}],
                                            now=NOW)
    await sqlite_store.outbox.enqueue(f"details:{run.id}", kind=OutboxKind.THREAD, run_id=run.id,
                                      text="Details: table missing. cc <@U0BOB>", now=NOW)
    await sqlite_store.outbox.enqueue("alert:orders", kind=OutboxKind.POST, channel="C0LOCKED",
                                      text="orders failed. cc <@U0BOB>", now=NOW)
    for step in range(1, 41):  # the ticks of the next 20 s
        clock[0] = NOW + timedelta(seconds=step / 2)
        await deliverer.tick()

    assert slack.messages("C0LOCKED", top_level=False) == []
    posted = {m.text: m for m in slack.messages("C0ALERTS")}
    card = posted.get("leads-ods failed")
    assert card is not None, list(posted)
    assert [m.text for m in slack.messages("C0ALERTS", thread_ts=card.ts)] == ["Details: table missing. cc <@U0BOB>"]
    assert "orders failed. cc <@U0BOB>" in posted
    [notice] = [text for text in posted if "could not post to <#C0LOCKED>" in text]
    assert cause in notice
    assert await sqlite_store.unsent() == 0  # nothing waits, nothing was given up: all of it reached someone


async def test_a_reply_in_a_channel_that_takes_no_thread_replies_is_posted_in_the_channel(
    sqlite_store: Store, slack: FakeSlack
) -> None:
    """A channel set to take no thread replies answers ``restricted_action_non_threadable_channel`` to a reply under
    a card posted there: the reply goes in the channel itself, not dropped."""
    deliverer, run_id = await deliverer_with_a_card(sqlite_store, slack)
    slack.channels["C0GENERAL"].posting = "no_threads"
    await sqlite_store.outbox.enqueue(f"details:{run_id}", kind=OutboxKind.THREAD, run_id=run_id,
                                      text="Details: table missing. cc <@U0BOB>", now=NOW)
    await deliverer.tick()
    await deliverer.tick()
    assert "Details: table missing. cc <@U0BOB>" in [m.text for m in slack.messages("C0GENERAL")]
    assert await sqlite_store.unsent() == 0


@pytest.mark.parametrize(
    ("header", "waited"), [("nan", 1.0), ("inf", 1.0), ("1e+20", 1.0), ("86400", 300.0), ("7", 7.0)]
)
async def test_a_retry_after_from_slack_that_is_no_number_delays_the_post_sanely(
    sqlite_store: Store, slack: FakeSlack, header: str, waited: float
) -> None:
    """A 429 whose ``Retry-After`` is ``nan``, ``inf`` or ``1e+20`` (whatever answers at SLACK_API_URL: a proxy, a
    gateway) was read with ``float()``: the message's next try became ``timedelta(seconds=nan)``, a ValueError out
    of the delivery tick, every tick, the message never sent (fourteenth pass (b)'s low). Now such a header is no
    header (1 s), a day is capped at 5 minutes, and the message goes out."""
    deliverer, run_id = await deliverer_with_a_card(sqlite_store, slack)
    await sqlite_store.outbox.enqueue(f"note:{run_id}", kind=OutboxKind.POST, run_id=run_id, channel="C0GENERAL",
                                      text="the run failed", now=NOW)
    slack.fail_next("chat.postMessage", retry_after=header)
    await deliverer.tick()  # refused, 429
    later = [NOW + timedelta(seconds=waited - 0.5), NOW + timedelta(seconds=waited + 0.5)]
    deliverer.now = lambda: later[0]
    await deliverer.tick()
    assert not [c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("text") == "the run failed"]
    deliverer.now = lambda: later[1]
    deliverer.pacer = ChannelPacer(clock=lambda: 10_000.0)
    await deliverer.tick()
    assert [c for c in slack.calls_to("chat.postMessage") if c.ok and c.params.get("text") == "the run failed"]
    assert await sqlite_store.unsent() == 0
