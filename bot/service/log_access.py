"""Who may read a run's Full log, checked at each click on the server.

A run's card (and its Full log button) can be shown anywhere (``/pipeline status N``), and a button's value is
input: the click alone proves nothing. The log is shown to those who can already read the run's thread, the
members of the channel its card is in (and of its pipeline's alert channel, where a watched run's thread is),
and to those who answer for the pipeline: its owners, ``allow_change``, whoever started the run, and admins.
Everyone else is refused, told where to read it. Channel members are asked of Slack and cached briefly, as user
groups are (``Authorizer``): someone who leaves a private channel stops reading its logs within that time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from bot.catalog.catalog import Catalog
from bot.errors import InvalidRequest, NotAllowed
from bot.service.guard import Guard
from bot.service.permissions import Actor
from bot.service.rights import Right
from bot.store.records import RunRecord
from bot.store.store import Store

__all__ = ["READ_LOG", "ChannelMembers", "LogAccess"]

#: a channel's members as Slack lists them (empty when the bot cannot see the channel)
ChannelMembers = Callable[[str], Awaitable[frozenset[str]]]

#: who answers for a pipeline's runs, besides the channel's members and admins
READ_LOG: tuple[Right, ...] = ("allow_change", "owner", "starter")


class LogAccess:
    def __init__(
        self, store: Store, catalog: Catalog, guard: Guard, members: ChannelMembers, *, cache_s: float = 60.0
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.guard = guard
        self._members = members
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._cache_s = cache_s

    async def check(self, actor: Actor, run_id: int, *, opened: bool) -> None:
        """Raise NotAllowed (audited) unless ``actor`` may read run ``run_id``'s log. ``opened``: the Full log
        is being opened (audited when let through; its Earlier / Later pages are checked again, not recorded)."""
        run = await self.store.runs.get(run_id)
        if run is None:
            raise InvalidRequest(f"There is no run #{run_id}.")
        target = f"#{run.id}"
        right: Right | None = None
        detail = ""
        pipeline = self.catalog.pipelines.get(run.pipeline) if run.pipeline else None
        try:
            right = await self.guard.rights.grant(
                actor, pipeline, READ_LOG, what="read this log", started_by=run.started_by
            )
        except NotAllowed:
            channels = await self.channels(run)
            member_of = [c for c in channels if actor.user_id in await self._channel(c)]
            if not member_of:
                await self.guard.audit(actor, "log", target, "refused")
                raise NotAllowed(self.refusal(run, channels)) from None
            detail = f"member of {member_of[0]}"
        if opened:
            await self.guard.audit(actor, "log", target, "ok", detail, right=right)

    async def channels(self, run: RunRecord) -> list[str]:
        """Where the run's thread can be: its card's channel, and its pipeline's alert channel."""
        found: list[str] = []
        card = await self.store.cards.of_run(run.id)
        if card is not None:
            found.append(card.channel)
        elif run.channel:
            found.append(run.channel)
        pipeline = self.catalog.pipelines.get(run.pipeline) if run.pipeline else None
        alerts = self.catalog.channel_for(pipeline) if pipeline else self.catalog.defaults.channel
        if alerts and alerts not in found:
            found.append(alerts)
        return found

    def refusal(self, run: RunRecord, channels: list[str]) -> str:
        pipeline = self.catalog.pipelines.get(run.pipeline) if run.pipeline else None
        rights = self.guard.rights.refusal(pipeline, READ_LOG, what="read it here", started_by=run.started_by)
        if not channels:
            return f"The log of run #{run.id} is not yours to read. {rights}"
        where = " or ".join(f"<#{c}>" for c in channels)
        shown = f"The log of run #{run.id} is shown to the members of {where}, where its thread is: read it there."
        return f"{shown} {rights}"

    async def _channel(self, channel: str) -> frozenset[str]:
        cached = self._cache.get(channel)
        if cached and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        members = await self._members(channel)
        self._cache[channel] = (time.monotonic(), members)
        return members
