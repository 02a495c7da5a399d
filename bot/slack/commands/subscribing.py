"""``subscribe``, ``unsubscribe``, ``subscriptions`` and ``notify me``: the Slack side. Where a subscription may
post is checked with Slack (``channels.postable_channel``, as for ``watch``, with the bot in the channel even when
it is public); who may is the service's (``SubscriptionService``)."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import InvalidRequest
from bot.models import JsonValue
from bot.service.permissions import Actor
from bot.slack.blocks.replies import notice
from bot.slack.blocks.subscriptions import subscriptions_list
from bot.slack.commands.channels import channel_id_of, postable_channel
from bot.slack.commands.model import NotifyMe, Subscribe, Subscriptions, Unsubscribe
from bot.slack.context import Services
from bot.slack.text import code, escape, named
from bot.store.subscriptions import Level, SubjectKind

__all__ = ["notify_me", "subscribe", "subscriptions", "unsubscribe"]

Reply = tuple[str, list[JsonValue]]


async def subscribe(services: Services, actor: Actor, client: AsyncWebClient, command: Subscribe) -> Reply:
    subscriptions = services.subscriptions
    subject = subscriptions.subject(command.subject)
    # the bot must be in it, even a public one: a subscription is a channel's choice its members can see
    channel = await postable_channel(client, await _channel_id(client, command.channel, actor), member_needed=True)
    level = Level(command.level)
    _, created = await subscriptions.subscribe(actor, subject, channel=channel, level=level)
    what = "each failure alert" if level is Level.FAILURES else "each failure alert and a note when any run ends"
    covered = "" if subject.kind is SubjectKind.PIPELINE else f" ({len(subject.pipelines)} pipelines now)"
    said = "Subscribed" if created else "Subscription changed"
    return notice(
        f"🔔 {said}: <#{channel}> gets {what} of {subject.kind.value} {named(subject.name)}{covered}, besides "
        f"the catalog's own channel. {code(services.command + ' unsubscribe ' + subject.name)} stops it.",
        formatted=True,
    )


async def unsubscribe(services: Services, actor: Actor, client: AsyncWebClient, command: Unsubscribe) -> Reply:
    subscriptions = services.subscriptions
    subject = subscriptions.subject(command.subject)
    channel = await _channel_id(client, command.channel, actor)
    removed = await subscriptions.unsubscribe(actor, subject, channel=channel)
    if removed is None:
        return notice(
            f"<#{channel}> was not subscribed to {subject.kind.value} {named(subject.name)}: nothing to stop. "
            f"{code(services.command + ' subscriptions')} lists the subscriptions.",
            formatted=True,
        )
    return notice(
        f"🔕 Unsubscribed: <#{channel}> no longer hears of {subject.kind.value} {named(subject.name)} "
        "(its own channel still does).",
        formatted=True,
    )


async def subscriptions(services: Services, actor: Actor, command: Subscriptions) -> Reply:
    service = services.subscriptions
    found = await service.listed(user_id=actor.user_id if command.mine else None)
    notifies = await service.notifies(actor.user_id)
    return subscriptions_list(found, mine=command.mine, notify_me=notifies, command=services.command)


async def notify_me(services: Services, actor: Actor, command: NotifyMe) -> Reply:
    changed = await services.subscriptions.notify_me(actor, on=command.on)
    if command.on:
        already = "" if changed else " (it already was)"
        return notice(
            f"🔔 You will get a direct message when a run you start ends{already}, with its card's link. "
            f"{code(services.command + ' notify me off')} stops it.",
            formatted=True,
        )
    already = "" if changed else " (they already were)"
    return notice(f"🔕 No more direct messages about the runs you start{already}.", formatted=True)


async def _channel_id(client: AsyncWebClient, ref: str | None, actor: Actor) -> str:
    if ref is None:
        if not actor.channel_id or actor.channel_id.startswith("D"):
            raise InvalidRequest("Name the channel to post in, like `#data-alerts`: this is not a channel.")
        return actor.channel_id
    if not ref.startswith("#"):
        return ref  # an id (the parser accepts only ids and #names)
    found = await channel_id_of(client, ref)
    if found is None:
        raise InvalidRequest(
            f"There is no channel {escape(ref)} the bot can see: check the name; a private channel needs the bot "
            "invited first (`/invite @pipeline-bot` in it)."
        )
    return found
