"""Steps a command takes outside the run service that are audited like the service's own: a permission check
(its refusal recorded) and switching a pipeline's watch on or off."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.catalog.model import Pipeline
from bot.errors import NotAllowed
from bot.service.permissions import Actor, Authorizer, Need
from bot.store.alerting import Watch
from bot.store.store import Store

__all__ = ["Audited"]


class Audited:
    def __init__(self, store: Store, auth: Authorizer, now: Callable[[], datetime]) -> None:
        self.store = store
        self.auth = auth
        self.now = now

    async def check(
        self, actor: Actor, need: Need, pipeline: Pipeline | None, *, what: str, action: str, target: str
    ) -> None:
        """``Authorizer.check``; a refusal is recorded in the audit log under ``action`` and ``target``."""
        try:
            await self.auth.check(actor, need, pipeline, what=what)
        except NotAllowed:
            await self.store.audit.record(
                user_id=actor.user_id, action=action, target=target, outcome="refused", now=self.now()
            )
            raise

    async def set_watch(self, actor: Actor, pipeline: str, *, enabled: bool, channel: str | None) -> Watch:
        """Watch (or stop watching) ``pipeline``'s runs started outside Slack; the caller checked the right."""
        watch = await self.store.alerting.set_watch(
            pipeline, enabled=enabled, channel=channel, user_id=actor.user_id, now=self.now()
        )
        await self.store.audit.record(
            user_id=actor.user_id,
            action="watch" if enabled else "unwatch",
            target=pipeline,
            outcome="ok",
            now=self.now(),
            detail=channel or "",
        )
        return watch
