"""What a command or a button asks of a pipeline rather than a run: mute and unmute its alerts, and the provider's
operations on it (enable, disable, archive, reset). Each re-checked and audited (``Guard``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot.catalog.catalog import Catalog
from bot.errors import InvalidRequest, NotAllowed, ProviderError, UserError
from bot.ops.text import escape, named
from bot.providers.base import Capability
from bot.service.clients import ClientPool
from bot.service.guard import Guard
from bot.service.notify import Notifier
from bot.service.permissions import Actor
from bot.service.rights import MUTE, OWNER_MUTE_CAP, cap_text
from bot.service.views import Muted
from bot.store.store import Store

__all__ = ["PipelineActions"]

Now = Callable[[], datetime]
AlertsChanged = Callable[[list[int]], Awaitable[None]]


class PipelineActions:
    def __init__(
        self,
        store: Store,
        pool: ClientPool,
        guard: Guard,
        notifier: Notifier,
        now: Now,
        *,
        alerts_changed: AlertsChanged | None = None,
    ) -> None:
        self.store = store
        self.pool = pool
        self.guard = guard
        self.notifier = notifier
        self.now = now
        #: an alert's timeline grew (muted): its message is rewritten (``Alerter``)
        self.alerts_changed = alerts_changed

    @property
    def catalog(self) -> Catalog:
        return self.notifier.catalog

    async def mute(
        self, actor: Actor, pipeline_name: str, duration: timedelta, *, run_id: int | None = None, replace: bool = False
    ) -> Muted:
        pipeline = self.catalog.pipelines.get(pipeline_name)
        if pipeline is None:
            raise InvalidRequest(f"There is no pipeline {named(pipeline_name)} in the catalog.")
        what = f"mute {named(pipeline_name)}"
        right = await self.guard.grant(actor, MUTE, pipeline, what=what, action="mute", target=pipeline_name)
        if duration <= timedelta(0) or duration > timedelta(days=30):
            raise InvalidRequest("Mute for between a minute and 30 days, like `1h`, `4h`, `1d`.")
        if right == "owner" and duration > OWNER_MUTE_CAP:
            await self.guard.audit(actor, "mute", pipeline_name, "refused", f"{duration} is over the owners' cap")
            longer = self.guard.auth.names(pipeline.allow_change) or "nobody set"
            admins = self.guard.auth.names(sorted(self.guard.auth.admins)) or "none set"
            raise NotAllowed(
                f"Owners may mute {named(pipeline_name)} for up to {cap_text()}. A longer mute takes "
                f"`allow_change` ({longer}) or an admin ({admins})."
            )
        now = self.now()
        until = now + duration
        current = (await self.store.mutes.active(now=now)).get(pipeline_name)
        before = current[0] if current else None
        if before is not None and before > until and not replace:
            kept = f"kept until {before.isoformat()}"
            await self.guard.audit(actor, "mute", pipeline_name, "already", kept, right=right)
            return Muted(until=before, asked=until, before=before, changed=False)
        muted = await self.store.mutes.mute(pipeline_name, until=until, user_id=actor.user_id, now=now)
        if self.alerts_changed is not None and muted:
            await self.alerts_changed(muted)
        await self.guard.audit(actor, "mute", pipeline_name, "ok", f"until {until.isoformat()}", right=right)
        if run_id is not None:
            run = await self.store.runs.get(run_id)
            if run is not None:
                await self.notifier.refresh_card(run)
        return Muted(until=until, asked=until, before=before, changed=True)

    async def unmute(self, actor: Actor, pipeline_name: str) -> bool:
        pipeline = self.catalog.pipelines.get(pipeline_name)
        what = f"unmute {named(pipeline_name)}"
        # more alerts, never fewer: whoever may mute may unmute
        right = await self.guard.grant(actor, MUTE, pipeline, what=what, action="unmute", target=pipeline_name)
        alerts = await self.store.mutes.unmute(pipeline_name, now=self.now(), user_id=actor.user_id)
        if self.alerts_changed is not None and alerts:
            await self.alerts_changed(alerts)
        await self.guard.audit(actor, "unmute", pipeline_name, "ok" if alerts is not None else "not muted", right=right)
        return alerts is not None

    # -- provider operations (enable, disable, archive, reset) ------------------------------

    async def pipeline_op(self, actor: Actor, op: str, pipeline_name: str) -> str:
        pipeline = self.catalog.pipelines.get(pipeline_name)
        if pipeline is None:
            raise InvalidRequest(f"There is no pipeline {named(pipeline_name)} in the catalog.")
        what = f"{op} {named(pipeline_name)}"
        right = await self.guard.authorize(actor, "change", pipeline, what=what, target=pipeline_name)
        capability = Capability(op)
        client = self.pool.client(pipeline.connection)
        if not client.can(capability):
            offered = ", ".join(sorted(c.value for c in client.offered())) or "nothing beyond run and status"
            raise InvalidRequest(f"{client.display_name} cannot {op} (it offers: {offered}).")
        try:
            async with self.pool.slot(pipeline.connection):
                await getattr(client, op)(pipeline.job)
        except ProviderError as exc:
            await self.guard.audit(actor, op, pipeline_name, "failed", str(exc))
            raise UserError(f"Could not {op} {named(pipeline_name)}: {escape(str(exc))}") from None
        await self.guard.audit(actor, op, pipeline_name, "ok", right=right)
        return f"{_PAST[op]} {named(pipeline_name)} on {client.display_name}."


_PAST = {"enable": "Enabled", "disable": "Disabled", "archive": "Archived", "reset": "Reset"}
