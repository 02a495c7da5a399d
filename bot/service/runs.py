"""What a command or a button asks of a run: start, retry, cancel, refresh, acknowledge (a pipeline's mute and
provider operations: ``bot.service.pipeline_actions``).

Every action re-checks permission at the moment it happens and is audited (who, what, outcome).
A run is recorded before its trigger is sent, so a crash in between leaves a visible "starting"
run that recovery resolves, never a run nobody tracks. The process starting it holds a lease on it while the
trigger is pending (``StartLeases``): recovery gives up only starts whose owner is gone, and an answer that
arrives after all resumes the run's tracking.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.catalog.catalog import Catalog
from bot.catalog.model import ParameterSpec, Pipeline
from bot.errors import (
    InvalidRequest,
    ProviderError,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
    UserError,
)
from bot.models import JsonValue, RunState, Triggered
from bot.ops.logs import run_context
from bot.ops.text import escape, named, slack_date
from bot.providers.base import Capability, JobConfig, SomeClient
from bot.service.cancels import RunCancels
from bot.service.clients import ClientPool
from bot.service.events import Resumed, RetriedBy
from bot.service.guard import Guard
from bot.service.notify import Notifier
from bot.service.outcomes import Changes
from bot.service.paging import Pager
from bot.service.permissions import Actor, Authorizer
from bot.service.pipeline_actions import PipelineActions
from bot.service.rights import ACKNOWLEDGE, RETRY, Right
from bot.service.starting import BUSY_WAITS, StartLeases, busy_wait, record_answer
from bot.service.views import Muted
from bot.store.alert_events import CANCELED_RETRIES
from bot.store.records import NewRun, RunOrigin, RunRecord, StoredState, Transition
from bot.store.store import AlreadyRetried, Store

__all__ = ["AdHoc", "Muted", "RunService", "resolve_parameters"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]
AlertsChanged = Callable[[list[int]], Awaitable[None]]
Recorded = Callable[[RunRecord], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class AdHoc:
    """A provider job named directly (``rivery:<river_id>``), for admins."""

    provider: str
    connection: str
    job: Mapping[str, JsonValue]


class Parameterized(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, ParameterSpec]: ...


def resolve_parameters(pipeline: Parameterized, given: Mapping[str, str]) -> dict[str, str]:
    """Check ``key=value`` parameters against the pipeline's declaration; apply defaults."""
    declared = pipeline.parameters
    unknown = sorted(set(given) - set(declared))
    if unknown:
        if not declared:
            raise InvalidRequest(f"{named(pipeline.name)} takes no parameters (got {escape(', '.join(unknown))}).")
        raise InvalidRequest(
            f"{escape(', '.join(unknown))} {'is not a parameter' if len(unknown) == 1 else 'are not parameters'} "
            f"of {named(pipeline.name)}. It takes: {escape(', '.join(declared))}."
        )
    resolved: dict[str, str] = {}
    problems: list[str] = []
    for name, spec in declared.items():
        value = given.get(name, spec.default)
        if value is None or value == "":
            if spec.required:
                problems.append(f"`{escape(name)}` is required")
            continue
        problem = spec.problem_with(value)
        if problem:
            shown = value if len(value) <= 80 else value[:79] + "…"  # a refused value may be long (a step's)
            problems.append(f"`{escape(name)}={escape(shown)}` {problem}")
            continue
        resolved[name] = value
    if problems:
        raise InvalidRequest("; ".join(problems) + ".")
    return resolved


class RunService:
    def __init__(
        self,
        store: Store,
        pool: ClientPool,
        authorizer: Authorizer,
        notifier: Notifier,
        now: Now,
        *,
        first_poll: timedelta = timedelta(seconds=2),
        owner: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        changes: Changes | None = None,
        pager: Pager | None = None,
        alerts_changed: AlertsChanged | None = None,
    ) -> None:
        self.store = store
        self.pager = pager  # acknowledgements mirrored to PagerDuty (bot.service.paging)
        #: an alert's timeline grew (acknowledged, retried, muted): its message is rewritten (``Alerter``)
        self.alerts_changed = alerts_changed
        #: ends decided here that the poller will never see (a schedule's start that did not start, a run whose
        #: trigger's answer says it already ended)
        self.changes = changes or Changes()
        self.pool = pool
        self.auth = authorizer
        self.guard = Guard(store, authorizer, now)
        self.notifier = notifier
        self.now = now
        self.first_poll = first_poll
        #: this process, as the owner of the runs it is starting (the runtime's name for it)
        self.owner = owner or f"runs:{uuid.uuid4().hex[:12]}"
        self.lease = lease
        self.starts = StartLeases(store, owner=self.owner, lease=lease, now=now)
        #: mute, unmute and the provider operations: on a pipeline, not a run
        self.pipelines = PipelineActions(store, pool, self.guard, notifier, now, alerts_changed=alerts_changed)
        self.cancels = RunCancels(store, pool, self.guard, notifier, now, changes=self.changes)

    @property
    def catalog(self) -> Catalog:
        return self.notifier.catalog

    # -- start ------------------------------------------------------------------------------

    async def start(
        self,
        actor: Actor | None,
        target: Pipeline | AdHoc,
        parameters: Mapping[str, str],
        *,
        channel: str | None,
        origin: RunOrigin = RunOrigin.SLACK,
        retry_of: RunRecord | None = None,
        authorized: bool = False,
        workflow_run_id: int | None = None,
        step: str | None = None,
        right: Right | None = None,
        on_recorded: Recorded | None = None,
        resume_from: str | None = None,
        queue: bool = False,
    ) -> RunRecord:
        """Record, trigger and show a run. UserError explains anything that stops it.

        ``actor`` None: the bot itself (a schedule). ``authorized``: already checked by what started it
        (a workflow whose runner may run its steps; ``right``: the right that let it through, for the audit)."""
        if isinstance(target, Pipeline):
            pipeline: Pipeline | None = target
            name, connection, provider = target.name, target.connection, target.provider
            job = target.job.model_dump()
        else:
            pipeline = None
            name, connection, provider = f"{target.provider}:{_ident(target.job)}", target.connection, target.provider
            job = dict(target.job)
        if actor is not None and not authorized:
            right = await self.guard.authorize(actor, "run", pipeline, what=f"run {named(name)}", target=name)
        params = resolve_parameters(pipeline, parameters) if pipeline else dict(parameters)
        client = self.pool.client(connection, provider)
        job_config = self.pool.job(provider, job)
        refusal = job_config.run_refusal()
        if refusal is not None:
            raise InvalidRequest(f"{named(name)} cannot be run: {escape(refusal)}")
        if params and not client.accepts_parameters:
            raise InvalidRequest(f"{client.display_name} runs take no parameters.")
        now = self.now()
        new = NewRun(
            provider=provider,
            connection=connection,
            job=job,
            parameters=params,
            origin=origin,
            pipeline=pipeline.name if pipeline else None,
            started_by=actor.user_id if actor else None,
            channel=channel or (self.catalog.channel_for(pipeline) if pipeline else None),
            retry_of=retry_of.id if retry_of else None,
            attempt=(retry_of.attempt + 1) if retry_of else 1,
            workflow_run_id=workflow_run_id if retry_of is None else retry_of.workflow_run_id,
            step=step if retry_of is None else retry_of.step,
        )
        record = await self.store.runs.create(new, now=now, next_poll_at=None, owner=self.owner, lease=self.lease)
        if on_recorded is not None:  # its number is known: the person hears it now, not after the trigger's answer
            try:
                await on_recorded(record)
            except Exception:
                log.exception("telling run %s was recorded failed", record.id, extra={"run_id": record.id})
        with run_context(record.id, pipeline=new.pipeline, provider=provider, connection=connection):
            # a person is told when to try again; the bot's own starts (schedules, workflow steps) wait their turn,
            # and so does any retry: the policy may have held the failure's alert for it already (``AlreadyRetried``)
            # (``queue``: a start nobody is there to repeat, as a Workflow Builder step's)
            queue = (
                queue or actor is None or origin in (RunOrigin.SCHEDULE, RunOrigin.WORKFLOW) or retry_of is not None
            )
            limits = client.trigger_limits(job_config)
            held = await self.store.limits.admit(record.id, connection, limits, now=now, queue=queue)
            if held is not None and not queue:
                await self.guard.audit(actor, "run", name, "refused", held.limit.reason)
                raise InvalidRequest(f"{held.limit.reason}; try again at {slack_date(held.until, '{time}')}.")
            if held is not None:
                waiting = await self.get(record.id)
                await self.notifier.refresh_card(waiting)
                await self.guard.audit(
                    actor,
                    "run",
                    name,
                    "queued",
                    f"run #{record.id}: {held.limit.reason}, starts at {held.until.isoformat()}",
                )
                return waiting
            return await self._trigger(actor, record, client, job_config, params, name, right, resume_from)

    async def _trigger(
        self,
        actor: Actor | None,
        record: RunRecord,
        client: SomeClient,
        job_config: JobConfig,
        params: dict[str, str],
        name: str,
        right: Right | None = None,
        resume_from: str | None = None,
    ) -> RunRecord:
        # the lease lives until the answer is recorded, however long the trigger waits for a slot or an answer
        async with self.starts.holding(record.id):
            triggered = await self._send(actor, record, client, job_config, params, name, resume_from)
            if triggered is None:  # the provider was too busy: the run waits its turn, its card says until when
                return await self.get(record.id)
            if resume_from is not None and record.retry_of is not None and triggered.run_id == resume_from:
                # resumed under the same id (DataKitchen's order): the failed attempt keeps a precise one, as an
                # automatic retry's resume does (bot.service.retries); it may be before the run retried (a retry of
                # it canceled before it started, ``Notifier.retried``)
                failed = await self.store.runs.find(record.connection, resume_from)
                if failed is not None:
                    await self.store.runs.repoint(failed.id, f"{resume_from}/attempt-{failed.attempt}")
            record, resumed = await record_answer(
                self.store, record.id, triggered.run_id, now=self.now, first_poll=self.first_poll
            )
        if resumed:
            await self.notifier.thread(record, "resumed", Resumed(triggered.run_id))
        if triggered.status is not None:
            change = await self.store.runs.record_status(
                record.id, triggered.status, now=self.now(), next_poll_at=self.now() + self.first_poll
            )
            record = change.run if change else record
            if change is not None and record.final and self.changes.handled:
                # the answer tells the run's end already (a flow failing at once): the poller never sees a final
                # run, so its alert, details, retry or workflow's next step follow from here
                await self.changes.publish(change)
        await self.notifier.refresh_card(record)
        await self.store.runs.mark_notified(record.id, record.state)
        detail = f"run #{record.id} ({triggered.run_id}) {_params(params)}"
        await self.guard.audit(actor, "run", name, "ok", detail, right=right)
        return record

    async def _send(
        self,
        actor: Actor | None,
        record: RunRecord,
        client: SomeClient,
        job_config: JobConfig,
        params: dict[str, str],
        name: str,
        resume_from: str | None = None,
    ) -> Triggered | None:
        """The trigger call. UserError when it failed (the run ended, the person told); None when the provider was
        too busy to take it (429, 503): it waits its turn, as a start held by a cap does (``_wait_busy``)."""
        try:
            async with self.pool.slot(record.connection):
                if resume_from is not None:
                    return await client.resume(job_config, resume_from, params)
                return await client.trigger(job_config, params)
        except TriggerOutcomeUnknown as exc:
            ended = await self.store.runs.finish(record.id, RunState.UNKNOWN, str(exc), now=self.now())
            if ended is None:  # given up meanwhile (recovery): that end was told
                pass
            elif _not_only_the_persons(ended) and self.changes.handled:
                await self.changes.publish(Transition(ended, StoredState.STARTING, ended.state))
            else:
                await self.notifier.refresh_card(ended)
                await self.store.runs.mark_notified(ended.id, ended.state)
            await self.guard.audit(actor, "run", name, "failed", str(exc))
            raise UserError(f"{escape(str(exc))}") from None
        except ProviderError as exc:
            if isinstance(exc, ProviderUnavailable) and await self._wait_busy(actor, record, name, exc):
                return None
            ended = await self.store.runs.finish(record.id, RunState.UNKNOWN, f"not started: {exc}", now=self.now())
            if ended is None:  # given up meanwhile (recovery): that end was told
                pass
            elif _not_only_the_persons(ended) and self.changes.handled:  # channel and owners told (see there)
                await self.changes.publish(Transition(ended, StoredState.STARTING, ended.state))
            else:
                await self.store.runs.mark_notified(ended.id, ended.state)  # the person is told by the reply, no card
            await self.guard.audit(actor, "run", name, "failed", str(exc))
            raise UserError(f"{named(name)} did not start: {escape(str(exc))}") from None

    async def _wait_busy(self, actor: Actor | None, record: RunRecord, name: str, exc: ProviderUnavailable) -> bool:
        """A first start refused as busy (429 with its Retry-After, 503: nothing started) waits its turn like the
        waiting starts (``WaitingStarts``, which sends it when due and counts further refusals against the same
        ``BUSY_WAITS``), instead of "did not start". Its card, posted now, says it waits and until when."""
        pipeline = self.catalog.pipelines.get(record.pipeline or "")
        wait = busy_wait(exc, pipeline.retry if pipeline else None, record.attempt)
        if wait is None:
            return False
        until = self.now() + wait
        busy = await self.store.limits.wait_again(record.id, until=until, reason=str(exc), now=self.now())
        if busy is None:  # given up meanwhile (its process taken for gone): it stays ended, as announced
            return True
        log.warning("run %s: the provider was too busy to start it (%s of %s); tries again in %s", record.id, busy,
                    BUSY_WAITS, wait, extra={"run_id": record.id})
        await self.notifier.refresh_card(await self.get(record.id))
        await self.guard.audit(actor, "run", name, "queued", f"run #{record.id}: {exc}, starts at {until.isoformat()}")
        return True

    async def retry(
        self,
        actor: Actor,
        run_id: int,
        *,
        channel: str | None,
        on_recorded: Recorded | None = None,
        resume: bool = False,
    ) -> RunRecord:
        """Retry a failed run. Its card goes where the failed run's went (its channel), wherever Retry was
        clicked; ``channel`` only for a run that had none. ``on_recorded``: told the retry's number at once.
        ``resume``: from the failed step, with the provider's own resume (refused where it has none); the same
        rights as Retry."""
        run = await self.get(run_id)
        if not run.final:
            raise InvalidRequest(f"Run #{run.id} is still {run.state}: retry it once it has ended.")
        if run.run_state is RunState.SUCCEEDED:
            raise InvalidRequest(f"Run #{run.id} succeeded; start a new run with `run {escape(run.name)}`.")
        resume_from = self._resumable(run) if resume else None
        clicked = run  # its retry canceled before it started: that retry is retried, the rights asked of it now
        run, existing = await self.notifier.retried(run)
        if existing is not None:
            raise InvalidRequest(_already_retried(clicked, existing, await self._run_again(existing)))
        await self._refuse_an_earlier_step_run(run)
        target = self._target(run)
        pipeline = target if isinstance(target, Pipeline) else None
        # an ad-hoc run has no owners: its retry is an admin's (as its run was)
        what = f"{'resume' if resume else 'retry'} {named(run.name)}"
        right = await self.guard.grant(actor, RETRY, pipeline, what=what, action="retry", run=run)
        try:
            new = await self.start(
                actor,
                target,
                run.parameters,
                channel=run.channel or channel,
                origin=RunOrigin.RETRY,
                retry_of=run,
                authorized=True,
                right=right,
                on_recorded=on_recorded,
                resume_from=resume_from,
            )
        except AlreadyRetried as exc:  # two clicks at once: the database let one through
            raise InvalidRequest(_already_retried(clicked, exc.retry, await self._run_again(exc.retry))) from None
        await self.guard.audit(actor, "retry", f"#{clicked.id}", "ok", f"as run #{new.id}", right=right)
        for told in {clicked.id: clicked, run.id: run}.values():  # the failure's card, and the canceled retry's
            await self.notifier.refresh_card(told)
            await self.notifier.thread(told, "retried", RetriedBy(actor.user_id, new.id))
            await self._alerts_of(told.id)
        return new

    async def _run_again(self, retry: RunRecord) -> RunRecord | None:
        """The latest run of ``retry``'s chain of retries canceled at the provider (or no longer followed), each retried
        from its card; None when ``retry`` was not so ended or nobody retried it: a refusal then names the card whose
        Retry works."""
        latest = None
        for _ in range(CANCELED_RETRIES):
            if not retry.ended_without_outcome:
                break
            _, then = await self.notifier.retried(retry)
            if then is None:
                break
            latest = retry = then
        return latest

    def _resumable(self, run: RunRecord) -> str:
        """The provider run to resume ``run`` from; refused, saying what would work, where the provider cannot."""
        client = self.pool.client(run.connection, run.provider)
        if not client.can(Capability.RESUME):
            raise InvalidRequest(
                f"{client.display_name} cannot resume a run from its failed step: Retry runs {named(run.name)} "
                "again from the start."
            )
        if run.provider_run_id is None:
            raise InvalidRequest(f"Run #{run.id} never started: there is no failed step to resume from; use Retry.")
        return run.provider_run_id

    async def _refuse_an_earlier_step_run(self, run: RunRecord) -> None:
        """A workflow step's run is retried only while it is the step's run: once Retry on the workflow ran the step
        again, another run of the step would decide it by ending first (its failure stopping the workflow while the
        step's own run is still going). A retry of the step's run is adopted by Retry on the workflow instead."""
        if run.workflow_run_id is None or run.step is None:
            return
        workflow = await self.store.workflows.get(run.workflow_run_id)
        step = workflow.steps.get(run.step) if workflow is not None else None
        if step is not None and step.run_id is not None and step.run_id != run.id:
            raise InvalidRequest(
                f"Run #{run.id} was an earlier run of the step {named(run.step)} of workflow run "
                f"#{run.workflow_run_id}, which has run it again as run #{step.run_id}."
            )

    # -- actions on a run -------------------------------------------------------------------

    async def cancel(self, actor: Actor, run_id: int) -> RunRecord:
        return await self.cancels.cancel(actor, await self.get(run_id))

    async def may_cancel(self, actor: Actor, run: RunRecord) -> Right:
        return await self.cancels.may_cancel(actor, run)

    def cannot_follow(self, run: RunRecord) -> str | None:
        """Why the bot cannot follow ``run`` (its connection gone from the catalog), or None when it can."""
        return self.pool.why_gone(run.connection, run.provider) if self.cancels.cannot_follow(run) else None

    async def may_stop_following(self, actor: Actor, run: RunRecord) -> Right:
        return await self.cancels.may_stop_following(actor, run)

    async def stop_following(self, actor: Actor, run_id: int) -> RunRecord:
        return await self.cancels.stop_following(actor, await self.get(run_id))

    async def refresh(self, actor: Actor, run_id: int) -> RunRecord:
        run = await self.get(run_id)
        await self.store.runs.poll_now(run.id, now=self.now())
        await self.notifier.refresh_card(run)
        return run

    async def acknowledge(self, actor: Actor, run_id: int) -> tuple[RunRecord, bool]:
        run = await self.get(run_id)
        what = f"acknowledge failures of {named(run.name)}"
        right = await self.guard.grant(
            actor, ACKNOWLEDGE, self.notifier.pipeline(run), what=what, action="acknowledge", run=run
        )
        run, first = await self.store.runs.acknowledge(run.id, actor.user_id, now=self.now())
        if first and self.pager is not None:  # the on-call hand-off: PagerDuty hears of the first one
            await self.pager.acknowledge(run, actor.user_id)
        await self.notifier.refresh_card(run)
        await self.guard.audit(actor, "acknowledge", f"#{run.id}", "ok" if first else "already", right=right)
        if first:
            await self._alerts_of(run.id)
        return run, first

    # -- helpers ----------------------------------------------------------------------------

    async def _alerts_of(self, run_id: int) -> None:
        """The alert of failed run ``run_id`` has a new line in its timeline: its message shows it."""
        if self.alerts_changed is None:
            return
        alert_ids = await self.store.alert_events.involving(run_id)  # counting it, or told it was a retry
        if alert_ids:
            await self.alerts_changed(alert_ids)

    async def get(self, run_id: int) -> RunRecord:
        run = await self.store.runs.get(run_id)
        if run is None:
            raise InvalidRequest(f"There is no run #{run_id}. `/pipeline status` lists the runs in flight.")
        return run

    def _target(self, run: RunRecord) -> Pipeline | AdHoc:
        if run.pipeline:
            pipeline: Pipeline | None = self.catalog.pipelines.get(run.pipeline)
            if pipeline is None:
                raise InvalidRequest(  # what works too: it said only what was wrong
                    f"{named(run.pipeline)} is no longer in the bot's catalog, so the bot cannot run it again: put "
                    "it back in pipelines.yml, or run it from the provider's console."
                )
            return pipeline
        return AdHoc(provider=run.provider, connection=run.connection, job=run.job)





def _unattended(run: RunRecord) -> bool:
    """A schedule's start: no person waits for a reply (a workflow's step is told by its workflow)."""
    return run.origin == RunOrigin.SCHEDULE


def _not_only_the_persons(run: RunRecord) -> bool:
    """A start that did not get going whose end is told beyond the reply (handed to ``Outcomes``): a schedule's
    (nobody waits for a reply), or a retry's, even a person's: typed before the policy's retry was decided, it took
    that retry's place and the failure's alert waits for it (the failure is announced now, with its owners)."""
    return _unattended(run) or run.retry_of is not None


def _ident(job: Mapping[str, JsonValue]) -> str:
    return "/".join(str(v) for v in job.values() if v is not None)


def _params(params: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def _already_retried(run: RunRecord, retry: RunRecord, again: RunRecord | None = None) -> str:
    """``again``: the latest run of ``retry``, canceled, retried from its card (``RunService._run_again``)."""
    who = f" by <@{retry.started_by}>" if retry.started_by else ""
    told = f"Run #{run.id} was already retried{who} as run #{retry.id}."
    if not retry.ended_without_outcome:
        return told
    ended = _how_ended(retry)
    if again is None:  # what works: it said only "already"
        return told + f" That run #{retry.id} {ended}: Retry on its card runs it again."
    # its card offers Retry no more: the run standing for it now is named, not a card whose Retry is refused
    by = f" by <@{again.started_by}>" if again.started_by else ""
    told += f" That run #{retry.id} {ended}, and run again{by} as run #{again.id}"
    if again.ended_without_outcome:
        too = ", no longer followed either" if again.stopped_by else ", canceled too"
        return told + too + ": Retry on its card runs it again."
    return told + ": see its card."


def _how_ended(run: RunRecord) -> str:
    return "is no longer followed (its connection left the catalog)" if run.stopped_by else "was canceled"
