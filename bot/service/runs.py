"""What a command or a button asks of a run: start, retry, cancel, refresh, acknowledge, mute.

Every action re-checks permission at the moment it happens and is audited (who, what, outcome).
A run is recorded before its trigger is sent, so a crash in between leaves a visible "starting"
run that recovery resolves, never a run nobody tracks. The process starting it holds a lease on it while the
trigger is pending (``StartLeases``): recovery gives up only starts whose owner is gone, and an answer that
arrives after all resumes the run's tracking.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.catalog.model import Catalog, ParameterSpec, Pipeline
from bot.errors import InvalidRequest, NotAllowed, ProviderError, TriggerOutcomeUnknown, UserError
from bot.models import RunState, Triggered
from bot.ops.logs import run_context
from bot.ops.text import escape, slack_date
from bot.providers.base import Capability, JobConfig, ProviderClient
from bot.service.clients import ClientPool
from bot.service.events import CancelAsked, Resumed, RetriedBy
from bot.service.notify import Notifier
from bot.service.outcomes import Changes
from bot.service.permissions import Actor, Authorizer, Need
from bot.service.starting import StartLeases, record_answer
from bot.service.views import Muted
from bot.store import keys
from bot.store.records import NewRun, RunOrigin, RunRecord, StoredState, Transition
from bot.store.store import AlreadyRetried, Store

__all__ = ["AdHoc", "Muted", "RunService", "resolve_parameters"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class AdHoc:
    """A provider job named directly (``rivery:<river_id>``), for admins."""

    provider: str
    connection: str
    job: Mapping[str, Any]


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
            raise InvalidRequest(f"*{escape(pipeline.name)}* takes no parameters (got {escape(', '.join(unknown))}).")
        raise InvalidRequest(
            f"{escape(', '.join(unknown))} {'is not a parameter' if len(unknown) == 1 else 'are not parameters'} "
            f"of *{escape(pipeline.name)}*. It takes: {escape(', '.join(declared))}."
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
            problems.append(f"`{escape(name)}={escape(value)}` {problem}")
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
    ) -> None:
        self.store = store
        #: ends decided here that the poller will never see (a schedule's start that did not start, a run whose
        #: trigger's answer says it already ended)
        self.changes = changes or Changes()
        self.pool = pool
        self.auth = authorizer
        self.notifier = notifier
        self.now = now
        self.first_poll = first_poll
        #: this process, as the owner of the runs it is starting (the runtime's name for it)
        self.owner = owner or f"runs:{uuid.uuid4().hex[:12]}"
        self.lease = lease
        self.starts = StartLeases(store, owner=self.owner, lease=lease, now=now)

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
    ) -> RunRecord:
        """Record, trigger and show a run. UserError explains anything that stops it.

        ``actor`` None: the bot itself (a schedule). ``authorized``: already checked by what started it
        (a workflow whose runner may run its steps)."""
        if isinstance(target, Pipeline):
            pipeline: Pipeline | None = target
            name, connection, provider = target.name, target.connection, target.provider
            job = target.job.model_dump()
        else:
            pipeline = None
            name, connection, provider = f"{target.provider}:{_ident(target.job)}", target.connection, target.provider
            job = dict(target.job)
        if actor is not None and not authorized:
            await self._authorize(actor, "run", pipeline, what=f"run *{escape(name)}*", target=name)
        params = resolve_parameters(pipeline, parameters) if pipeline else dict(parameters)
        client = self.pool.client(connection)
        job_config = self.pool.job(provider, job)
        refusal = job_config.run_refusal()
        if refusal is not None:
            raise InvalidRequest(f"*{escape(name)}* cannot be run: {escape(refusal)}")
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
        with run_context(record.id, pipeline=new.pipeline, provider=provider, connection=connection):
            # a person is told when to try again; the bot's own starts (schedules, workflow steps) wait their turn,
            # and so does any retry: the policy may have held the failure's alert for it already (``AlreadyRetried``)
            queue = actor is None or origin in (RunOrigin.SCHEDULE, RunOrigin.WORKFLOW) or retry_of is not None
            limits = client.trigger_limits(job_config)
            held = await self.store.limits.admit(record.id, connection, limits, now=now, queue=queue)
            if held is not None and not queue:
                await self._audit(actor, "run", name, "refused", held.limit.reason)
                raise InvalidRequest(f"{held.limit.reason}; try again at {slack_date(held.until, '{time}')}.")
            if held is not None:
                waiting = await self.get(record.id)
                await self.notifier.refresh_card(waiting)
                await self._audit(actor, "run", name, "queued", f"run #{record.id}: {held.limit.reason}, starts "
                                  f"at {held.until.isoformat()}")
                return waiting
            return await self._trigger(actor, record, client, job_config, params, name)

    async def _trigger(
        self,
        actor: Actor | None,
        record: RunRecord,
        client: ProviderClient[Any, Any],
        job_config: JobConfig,
        params: dict[str, str],
        name: str,
    ) -> RunRecord:
        # the lease lives until the answer is recorded, however long the trigger waits for a slot or an answer
        async with self.starts.holding(record.id):
            triggered = await self._send(actor, record, client, job_config, params, name)
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
        await self._audit(actor, "run", name, "ok", f"run #{record.id} ({triggered.run_id}) {_params(params)}")
        return record

    async def _send(
        self,
        actor: Actor | None,
        record: RunRecord,
        client: ProviderClient[Any, Any],
        job_config: JobConfig,
        params: dict[str, str],
        name: str,
    ) -> Triggered:
        """The trigger call. UserError when it failed (the run ended, the person told)."""
        try:
            async with self.pool.slot(record.connection):
                return await client.trigger(job_config, params)
        except TriggerOutcomeUnknown as exc:
            record = await self.store.runs.finish(record.id, RunState.UNKNOWN, str(exc), now=self.now())
            if _not_only_the_persons(record) and self.changes.handled:
                await self.changes.publish(Transition(record, StoredState.STARTING, record.state))
            else:
                await self.notifier.refresh_card(record)
                await self.store.runs.mark_notified(record.id, record.state)
            await self._audit(actor, "run", name, "failed", str(exc))
            raise UserError(f"{escape(str(exc))}") from None
        except ProviderError as exc:
            ended = await self.store.runs.finish(record.id, RunState.UNKNOWN, f"not started: {exc}", now=self.now())
            if _not_only_the_persons(ended) and self.changes.handled:  # channel and owners told (see there)
                await self.changes.publish(Transition(ended, StoredState.STARTING, ended.state))
            else:
                await self.store.runs.mark_notified(ended.id, ended.state)  # the person is told by the reply, no card
            await self._audit(actor, "run", name, "failed", str(exc))
            raise UserError(f"*{escape(name)}* did not start: {escape(str(exc))}") from None

    async def retry(self, actor: Actor, run_id: int, *, channel: str | None) -> RunRecord:
        run = await self.get(run_id)
        if not run.final:
            raise InvalidRequest(f"Run #{run.id} is still {run.state}: retry it once it has ended.")
        if run.run_state is RunState.SUCCEEDED:
            raise InvalidRequest(f"Run #{run.id} succeeded; start a new run with `run {escape(run.name)}`.")
        existing = await self.store.runs.retry_of(run.id)
        if existing is not None:
            raise InvalidRequest(_already_retried(run, existing))
        target = self._target(run)
        try:
            new = await self.start(
                actor, target, run.parameters, channel=run.channel or channel, origin=RunOrigin.RETRY, retry_of=run
            )
        except AlreadyRetried as exc:  # two clicks at once: the database let one through
            raise InvalidRequest(_already_retried(run, exc.retry)) from None
        await self.notifier.refresh_card(run)
        await self.notifier.thread(run, "retried", RetriedBy(actor.user_id, new.id))
        return new

    # -- actions on a run -------------------------------------------------------------------

    async def cancel(self, actor: Actor, run_id: int) -> RunRecord:
        run = await self.get(run_id)
        pipeline = self.notifier.pipeline(run)
        await self._authorize(
            actor, "change", pipeline, what=f"cancel runs of *{escape(run.name)}*", target=run.name, admin_if_adhoc=True
        )
        if run.final:
            raise InvalidRequest(f"Run #{run.id} has already ended ({run.state}).")
        client = self.pool.client(run.connection)
        if not client.can(Capability.CANCEL):
            raise InvalidRequest(f"{client.display_name} offers no cancel: stop it in its console.")
        if run.provider_run_id is None:
            raise InvalidRequest(f"Run #{run.id} has not started yet; try again in a moment.")
        try:
            async with self.pool.slot(run.connection):
                await client.cancel(self.pool.job(run.provider, run.job), run.provider_run_id)
        except ProviderError as exc:
            await self._audit(actor, "cancel", f"#{run.id}", "failed", str(exc))
            raise UserError(f"Could not cancel run #{run.id}: {escape(str(exc))}") from None
        await self.store.runs.cancel_requested(run.id, actor.user_id, now=self.now())
        await self._audit(actor, "cancel", f"#{run.id}", "ok")
        await self.notifier.thread(run, keys.cancel_note(actor.user_id), CancelAsked(actor.user_id))
        return run

    async def refresh(self, actor: Actor, run_id: int) -> RunRecord:
        run = await self.get(run_id)
        await self.store.runs.poll_now(run.id, now=self.now())
        await self.notifier.refresh_card(run)
        return run

    async def acknowledge(self, actor: Actor, run_id: int) -> tuple[RunRecord, bool]:
        run = await self.get(run_id)
        run, first = await self.store.runs.acknowledge(run.id, actor.user_id, now=self.now())
        await self.notifier.refresh_card(run)
        await self._audit(actor, "acknowledge", f"#{run.id}", "ok" if first else "already")
        return run, first

    async def mute(
        self, actor: Actor, pipeline_name: str, duration: timedelta, *, run_id: int | None = None, replace: bool = False
    ) -> Muted:
        pipeline = self.catalog.pipelines.get(pipeline_name)
        if pipeline is None:
            raise InvalidRequest(f"There is no pipeline *{escape(pipeline_name)}* in the catalog.")
        await self._authorize(actor, "change", pipeline, what=f"mute *{escape(pipeline_name)}*", target=pipeline_name)
        if duration <= timedelta(0) or duration > timedelta(days=30):
            raise InvalidRequest("Mute for between a minute and 30 days, like `1h`, `4h`, `1d`.")
        now = self.now()
        until = now + duration
        current = (await self.store.mutes.active(now=now)).get(pipeline_name)
        before = current[0] if current else None
        if before is not None and before > until and not replace:
            await self._audit(actor, "mute", pipeline_name, "already", f"kept until {before.isoformat()}")
            return Muted(until=before, asked=until, before=before, changed=False)
        await self.store.mutes.mute(pipeline_name, until=until, user_id=actor.user_id, now=now)
        await self._audit(actor, "mute", pipeline_name, "ok", f"until {until.isoformat()}")
        if run_id is not None:
            run = await self.store.runs.get(run_id)
            if run is not None:
                await self.notifier.refresh_card(run)
        return Muted(until=until, asked=until, before=before, changed=True)

    async def unmute(self, actor: Actor, pipeline_name: str) -> bool:
        pipeline = self.catalog.pipelines.get(pipeline_name)
        await self._authorize(actor, "change", pipeline, what=f"unmute *{escape(pipeline_name)}*", target=pipeline_name)
        found = await self.store.mutes.unmute(pipeline_name)
        await self._audit(actor, "unmute", pipeline_name, "ok" if found else "not muted")
        return found

    # -- pipeline operations (enable, disable, archive, reset) ------------------------------

    async def pipeline_op(self, actor: Actor, op: str, pipeline_name: str) -> str:
        pipeline = self.catalog.pipelines.get(pipeline_name)
        if pipeline is None:
            raise InvalidRequest(f"There is no pipeline *{escape(pipeline_name)}* in the catalog.")
        await self._authorize(actor, "change", pipeline, what=f"{op} *{escape(pipeline_name)}*", target=pipeline_name)
        capability = Capability(op)
        client = self.pool.client(pipeline.connection)
        if not client.can(capability):
            offered = ", ".join(sorted(c.value for c in client.offered())) or "nothing beyond run and status"
            raise InvalidRequest(f"{client.display_name} cannot {op} (it offers: {offered}).")
        try:
            async with self.pool.slot(pipeline.connection):
                await getattr(client, op)(pipeline.job)
        except ProviderError as exc:
            await self._audit(actor, op, pipeline_name, "failed", str(exc))
            raise UserError(f"Could not {op} *{escape(pipeline_name)}*: {escape(str(exc))}") from None
        await self._audit(actor, op, pipeline_name, "ok")
        return f"{_PAST[op]} *{escape(pipeline_name)}* on {client.display_name}."

    # -- helpers ----------------------------------------------------------------------------

    async def get(self, run_id: int) -> RunRecord:
        run = await self.store.runs.get(run_id)
        if run is None:
            raise InvalidRequest(f"There is no run #{run_id}. `/pipeline status` lists the runs in flight.")
        return run

    def _target(self, run: RunRecord) -> Pipeline | AdHoc:
        if run.pipeline:
            pipeline: Pipeline | None = self.catalog.pipelines.get(run.pipeline)
            if pipeline is None:
                raise InvalidRequest(f"*{escape(run.pipeline)}* is no longer in the catalog.")
            return pipeline
        return AdHoc(provider=run.provider, connection=run.connection, job=run.job)

    async def _authorize(
        self,
        actor: Actor,
        need: Need,
        pipeline: Pipeline | None,
        *,
        what: str,
        target: str,
        admin_if_adhoc: bool = False,
    ) -> None:
        try:
            await self.auth.check(actor, need if pipeline or not admin_if_adhoc else "admin", pipeline, what=what)
        except NotAllowed:
            await self._audit(actor, need, target, "refused")
            raise

    async def _audit(self, actor: Actor | None, action: str, target: str, outcome: str, detail: str = "") -> None:
        await self.store.audit.record(
            user_id=actor.user_id if actor else None,
            action=action,
            target=target,
            outcome=outcome,
            now=self.now(),
            detail=detail,
        )


_PAST = {"enable": "Enabled", "disable": "Disabled", "archive": "Archived", "reset": "Reset"}


def _unattended(run: RunRecord) -> bool:
    """A schedule's start: no person waits for a reply (a workflow's step is told by its workflow)."""
    return run.origin == RunOrigin.SCHEDULE


def _not_only_the_persons(run: RunRecord) -> bool:
    """A start that did not get going whose end is told beyond the reply (handed to ``Outcomes``): a schedule's
    (nobody waits for a reply), or a retry's, even a person's: typed before the policy's retry was decided, it took
    that retry's place and the failure's alert waits for it (the failure is announced now, with its owners)."""
    return _unattended(run) or run.retry_of is not None


def _ident(job: Mapping[str, Any]) -> str:
    return "/".join(str(v) for v in job.values() if v is not None)


def _params(params: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def _already_retried(run: RunRecord, retry: RunRecord) -> str:
    who = f" by <@{retry.started_by}>" if retry.started_by else ""
    return f"Run #{run.id} was already retried{who} as run #{retry.id}."
