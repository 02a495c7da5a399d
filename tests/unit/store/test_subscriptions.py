"""The subscriptions family on SQLite and PostgreSQL: one row per subject and channel (subscribing again changes
the level), what covers a run (its pipeline, a tag, its provider), removal, and "notify me"."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.store.store import Store
from bot.store.subscriptions import Level, SubjectKind

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


async def test_subscribing_again_changes_the_level_and_matching_covers_pipeline_tag_and_provider(store: Store) -> None:
    subs = store.subscriptions
    first, created = await subs.add(
        SubjectKind.PIPELINE, "orders", channel="C0OPS", level=Level.FAILURES, user_id="U0ALICE", now=T0
    )
    assert created and first.level is Level.FAILURES
    again, created = await subs.add(
        SubjectKind.PIPELINE, "orders", channel="C0OPS", level=Level.ALL, user_id="U0BOB", now=T0
    )
    assert not created and again.id == first.id and again.level is Level.ALL and again.created_by == "U0ALICE"
    await subs.add(SubjectKind.TAG, "finance", channel="C0FIN", level=Level.FAILURES, user_id="U0BOB", now=T0)
    await subs.add(SubjectKind.PROVIDER, "rivery", channel="C0OPS", level=Level.ALL, user_id="U0BOB", now=T0)
    await subs.add(SubjectKind.PIPELINE, "budget", channel="C0OPS", level=Level.ALL, user_id="U0BOB", now=T0)

    covering = await subs.matching("orders", ("finance", "eu"), "rivery")
    assert [(s.kind, s.target, s.channel) for s in covering] == [
        (SubjectKind.PIPELINE, "orders", "C0OPS"),
        (SubjectKind.TAG, "finance", "C0FIN"),
        (SubjectKind.PROVIDER, "rivery", "C0OPS"),
    ]
    assert [s.target for s in await subs.matching("other", (), "tailer")] == []
    assert [s.target for s in await subs.listed(user_id="U0ALICE")] == ["orders"]
    assert len(await subs.listed()) == 4

    removed = await subs.remove(SubjectKind.TAG, "finance", channel="C0FIN")
    assert removed is not None and removed.target == "finance"
    assert await subs.remove(SubjectKind.TAG, "finance", channel="C0FIN") is None
    assert await subs.remove_id(first.id) and not await subs.remove_id(first.id)
    assert await subs.get(first.id) is None


async def test_notify_me_is_a_persons_own_and_not_a_channel_subscription(store: Store) -> None:
    subs = store.subscriptions
    assert not await subs.notifies("U0BOB")
    assert await subs.notify_me("U0BOB", on=True, now=T0)
    assert not await subs.notify_me("U0BOB", on=True, now=T0)  # already on
    assert await subs.notifies("U0BOB") and not await subs.notifies("U0ALICE")
    assert await subs.listed() == []  # not listed among the channels' subscriptions
    [mine] = await subs.listed_started("U0BOB")
    assert mine.kind is SubjectKind.STARTED and mine.channel == "U0BOB"
    assert await subs.notify_me("U0BOB", on=False, now=T0)
    assert not await subs.notify_me("U0BOB", on=False, now=T0)
    assert not await subs.notifies("U0BOB")
