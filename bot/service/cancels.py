"""Cancel a run: whoever started it, ``allow_change`` or an admin, while it can still be canceled; or, the same
people, stop following a run whose connection left the catalog (nothing can cancel it from here).

A run at the provider is canceled there, the request recorded first: a poll landing while the answer travels back
finds it (Rivery's legacy API reports a canceled run as failed: the request makes that failure the cancel, not an
alert), and the provider's answer decides what a failure read meanwhile is (``bot.store.runs.as_asked``). A run
still waiting its turn (a retry's backoff, a provider's cap) has nothing at the provider: it is taken off the queue
here and never starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from bot.errors import InvalidRequest, ProviderError, UserError
from bot.ops.text import escape, named
from bot.providers.base import Capability
from bot.service.clients import ClientPool
from bot.service.events import CancelAsked
from bot.service.guard import Guard
from bot.service.notify import Notifier
from bot.service.outcomes import Changes
from bot.service.permissions import Actor
from bot.service.rights import CANCEL, Right
from bot.store import keys
from bot.store.records import RunRecord, StoredState, Transition
from bot.store.store import Store

__all__ = ["RunCancels"]

Now = Callable[[], datetime]


class RunCancels:
    def __init__(
        self, store: Store, pool: ClientPool, guard: Guard, notifier: Notifier, now: Now, *, changes: Changes
    ) -> None:
        self.store = store
        self.pool = pool
        self.guard = guard
        self.notifier = notifier
        self.now = now
        #: a waiting run's end is handed on as the poller's would be (``Outcomes``)
        self.changes = changes

    async def cancel(self, actor: Actor, run: RunRecord) -> RunRecord:
        right = await self.may_cancel(actor, run)
        if run.state == StoredState.WAITING.value:  # nothing at the provider yet: it is taken off the queue here
            return await self._cancel_waiting(actor, run, right)
        client = self.pool.client(run.connection, run.provider)
        if run.provider_run_id is None:
            raise InvalidRequest(f"Run #{run.id} is starting right now; try again in a moment.")
        # recorded before the provider is asked: a poll landing while the cancel's answer travels back finds it
        # (a canceled run reads as failed on Rivery's legacy API: the request makes it a cancel, not a failure)
        if not await self.store.runs.cancel_requested(run.id, actor.user_id, now=self.now()):
            ended = await self.store.runs.get(run.id)  # it ended since it was read: nothing is asked of the provider
            raise InvalidRequest(f"Run #{run.id} has already ended ({ended.state if ended else 'gone'}).")
        try:
            async with self.pool.slot(run.connection):
                await client.cancel(self.pool.job(run.provider, run.job), run.provider_run_id)
        except ProviderError as exc:
            if exc.outcome_unknown:  # it may have stopped the run: the request stays, for CANCEL_PENDING_LIMIT
                await self.store.runs.cancel_unconfirmed(run.id, now=self.now())
                await self.store.runs.poll_now(run.id, now=self.now())
                await self.guard.audit(actor, "cancel", f"#{run.id}", "unknown", str(exc))
                raise UserError(
                    f"Could not confirm the cancel of run #{run.id}: {escape(str(exc))} It may have been taken: "
                    "the card shows what the run does next."
                ) from None
            await self.store.runs.cancel_withdrawn(run.id)  # refused: a failure (held meanwhile) is the run's own
            await self.store.runs.poll_now(run.id, now=self.now())  # …and is announced at once
            await self.guard.audit(actor, "cancel", f"#{run.id}", "failed", str(exc))
            raise UserError(f"Could not cancel run #{run.id}: {escape(str(exc))}") from None
        except BaseException:  # a bug, or the stop cancelling the click: nobody knows whether the provider took it
            # so the run's later failure is announced as one, never hidden as this cancel
            await asyncio.shield(self.store.runs.cancel_withdrawn(run.id))
            await asyncio.shield(self.store.runs.poll_now(run.id, now=self.now()))
            raise
        await self.store.runs.cancel_taken(run.id, actor.user_id)
        await self.store.runs.poll_now(run.id, now=self.now())  # the card shows the cancel soon
        await self.guard.audit(actor, "cancel", f"#{run.id}", "ok", right=right)
        await self.notifier.thread(run, keys.cancel_note(actor.user_id), CancelAsked(actor.user_id))
        return run

    async def _cancel_waiting(self, actor: Actor, run: RunRecord, right: Right) -> RunRecord:
        """Cancel a run waiting its turn: it never starts. Its end is handed on as the poller's would be (its card,
        a workflow's next step, and the failure whose retry it was, announced: no attempt follows it)."""
        ended = await self.store.starts.cancel_waiting(run.id, actor.user_id, now=self.now())
        if ended is None:  # a starter claimed it meanwhile: its trigger is on its way
            raise InvalidRequest(f"Run #{run.id} is starting right now; try again in a moment.")
        await self.guard.audit(actor, "cancel", f"#{run.id}", "ok", "before it started", right=right)
        if self.changes.handled:
            await self.changes.publish(Transition(ended, StoredState.WAITING, ended.state))
        else:
            await self.notifier.refresh_card(ended)
        return ended

    async def may_cancel(self, actor: Actor, run: RunRecord) -> Right:
        """Whoever started ``run``, ``allow_change`` or an admin (the refusal audited), and only while a cancel can
        happen: the command asks this before its prompt, so no prompt is offered for a cancel bound to fail."""
        pipeline = self.notifier.pipeline(run)
        what = f"cancel run #{run.id} of {named(run.name)}"
        right = await self.guard.grant(actor, CANCEL, pipeline, what=what, action="cancel", run=run)
        if run.final:
            raise InvalidRequest(f"Run #{run.id} has already ended ({run.state}).")
        if run.state == StoredState.WAITING.value:  # taken off the queue here: its provider is not asked
            return right
        if self.cannot_follow(run):  # a card's Cancel (or a prompt) from before its connection left the catalog
            await self._refuse_if_watched(run)
            raise InvalidRequest(
                f"Run #{run.id} cannot be canceled from here: "
                f"{escape(self.pool.why_gone(run.connection, run.provider))}, so the bot cannot reach its provider: "
                "stop it in the provider's console, put the connection back, or end it here with Stop following on "
                "its card (it may still run at the provider)."
            )
        client = self.pool.client(run.connection, run.provider)
        if not client.can(Capability.CANCEL):
            raise InvalidRequest(f"{client.display_name} offers no cancel: stop it in its console.")
        return right

    def cannot_follow(self, run: RunRecord) -> bool:
        """A run at its provider whose connection the catalog has no more: nothing can ask how it goes, nor cancel
        it, from here; the way to end it is ``stop_following``."""
        return not run.final and run.provider_run_id is not None and not self.pool.has(run.connection, run.provider)

    async def stop_following(self, actor: Actor, run: RunRecord) -> RunRecord:
        """End a run the bot cannot follow any more (``cannot_follow``): left alone it stays in flight for ever,
        in ``status`` and holding a workflow's step. It ends ``unknown``, saying who ended it and why, handed on as
        the poller's end would be (its card, a workflow's step, the failure whose retry it was); it is not
        retried (nothing could start it). The same people as a cancel; only where the catalog lacks the
        connection: where it has it, the run is followed (another replica's catalog may differ)."""
        right = await self.may_stop_following(actor, run)
        why = self.pool.why_gone(run.connection, run.provider)
        ended = await self.store.runs.stop_following(run.id, actor.user_id, run.connection, now=self.now(), why=why)
        if ended is None:  # it ended meanwhile (another replica that has its connection heard how)
            current = await self.store.runs.get(run.id)
            raise InvalidRequest(f"Run #{run.id} has already ended ({current.state if current else 'gone'}).")
        await self.guard.audit(actor, "stop following", f"#{run.id}", "ok", run.connection, right=right)
        if self.changes.handled:  # an end even where the state's word stays (a status outside the model: unknown)
            await self.changes.publish(Transition(ended, run.state, ended.state, ended=True))
        else:
            await self.notifier.refresh_card(ended)
        return ended

    async def may_stop_following(self, actor: Actor, run: RunRecord) -> Right:
        """Who may cancel ``run``, and only while the bot cannot follow it (asked before the prompt and again at
        the click)."""
        pipeline = self.notifier.pipeline(run)
        what = f"stop following run #{run.id} of {named(run.name)}"
        right = await self.guard.grant(actor, CANCEL, pipeline, what=what, action="stop following", run=run)
        if run.final:
            raise InvalidRequest(f"Run #{run.id} has already ended ({run.state}).")
        if run.state == StoredState.WAITING.value:  # nothing at its provider yet: its Cancel takes it off the queue
            raise InvalidRequest(
                f"Run #{run.id} waits its turn to start: nothing runs at its provider yet, so there is nothing to "
                "stop following. Cancel it to take it off the queue."
            )
        if self.pool.has(run.connection, run.provider):
            client = self.pool.client(run.connection, run.provider)
            how = (
                "Cancel it to stop it at its provider."
                if client.can(Capability.CANCEL)
                else f"{escape(client.display_name)} offers no cancel: stop it in its console."
            )
            raise InvalidRequest(
                f"The bot follows run #{run.id}: its connection {named(run.connection)} is in the catalog (again). "
                + how
            )
        if run.provider_run_id is None:
            raise InvalidRequest(f"Run #{run.id} is starting right now; try again in a moment.")
        await self._refuse_if_watched(run)
        return right

    async def _refuse_if_watched(self, run: RunRecord) -> None:
        """A run the watch follows at its pipeline's new connection (``Notifier.watch_follows``) is not to be
        stopped following: stopped, its end listed a moment later was dropped (an ended run stays ended), a failure
        told nobody."""
        watched = await self.notifier.watch_follows(run)
        if watched is not None:
            raise InvalidRequest(
                f"Run #{run.id} cannot be canceled from here: "
                f"{escape(self.pool.why_gone(run.connection, run.provider))}; but the bot follows it through the watch "
                f"of {named(watched.name)} at its connection {named(watched.connection)}, so its end will be "
                "told as any: to stop it, use the provider's console."
            )
