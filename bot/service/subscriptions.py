"""What ``/pipeline subscribe``, ``unsubscribe``, ``subscriptions`` and ``notify me`` ask for, and the Home tab's
Unsubscribe button: the subject named (a pipeline, a tag or a provider), who may, and the audit.

Rights are those of ``watch``: subscribing a channel to a pipeline needs the right to change that pipeline
(``allow_change``); to a tag or a provider, the right to change every pipeline it covers. Whoever made a
subscription may remove it; so may anyone with those rights. "Notify me" is anyone's, for their own runs.
Every check runs on the server when the command or the click arrives; refusals are audited.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.catalog.catalog import Catalog
from bot.catalog.model import Pipeline
from bot.errors import InvalidRequest, NotAllowed
from bot.ops.text import escape, named
from bot.service.audited import Audited
from bot.service.permissions import Actor, Authorizer
from bot.store.store import Store
from bot.store.subscriptions import Level, SubjectKind, Subscription

__all__ = ["Subject", "SubscriptionService", "SubscriptionView", "subscription_view"]


@dataclass(frozen=True, slots=True)
class Subject:
    """What a subscription follows, and the catalog's pipelines it covers now."""

    kind: SubjectKind
    name: str
    pipelines: tuple[Pipeline, ...]

    def __str__(self) -> str:
        return f"{self.kind.value} {self.name}"


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    """A subscription as Slack shows it (the block builders take this, never the store's record)."""

    id: int
    kind: str  # pipeline | tag | provider | started ("notify me")
    target: str
    channel: str
    everything: bool  # level ``all``: a note of every run's end, not only the failures
    created_by: str

    @property
    def notify_me(self) -> bool:
        return self.kind == SubjectKind.STARTED.value


def subscription_view(subscription: Subscription) -> SubscriptionView:
    return SubscriptionView(
        id=subscription.id,
        kind=subscription.kind.value,
        target=subscription.target,
        channel=subscription.channel,
        everything=subscription.level is Level.ALL,
        created_by=subscription.created_by,
    )


class SubscriptionService:
    def __init__(self, store: Store, catalog: Catalog, auth: Authorizer, now: Callable[[], datetime]) -> None:
        self.store = store
        self.catalog = catalog
        self.auth = auth
        self.now = now

    def subject(self, word: str) -> Subject:
        """A pipeline, else a provider key, else a tag, as the catalog knows them (any case); else an error that
        names the closest."""
        pipelines = self.catalog.pipelines
        lowered = word.lower()
        for name, pipeline in pipelines.items():
            if name.lower() == lowered:
                return Subject(SubjectKind.PIPELINE, name, (pipeline,))
        providers = sorted({p.provider for p in pipelines.values()})
        if lowered in providers:
            return Subject(SubjectKind.PROVIDER, lowered, tuple(p for p in pipelines.values() if p.provider == lowered))
        tags = sorted({t for p in pipelines.values() for t in p.tags})
        for tag in tags:
            if tag.lower() == lowered:
                return Subject(SubjectKind.TAG, tag, tuple(p for p in pipelines.values() if tag in p.tags))
        known = [*pipelines, *providers, *tags]
        close = difflib.get_close_matches(lowered, [k.lower() for k in known], n=1, cutoff=0.6)
        hint = f" Did you mean `{escape(next(k for k in known if k.lower() == close[0]))}`?" if close else ""
        raise InvalidRequest(
            f"There is no pipeline, tag or provider {named(word[:80])} in the catalog.{hint} "
            "`list` shows the pipelines with their tags and providers."
        )

    async def subscribe(
        self, actor: Actor, subject: Subject, *, channel: str, level: Level
    ) -> tuple[Subscription, bool]:
        """Subscribe ``channel`` (an id the caller checked the bot can post in); True when it is new."""
        await self._may(
            actor, subject, what=f"subscribe a channel to the runs of {subject.kind.value} {named(subject.name)}"
        )
        found = await self.store.subscriptions.add(
            subject.kind, subject.name, channel=channel, level=level, user_id=actor.user_id, now=self.now()
        )
        await self._audit(actor, "subscribe", subject, detail=f"{channel} {level.value}")
        return found

    async def unsubscribe(self, actor: Actor, subject: Subject, *, channel: str) -> Subscription | None:
        """The subscription removed; None when ``channel`` had none to ``subject``."""
        existing = [
            s
            for s in await self.store.subscriptions.listed()
            if s.kind is subject.kind and s.target == subject.name and s.channel == channel
        ]
        if existing and existing[0].created_by != actor.user_id:
            await self._may(
                actor, subject, what=f"unsubscribe a channel from {subject.kind.value} {named(subject.name)}"
            )
        removed = await self.store.subscriptions.remove(subject.kind, subject.name, channel=channel)
        if removed is not None:
            await self._audit(actor, "unsubscribe", subject, detail=channel)
        return removed

    async def remove(self, actor: Actor, subscription_id: int) -> Subscription | None:
        """The Home tab's Unsubscribe, re-checked at click: the button's id is input, not trusted. None when the
        subscription is gone already."""
        found = await self.store.subscriptions.get(subscription_id)
        if found is None:
            return None
        if found.created_by != actor.user_id:
            if found.kind is SubjectKind.STARTED:
                raise NotAllowed("You may not change someone else's notifications.")
            await self._may(
                actor, self._stored(found), what="remove a subscription someone else made", action="unsubscribe"
            )
        if not await self.store.subscriptions.remove_id(subscription_id):
            return None
        await self.store.audit.record(
            user_id=actor.user_id,
            action="unsubscribe",
            target=f"{found.kind.value} {found.target}"[:200],
            outcome="ok",
            now=self.now(),
            detail=found.channel,
        )
        return found

    async def listed(self, *, user_id: str | None = None) -> list[SubscriptionView]:
        """The channel subscriptions, oldest first; ``user_id``: those this person made."""
        return [subscription_view(s) for s in await self.store.subscriptions.listed(user_id=user_id)]

    async def notify_me_of(self, user_id: str) -> SubscriptionView | None:
        """The person's "notify me", when it is on."""
        found = await self.store.subscriptions.listed_started(user_id)
        return subscription_view(found[0]) if found else None

    async def notify_me(self, actor: Actor, *, on: bool) -> bool:
        """Switch the DMs about the runs ``actor`` starts; False when they already were so."""
        return await self.store.subscriptions.notify_me(actor.user_id, on=on, now=self.now())

    async def notifies(self, user_id: str) -> bool:
        return await self.store.subscriptions.notifies(user_id)

    def _stored(self, subscription: Subscription) -> Subject:
        """A stored subscription's subject as the catalog covers it now (a pipeline since removed: none)."""
        pipelines = self.catalog.pipelines.values()
        covered = tuple(
            p
            for p in pipelines
            if (subscription.kind is SubjectKind.PIPELINE and p.name == subscription.target)
            or (subscription.kind is SubjectKind.PROVIDER and p.provider == subscription.target)
            or (subscription.kind is SubjectKind.TAG and subscription.target in p.tags)
        )
        return Subject(subscription.kind, subscription.target, covered)

    async def _may(self, actor: Actor, subject: Subject, *, what: str, action: str = "subscribe") -> None:
        """The right to change every pipeline ``subject`` covers (an admin's when it covers none); a refusal is
        audited under ``action``."""
        audited = Audited(self.store, self.auth, self.now)
        if not subject.pipelines:
            await audited.check(actor, "admin", None, what=what, action=action, target=str(subject)[:200])
        for pipeline in subject.pipelines:
            await audited.check(actor, "change", pipeline, what=what, action=action, target=str(subject)[:200])

    async def _audit(self, actor: Actor, action: str, subject: Subject, *, detail: str) -> None:
        await self.store.audit.record(
            user_id=actor.user_id, action=action, target=str(subject)[:200], outcome="ok", now=self.now(), detail=detail
        )
