"""Who may run and who may change a pipeline, checked on the server at the moment of the action.

Principals in the catalog: ``*`` (everyone), ``U…``/``W…`` (a person), ``S…`` (a user group: its
members, looked up in Slack and cached), ``C…``/``G…`` (a channel: the action is taken in it).
Admins (settings) may do everything; whoever may change may also run. Owners (the people alerts mention) may act
on their pipeline's failures, and whoever started a run may cancel it: ``bot.service.rights``. Ad-hoc
``provider:id`` targets are for admins only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.errors import NotAllowed

__all__ = ["Actor", "Authorizer", "Governed", "GroupMembers", "Need"]

Need = Literal["nothing", "run", "change", "admin"]


class Governed(Protocol):
    """A pipeline or a workflow: what carries who may run and who may change it."""

    @property
    def allow_run(self) -> tuple[str, ...]: ...

    @property
    def allow_change(self) -> tuple[str, ...]: ...


GroupMembers = Callable[[str], Awaitable[frozenset[str]]]


@dataclass(frozen=True, slots=True)
class Actor:
    """The person asking, and where."""

    user_id: str
    channel_id: str | None = None


class Authorizer:
    def __init__(self, admins: Iterable[str], members: GroupMembers, *, cache_s: float = 60.0) -> None:
        # a user group's members are trusted for ``cache_s`` (one lookup per group for a burst of clicks), then
        # asked again: someone removed from a group loses its rights within that time
        self.admins = frozenset(admins)
        self._members = members
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}
        self._cache_s = cache_s

    async def check(self, actor: Actor, need: Need, pipeline: Governed | None, *, what: str) -> None:
        """Raise NotAllowed, naming who may, unless ``actor`` may do ``what``."""
        if need == "nothing" or actor.user_id in self.admins:
            return
        if need == "admin" or pipeline is None:
            raise NotAllowed(f"Only admins may {what}. Admins: {self.names(sorted(self.admins)) or 'none set'}.")
        allowed = self.principals(need, pipeline)
        if await self._matches(actor, allowed):
            return
        who = self.names(allowed)
        raise NotAllowed(
            f"You may not {what}. Who may: {who + ', ' if who else ''}or an admin. "
            f"Ask one of them, or ask an admin to change `{_SETTING[need]}` in the catalog."
        )

    async def allows(self, actor: Actor, need: Need, pipeline: Governed | None) -> bool:
        try:
            await self.check(actor, need, pipeline, what="do this")
        except NotAllowed:
            return False
        return True

    @staticmethod
    def principals(need: Need, pipeline: Governed) -> tuple[str, ...]:
        """allow_run / allow_change; what owners and starters may besides is ``bot.service.rights``."""
        if need == "change":
            return pipeline.allow_change
        return tuple(dict.fromkeys(pipeline.allow_run + pipeline.allow_change))

    async def matches(self, actor: Actor, principals: Sequence[str]) -> bool:
        return await self._matches(actor, principals)

    async def _matches(self, actor: Actor, principals: Sequence[str]) -> bool:
        for principal in principals:
            if principal == "*" or principal == actor.user_id:
                return True
            if principal[:1] in ("C", "G") and principal == actor.channel_id:
                return True
        for principal in principals:
            if principal.startswith("S") and actor.user_id in await self._group(principal):
                return True
        return False

    async def _group(self, group_id: str) -> frozenset[str]:
        cached = self._cache.get(group_id)
        if cached and time.monotonic() - cached[0] < self._cache_s:
            return cached[1]
        members = await self._members(group_id)
        self._cache[group_id] = (time.monotonic(), members)
        return members

    @staticmethod
    def names(principals: Sequence[str]) -> str:
        shown = []
        for p in principals:
            if p == "*":
                return "everyone"
            if p[:1] in ("U", "W"):
                shown.append(f"<@{p}>")
            elif p.startswith("S"):
                shown.append(f"<!subteam^{p}>")
            elif p[:1] in ("C", "G"):
                shown.append(f"anyone in <#{p}>")
        return ", ".join(shown)


#: the catalog setting that gives each need (``run`` is also given by ``allow_change``, the broader one)
_SETTING: dict[Need, str] = {"run": "allow_run", "change": "allow_change"}
