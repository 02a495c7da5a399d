"""A channel a person names for the bot to post in (``/pipeline watch X #channel``), checked with Slack before it
is kept: a channel that does not exist, is archived, or is private without the bot would take the alerts nowhere
(they fall back to the pipeline's channel at the first failure, long after the person left). The person is told at
once, with what would work instead; the channel is kept by its id, so a rename later does not lose it."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import InvalidRequest
from bot.models import Json
from bot.slack.text import escape

__all__ = ["postable_channel"]


async def postable_channel(client: AsyncWebClient, channel: str, *, otherwise: str) -> str:
    """The id of ``channel`` (an id, or ``#name`` as typed) when the bot can post there; else ``InvalidRequest``
    saying why and what would work (``otherwise``: what happens without a channel)."""
    shown = f"<#{channel}>" if not channel.startswith("#") else f"*{escape(channel)}*"
    unseen = (
        f"There is no channel {shown} the bot can see. Type # and pick the channel from the list; a private channel "
        f"needs the bot first (`/invite` it there). {otherwise}"
    )
    try:
        channel_id = await _id_of(client, channel) if channel.startswith("#") else channel
        if channel_id is None:
            raise InvalidRequest(unseen)
        info: Json = (await client.conversations_info(channel=channel_id)).get("channel") or {}
    except SlackApiError as exc:
        error = str(exc.response.get("error") or "")
        if error in ("channel_not_found", "not_in_channel"):
            raise InvalidRequest(unseen) from None
        raise InvalidRequest(
            f"Slack did not say whether the bot can post in {shown} ({escape(error or 'no answer')}): try again in a "
            f"moment. {otherwise}"
        ) from None
    named = f"<#{channel_id}>"
    if info.get("is_archived"):
        raise InvalidRequest(f"{named} is archived: name a channel in use. {otherwise}")
    if info.get("is_private") and not info.get("is_member"):  # public ones take posts without (chat:write.public)
        raise InvalidRequest(f"The bot is not in {named}: `/invite` it there first, then watch again. {otherwise}")
    return channel_id


async def _id_of(client: AsyncWebClient, name: str) -> str | None:
    """The id of ``#name`` among the channels the bot can see (conversations.list, paged)."""
    wanted = name.removeprefix("#").lower()
    cursor = None
    while True:
        page = await client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
        )
        for found in page.get("channels") or []:
            if str(found.get("name", "")).lower() == wanted:
                return str(found["id"])
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
