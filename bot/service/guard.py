"""Who may act, and the record of it: every action on a run or a pipeline is checked at the moment it happens
(``bot.service.permissions`` for the catalog's needs, ``bot.service.rights`` for owners and starters) and audited,
refusals included, with the right that let it through."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.catalog.model import Pipeline
from bot.errors import NotAllowed
from bot.service.permissions import Actor, Authorizer, Need
from bot.service.rights import Right, Rights
from bot.store.records import RunRecord
from bot.store.store import Store

__all__ = ["Guard"]

Now = Callable[[], datetime]


class Guard:
    def __init__(self, store: Store, authorizer: Authorizer, now: Now) -> None:
        self.store = store
        self.auth = authorizer
        self.rights = Rights(authorizer)
        self.now = now

    async def authorize(
        self,
        actor: Actor,
        need: Need,
        pipeline: Pipeline | None,
        *,
        what: str,
        target: str,
    ) -> Right:
        try:
            await self.auth.check(actor, need, pipeline, what=what)
        except NotAllowed:
            await self.audit(actor, need, target, "refused")
            raise
        return "admin" if actor.user_id in self.auth.admins or need == "admin" else _NEED_RIGHT[need]

    async def grant(
        self,
        actor: Actor,
        rights: tuple[Right, ...],
        pipeline: Pipeline | None,
        *,
        what: str,
        action: str,
        run: RunRecord | None = None,
        target: str | None = None,
    ) -> Right:
        """The right ``actor`` acts by (``bot.service.rights``); a refusal is audited under ``action``."""
        try:
            return await self.rights.grant(
                actor, pipeline, rights, what=what, started_by=run.started_by if run is not None else None
            )
        except NotAllowed:
            await self.audit(actor, action, target or (f"#{run.id}" if run is not None else ""), "refused")
            raise

    async def audit(
        self,
        actor: Actor | None,
        action: str,
        target: str,
        outcome: str,
        detail: str = "",
        *,
        right: Right | None = None,
    ) -> None:
        await self.store.audit.record(
            user_id=actor.user_id if actor else None,
            action=action,
            target=target,
            outcome=outcome,
            now=self.now(),
            detail=detail,
            right=right,
        )



_NEED_RIGHT: dict[Need, Right] = {"nothing": "allow_run", "run": "allow_run", "change": "allow_change"}
