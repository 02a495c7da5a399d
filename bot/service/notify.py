"""Turns what happened to a run into what Slack should show: the card's content and thread messages.

Nothing here calls Slack: the card's desired content and each message are written to the store
(``cards`` and ``outbox``) and the delivery loop sends them. So a crash at any point loses nothing,
and a message recorded twice under the same key is sent once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.catalog.model import Catalog, Pipeline
from bot.models import RunState
from bot.providers.base import Capability
from bot.service.clients import ClientPool
from bot.slack.blocks.card import CardView, run_card
from bot.slack.blocks.replies import failure_details, notice
from bot.store.records import RunRecord, Transition
from bot.store.store import Store

__all__ = ["Notifier"]

Now = Callable[[], datetime]


class Notifier:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        pool: ClientPool,
        now: Now,
        *,
        unknown_after: timedelta = timedelta(minutes=2),
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.pool = pool
        self.now = now
        self.unknown_after = unknown_after

    def pipeline(self, run: RunRecord) -> Pipeline | None:
        return self.catalog.pipelines.get(run.pipeline) if run.pipeline else None

    def channel_for(self, run: RunRecord) -> str | None:
        if run.channel:
            return run.channel
        pipeline = self.pipeline(run)
        return self.catalog.channel_for(pipeline) if pipeline else self.catalog.defaults.channel

    def console_url(self, run: RunRecord) -> str | None:
        try:
            client = self.pool.client(run.connection)
            return client.console_url(self.pool.job(run.provider, run.job), run.provider_run_id)
        except Exception:  # a card must render even if the catalog changed under it
            return None

    async def refresh_card(self, run: RunRecord) -> bool:
        """Write what the run's card should show now; False when it already shows that (or has no channel)."""
        channel = self.channel_for(run)
        if channel is None:
            return False
        now = self.now()
        retry = await self.store.retry_of(run.id)
        muted = (await self.store.muted(now=now)).get(run.pipeline or "")
        try:
            client = self.pool.client(run.connection)
            display = client.display_name
            can_cancel = client.can(Capability.CANCEL)
            job_text = self.pool.job(run.provider, run.job).describe()
        except Exception:
            display, can_cancel, job_text = run.provider, False, ", ".join(f"{k}={v}" for k, v in run.job.items())
        view = CardView(
            run=run,
            display_name=display,
            job_text=job_text,
            console_url=self.console_url(run),
            can_cancel=can_cancel and not run.final and run.provider_run_id is not None,
            unknown_after=self.unknown_after,
            now=now,
            retry_of_link=f"#{run.retry_of}" if run.retry_of else None,
            retried_as=retry.id if retry else None,
            muted_until=muted[0] if muted else None,
        )
        text, blocks = run_card(view)
        return await self.store.set_card(run.id, channel, text, blocks, now=now)

    async def on_change(self, change: Transition) -> None:
        """A run changed: update its card; on failure, post the details in its thread."""
        run = change.run
        await self.refresh_card(run)
        if run.final and change.before != run.state:
            if run.run_state is RunState.FAILED:
                await self.failure(run)
            elif run.run_state is RunState.UNKNOWN:
                await self.thread(run, "ended", f"The run ended with a status outside the usual ones: {run.raw_status}")

    async def failure(self, run: RunRecord) -> None:
        pipeline = self.pipeline(run)
        muted = (await self.store.muted(now=self.now())).get(run.pipeline or "")
        owners = () if muted or pipeline is None else pipeline.owners
        text, blocks = failure_details(
            run, owners=owners, display_name=self.display_name(run), console_url=self.console_url(run)
        )
        await self.store.enqueue(
            f"run:{run.id}:failure", kind="thread", run_id=run.id, text=text, blocks=blocks, now=self.now()
        )

    async def thread(self, run: RunRecord, key: str, message: str) -> None:
        text, blocks = notice(message)
        await self.store.enqueue(
            f"run:{run.id}:{key}", kind="thread", run_id=run.id, text=text, blocks=blocks, now=self.now()
        )

    def display_name(self, run: RunRecord) -> str:
        try:
            return self.pool.client(run.connection).display_name
        except Exception:
            return run.provider
