"""The rights to act on a run or on a pipeline's failures, and which one a person used.

The people an alert pings (a pipeline's ``owners``: users, and the members of its user groups) may act on its
failures: acknowledge, retry, and mute for up to ``OWNER_MUTE_CAP``. Whoever started a run may cancel it.
``allow_change`` may do all of that without the cap; ``allow_run`` may retry (a retry is a run); admins may do
everything. Disable, archive and reset stay with ``allow_change`` (``Authorizer.check``).

Checked on the server when the action happens (a user group's members are looked up then, cached briefly), and
the right used is returned so the audit log can say why the action was let through.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Literal, Protocol

from bot.errors import NotAllowed
from bot.service.permissions import Actor, Authorizer, Governed

__all__ = ["ACKNOWLEDGE", "CANCEL", "MUTE", "OWNER_MUTE_CAP", "RETRY", "Right", "Rights", "cap_text"]

Right = Literal["admin", "allow_change", "owner", "starter", "allow_run"]

#: the longest mute an owner without ``allow_change`` may set: long enough for a night and a day, short enough
#: that a failing pipeline cannot be silenced for good by whoever it pages
OWNER_MUTE_CAP = timedelta(hours=24)

#: who may do what, strongest first (the first right that matches is the one recorded)
ACKNOWLEDGE: tuple[Right, ...] = ("allow_change", "owner")
RETRY: tuple[Right, ...] = ("allow_change", "owner", "allow_run")
MUTE: tuple[Right, ...] = ("allow_change", "owner")
CANCEL: tuple[Right, ...] = ("allow_change", "starter")

_WHAT = {
    "allow_change": "`allow_change`",
    "owner": "an owner",
    "starter": "who started the run",
    "allow_run": "`allow_run`",
}


class Owned(Governed, Protocol):
    """A pipeline: who may run and change it, and whom its alerts ping."""

    @property
    def owners(self) -> tuple[str, ...]: ...


def cap_text(cap: timedelta = OWNER_MUTE_CAP) -> str:
    hours = int(cap.total_seconds() // 3600)
    return f"{hours} h"


class Rights:
    def __init__(self, auth: Authorizer) -> None:
        self.auth = auth

    async def grant(
        self,
        actor: Actor,
        pipeline: Owned | None,
        rights: Sequence[Right],
        *,
        what: str,
        started_by: str | None = None,
    ) -> Right:
        """The first of ``rights`` ``actor`` holds (``admin`` for an admin); NotAllowed naming the rights and who
        holds them otherwise. Ad-hoc runs (no pipeline) are their starter's and the admins'."""
        if actor.user_id in self.auth.admins:
            return "admin"
        for right in rights:
            if right == "starter":
                if started_by is not None and started_by == actor.user_id:
                    return right
            elif pipeline is not None and await self.auth.matches(actor, self._principals(right, pipeline)):
                return right
        raise NotAllowed(self.refusal(pipeline, rights, what=what, started_by=started_by))

    async def may(self, actor: Actor, pipeline: Owned, rights: Sequence[Right]) -> bool:
        """Whether ``actor`` holds one of ``rights`` on ``pipeline``: what a surface offers (an Unmute button);
        the click is checked again by ``grant``."""
        try:
            await self.grant(actor, pipeline, rights, what="act")
        except NotAllowed:
            return False
        return True

    async def owns(self, actor: Actor, pipeline: Owned) -> bool:
        """Whether ``actor`` is one of ``pipeline``'s owners: named, or a member of a named user group."""
        return await self.auth.matches(actor, self._principals("owner", pipeline))

    def refusal(
        self, pipeline: Owned | None, rights: Sequence[Right], *, what: str, started_by: str | None = None
    ) -> str:
        """ "You may not …": the rights it takes, and who holds each."""
        held: list[str] = []
        for right in rights:
            if right == "starter":
                who = f"<@{started_by}>" if started_by else ""
            elif pipeline is None:
                continue
            else:
                who = self.auth.names(self._principals(right, pipeline))
            if who:
                held.append(f"{_WHAT[right]} ({who})")
        admins = self.auth.names(sorted(self.auth.admins)) or "none set"
        takes = ", ".join(held) + ", or " if held else ""  # none held (an ad-hoc run): "being or an admin" read
        said = f"You may not {what}: that takes being {takes}an admin ({admins})."
        if pipeline is None:  # an ad-hoc run (``rivery:<id>``): no pipeline whose rights could be changed
            return said + " Ask one of them (it is no pipeline of the catalog: it has no `owners` / `allow_*`)."
        return said + " Ask one of them, or ask an admin to change the pipeline's `owners` / `allow_*` in the catalog."

    @staticmethod
    def _principals(right: Right, pipeline: Owned) -> tuple[str, ...]:
        if right == "owner":
            # people and user groups: an alert pings them; a channel named as an owner grants nothing
            return tuple(p for p in pipeline.owners if p[:1] in ("U", "W", "S"))
        if right == "allow_change":
            return pipeline.allow_change
        if right == "allow_run":
            return tuple(dict.fromkeys(pipeline.allow_run + pipeline.allow_change))
        return ()
