"""The ``conversations.*`` Web API family of the fake Slack, with the directory the bot reads beside it
(``users.*``, ``usergroups.*``): channel info, history and replies with paging, members, and DMs."""

from __future__ import annotations

import math

from bot.emulators._core import Json
from bot.emulators.slack import payloads
from bot.emulators.slack.api import ApiError, Method, api_channel, as_int
from bot.emulators.slack.records import Channel, User, flag
from bot.emulators.slack.state import SlackState

__all__ = ["ConversationsApi"]


class ConversationsApi:
    def __init__(self, state: SlackState) -> None:
        self.state = state

    def methods(self) -> dict[str, Method]:
        return {
            "users.info": self.users_info,
            "users.list": self.users_list,
            "users.lookupByEmail": self.users_lookup_by_email,
            "usergroups.list": self.usergroups_list,
            "usergroups.users.list": self.usergroups_users_list,
            "conversations.info": self.info,
            "conversations.list": self.list_channels,
            "conversations.history": self.history,
            "conversations.replies": self.replies,
            "conversations.members": self.members,
            "conversations.open": self.open_dm,
        }

    def _channel_json(self, channel: Channel) -> Json:
        if channel.im_user is not None:
            return {"id": channel.id, "created": channel.created, "is_im": True, "is_org_shared": False,
                    "user": channel.im_user, "is_user_deleted": False, "priority": 0}
        return {
            "id": channel.id, "name": channel.name, "name_normalized": channel.name,
            "is_channel": not channel.private, "is_group": channel.private, "is_im": False, "is_mpim": False,
            "is_private": channel.private, "is_member": channel.member, "is_archived": channel.archived, "is_general":
            channel.name == "general", "created": channel.created, "creator": "U0ALICE",
            "num_members": len(channel.members), "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }

    def info(self, params: Json) -> Json:
        channel = self.state.lookup_channel(params.get("channel"))
        if channel is None or (channel.private and not channel.member):
            raise ApiError("channel_not_found")  # the bot cannot see private channels it is not in
        return {"channel": self._channel_json(channel)}

    def list_channels(self, params: Json) -> Json:
        """Slack's paging (``limit`` ≤ 1000, default 100; ``cursor``), ``types`` (default public_channel) and
        ``exclude_archived``; private channels only where the bot is a member, as a bot token sees them."""
        types = {t.strip() for t in str(params.get("types") or "public_channel").split(",")}
        unknown = types - {"public_channel", "private_channel", "im", "mpim"}
        if unknown:
            raise ApiError("invalid_types", errors=[f"unknown type(s): {', '.join(sorted(unknown))}"])
        chosen = [
            c for c in self.state.channels.values()
            if c.im_user is None and ("private_channel" if c.private else "public_channel") in types
            and (c.member or not c.private) and not (c.archived and flag(params.get("exclude_archived")))
        ]
        limit = max(1, min(as_int(params.get("limit"), 100), 1000))
        offset = as_int(params.get("cursor"), 0)
        more = offset + limit < len(chosen)
        return {"channels": [self._channel_json(c) for c in chosen[offset : offset + limit]],
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""}}

    def history(self, params: Json) -> Json:
        channel = api_channel(self.state, params.get("channel"), need_member=True)
        oldest, latest = float(params.get("oldest") or 0), float(params.get("latest") or math.inf)
        inclusive = flag(params.get("inclusive"))
        limit = max(1, min(as_int(params.get("limit"), 100), 999))
        offset = as_int(params.get("cursor"), 0)

        def in_range(ts: str) -> bool:
            t = float(ts)
            return (oldest <= t <= latest) if inclusive else (oldest < t < latest)

        chosen = [m for m in reversed(self.state.messages(channel.id)) if in_range(m.ts)]
        page = chosen[offset : offset + limit]
        has_more = offset + limit < len(chosen)
        metadata = flag(params.get("include_all_metadata"))
        return {
            "messages": [self.state.message_json(m, include_metadata=metadata) for m in page],
            "has_more": has_more,
            "pin_count": 0,
            "response_metadata": {"next_cursor": str(offset + limit) if has_more else ""},
        }

    def replies(self, params: Json) -> Json:
        channel = api_channel(self.state, params.get("channel"), need_member=True)
        parent = self.state.find_message(channel.id, params.get("ts"))
        if parent is None:
            raise ApiError("thread_not_found")
        root = parent if not parent.is_reply else self.state.find_message(channel.id, parent.thread_ts)
        thread = [root] if root is not None else []
        thread += self.state.messages(channel.id, thread_ts=root.ts if root else parent.thread_ts)
        metadata = flag(params.get("include_all_metadata"))
        return {"messages": [self.state.message_json(m, include_metadata=metadata) for m in thread],
                "has_more": False}

    def members(self, params: Json) -> Json:
        channel = self.state.lookup_channel(params.get("channel"))
        if channel is None or (channel.private and not channel.member):
            raise ApiError("channel_not_found")
        members = sorted(channel.members)
        limit, offset = max(1, as_int(params.get("limit"), 100)), as_int(params.get("cursor"), 0)
        more = offset + limit < len(members)
        return {"members": members[offset : offset + limit],
                "response_metadata": {"next_cursor": str(offset + limit) if more else ""}}

    def open_dm(self, params: Json) -> Json:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise ApiError("not_enough_users" if not users else "too_many_users")
        if users[0] not in self.state.users:
            raise ApiError("user_not_found")
        return {"channel": {"id": self.state.dm(users[0]).id}}

    # -- users and user groups --------------------------------------------------------------------

    def _user_json(self, user: User) -> Json:
        team_id = self.state.team_id
        out: Json = {
            "id": user.id, "team_id": team_id, "name": user.name, "deleted": False,
            "real_name": user.real_name, **payloads.tz_fields(user.tz), "is_admin": user.is_admin,
            "is_owner": False, "is_bot": user.is_bot, "is_app_user": False, "updated": 1_600_000_000,
            "profile": {"real_name": user.real_name, "display_name": user.display_name,
                        "real_name_normalized": user.real_name, "display_name_normalized": user.display_name,
                        "team": team_id},
        }
        if user.email:
            out["profile"]["email"] = user.email
        if user.is_bot:
            out["profile"]["bot_id"] = self.state.bot_id
        return out

    def users_info(self, params: Json) -> Json:
        user = self.state.users.get(str(params.get("user") or ""))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": self._user_json(user)}

    def users_lookup_by_email(self, params: Json) -> Json:
        email = str(params.get("email") or "").strip().lower()
        user = next((u for u in self.state.users.values() if u.email and u.email.lower() == email), None)
        if user is None:
            raise ApiError("users_not_found")
        return {"user": self._user_json(user)}

    def users_list(self, params: Json) -> Json:
        return {"members": [self._user_json(u) for u in self.state.users.values()],
                "response_metadata": {"next_cursor": ""}}

    def usergroups_list(self, params: Json) -> Json:
        with_users = flag(params.get("include_users"))
        groups = []
        for group in self.state.usergroups.values():
            entry: Json = {"id": group.id, "team_id": self.state.team_id, "is_usergroup": True, "name": group.name,
                           "handle": group.handle, "user_count": len(group.members), "date_delete": 0}
            if with_users:
                entry["users"] = list(group.members)
            groups.append(entry)
        return {"usergroups": groups}

    def usergroups_users_list(self, params: Json) -> Json:
        group = self.state.usergroups.get(str(params.get("usergroup") or ""))
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group.members)}
