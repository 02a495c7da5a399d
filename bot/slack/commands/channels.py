"""A channel a person names for the bot to post in (``/pipeline watch X #channel``, ``/pipeline subscribe X
#channel``), checked with Slack before it is kept: a channel that does not exist, is archived, is a direct message,
or is private without the bot would take the posts nowhere (found at the first failure, long after the person
left). The person is told at once, with what would work instead; the channel is kept by its id, so a rename later
does not lose it."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery.answers import slack_error
from bot.errors import InvalidRequest
from bot.models import Json
from bot.slack.text import escape

__all__ = ["PAGES", "channel_id_of", "postable_channel"]

PAGES = 20  # conversations.list pages of 1,000 read at most to find a channel by name (a large workspace)


async def postable_channel(client: AsyncWebClient, channel: str, *, member_needed: bool, otherwise: str = "") -> str:
    """The id of ``channel`` (an id, or ``#name`` as typed) when the bot can post there; else ``InvalidRequest``
    saying why and what would work (``otherwise``: what happens without a channel). ``member_needed``: the bot must
    be in the channel even when it is public (a subscription); else a public channel takes posts without
    (chat:write.public) and only a private one needs the bot in it (a watch)."""
    tail = f" {otherwise}" if otherwise else ""
    shown = f"<#{channel}>" if not channel.startswith("#") else f"*{escape(channel)}*"
    unseen = (
        f"There is no channel {shown} the bot can see. Type # and pick the channel from the list; a private channel "
        f"needs the bot invited first (`/invite @pipeline-bot` in it).{tail}"
    )
    try:
        channel_id = await channel_id_of(client, channel) if channel.startswith("#") else channel
        if channel_id is None:
            raise InvalidRequest(unseen)
        info: Json = (await client.conversations_info(channel=channel_id)).get("channel") or {}
    except SlackApiError as exc:
        error = slack_error(exc.response)  # a gateway's plain-text page has none (no AttributeError)
        if error in ("channel_not_found", "not_in_channel"):
            raise InvalidRequest(unseen) from None
        raise InvalidRequest(
            f"Slack did not say whether the bot can post in {shown} ({escape(error or 'no answer')}): try again in a "
            f"moment.{tail}"
        ) from None
    named = f"<#{channel_id}>"
    if info.get("is_archived"):
        raise InvalidRequest(f"{named} is archived: name a channel in use.{tail}")
    if info.get("is_im") or info.get("is_mpim"):
        raise InvalidRequest(f"The bot posts in channels, not in direct messages: name one, like `#data-alerts`.{tail}")
    if not info.get("is_member") and (member_needed or info.get("is_private")):
        raise InvalidRequest(
            f"The bot is not in {named}, so it cannot post there: `/invite @pipeline-bot` in {named} first, then try "
            f"again.{tail}"
        )
    return channel_id


async def channel_id_of(client: AsyncWebClient, name: str) -> str | None:
    """The id of ``#name`` among the channels the bot can see (conversations.list, at most ``PAGES`` pages: a
    channel beyond them is named by picking it from Slack's list, which gives its id); None when not found."""
    wanted = name.removeprefix("#").lower()
    cursor = None
    for _ in range(PAGES):
        page = await client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
        )
        for found in page.get("channels") or []:
            if str(found.get("name", "")).lower() == wanted:
                return str(found["id"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return None
