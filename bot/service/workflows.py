"""Workflows: steps that are pipelines of any provider (or approvals), joined by on_success / on_failure.

A workflow run starts its first steps; when a step's run ends, the edges of that outcome start the next
steps; a failed step with no on_failure edge stops its branch. Approval steps wait for a permitted person
(or time out). One workflow card shows every step; Retry on it resumes from the failed steps, keeping
the ones that succeeded. Steps run with the workflow's authority: whoever may run the workflow may run
its steps.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot.catalog.catalog import Catalog
from bot.catalog.workflows import StepSpec, Workflow, render_template
from bot.errors import InvalidRequest, NotAllowed, UserError
from bot.models import RunState
from bot.ops.text import named, principal_mention
from bot.service.events import StepNotStarted, WorkflowStopped, WorkflowUndefined
from bot.service.notify import Notifier
from bot.service.permissions import Actor, Authorizer
from bot.service.runs import RunService, resolve_parameters
from bot.store import keys
from bot.store.records import RunOrigin, RunRecord
from bot.store.store import Store
from bot.store.workflow_runs import StepRecord, StepState, WorkflowRunRecord, WorkflowState

__all__ = ["WorkflowEngine"]

log = logging.getLogger(__name__)
Now = Callable[[], datetime]

#: a canceled step stops its branch as a failed one does (its on_failure edges), and Retry on the card runs it again
DONE_BAD = (StepState.FAILED, StepState.CANCELED, StepState.REJECTED, StepState.TIMED_OUT)
# a step claimed ("starting") whose claimer neither began it nor gave the claim back in this long (killed between
# the two) may be claimed again by whoever follows its predecessor again (recovery's replay of that end); a run
# the first claimer recorded meanwhile is adopted, never started twice
#: in the message of every start given up "unknown whether it started" (``TriggerOutcomeUnknown``, recovery's)
UNKNOWN_START = "whether it started"
#: a run passive watch found is the given-up step's if it began at most this long before the step's start (the
#: provider's clock against the bot's) or any time after
WATCH_SLACK = timedelta(minutes=1)
CLAIM_STALE = timedelta(minutes=2)  # also swept (``begin_stale_claims``): a claim whose end was already told


class WorkflowEngine:
    def __init__(
        self, store: Store, catalog: Catalog, runs: RunService, notifier: Notifier, auth: Authorizer, *, now: Now
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.runs = runs
        self.notifier = notifier
        self.auth = auth
        self.now = now

    def workflow(self, name: str) -> Workflow:
        found: Workflow | None = self.catalog.workflows.get(name)
        if found is None:
            raise InvalidRequest(f"There is no workflow {named(name)} in the catalog.")
        return found

    # -- start and resume -------------------------------------------------------------------

    async def start(
        self,
        actor: Actor | None,
        name: str,
        parameters: Mapping[str, str],
        *,
        channel: str | None,
        origin: RunOrigin = RunOrigin.SLACK,
    ) -> WorkflowRunRecord:
        workflow = self.workflow(name)
        if actor is not None:
            await self.auth.check(actor, "run", workflow, what=f"run the workflow {named(name)}")
        params = resolve_parameters(workflow, parameters)
        where = channel or workflow.channel or self.catalog.defaults.channel
        record = await self.store.workflows.create(
            name,
            workflow.steps,
            parameters=params,
            origin=origin,
            started_by=actor.user_id if actor else None,
            channel=where,
            now=self.now(),
        )
        await self.store.audit.record(
            user_id=actor.user_id if actor else None,
            action="run",
            target=f"workflow {name}",
            outcome="ok",
            now=self.now(),
            detail=f"workflow run #{record.id}",
        )
        await self.render(record.id)
        for step in workflow.start:
            await self._begin(record.id, step)
        return record

    async def resume(self, actor: Actor, workflow_run_id: int) -> WorkflowRunRecord:
        """Retry on the workflow card: run the failed steps again; the ones that succeeded stay done."""
        record = await self._get(workflow_run_id)
        workflow = self.workflow(record.workflow)
        if _defined(self.catalog, record) is None:
            raise InvalidRequest(
                f"The workflow {named(workflow.name)} has other steps in the catalog than when run #{record.id} "
                f"started, so that run cannot resume: run the workflow again."
            )
        await self.auth.check(actor, "run", workflow, what=f"resume the workflow {named(workflow.name)}")
        failed = [s for s, st in record.steps.items() if st.state in DONE_BAD]
        if record.state is not WorkflowState.FAILED or not failed:
            raise InvalidRequest(f"Workflow run #{record.id} has no failed step to resume from ({record.state}).")
        now = self.now()
        await self.store.workflows.set_state(record.id, WorkflowState.RUNNING, now=now)
        for step in failed:
            if await self.store.workflows.set_step(record.id, step, StepState.PENDING, now=now, expect=DONE_BAD):
                await self._begin(record.id, step)
        await self.store.audit.record(
            user_id=actor.user_id,
            action="resume",
            target=f"workflow {workflow.name}",
            outcome="ok",
            now=now,
            detail=f"#{record.id}: {', '.join(failed)}",
        )
        return await self._get(record.id)

    # -- steps ------------------------------------------------------------------------------

    async def _begin(self, workflow_run_id: int, step_name: str) -> None:
        """Begin a pending step, once: whoever claims it (pending -> starting) begins it; two copies of one end
        handled at the same moment (or a replay racing the first handling) find it claimed and leave it."""
        now = self.now()
        steps = self.store.workflows
        if _defined(self.catalog, await self._get(workflow_run_id)) is None:
            # a claim left by a process that began it by the old catalog is given back: the run stops (announced)
            await steps.set_step(workflow_run_id, step_name, StepState.PENDING, now=now, expect=(StepState.STARTING,))
            await self._stop_undefined(workflow_run_id)
            return
        if not await steps.set_step(
            workflow_run_id, step_name, StepState.STARTING, now=now, expect=(StepState.PENDING,)
        ):
            stale = now - CLAIM_STALE
            if not await steps.set_step(
                workflow_run_id,
                step_name,
                StepState.STARTING,
                now=now,
                expect=(StepState.STARTING,),
                unchanged_since=stale,
            ):
                return
        try:
            await self._begin_claimed(workflow_run_id, step_name)
        except BaseException:
            # not begun (the database away, the process stopping): the claim is given back so that recovery's
            # replay of the end before it begins it; if the database is away for this too, it lapses (CLAIM_STALE)
            with contextlib.suppress(Exception):
                await steps.set_step(
                    workflow_run_id, step_name, StepState.PENDING, now=self.now(), expect=(StepState.STARTING,)
                )
            raise

    async def _begin_claimed(self, workflow_run_id: int, step_name: str) -> None:
        record = await self._get(workflow_run_id)
        workflow = self.workflow(record.workflow)
        step = workflow.steps[step_name]
        now = self.now()
        if step.approval is not None:
            await self.store.workflows.set_step(
                record.id, step_name, StepState.WAITING, now=now, due_at=now + step.approval.timeout
            )
            await self.render(record.id)
            return
        assert step.pipeline is not None
        pipeline = self.catalog.pipelines[step.pipeline]
        params = {k: render_template(v, record.parameters) for k, v in step.parameters.items()}
        actor = Actor(record.started_by) if record.started_by else None
        # begun before a crash that kept the step from being marked running: that run is the step's; so is a run that
        # succeeded after the step ended (Retry adopts it): the recorded run, whose start was given up and which was
        # answered after all, or a later attempt of it (its retry policy's, a person's Retry on its card)
        runs = [r for r in await self.store.runs.of_workflow(record.id) if r.step == step_name]
        since = _attempts_since(runs, record.steps[step_name].run_id)
        begun = [r for r in runs if not r.final or (r.id in since and r.run_state is RunState.SUCCEEDED)]
        if not begun and runs:  # its last run given up "unknown whether it started" may have started after all
            found = await self._found_by_watch(record.id, step_name, step.pipeline, runs[-1])
            begun = [found] if found is not None else []
        if begun:
            # from the claim only: the run's end, told between the read above and this, moved the step on already
            # (ended, and what follows it begun); running over that would leave the step running for ever
            adopted = await self.store.workflows.set_step(
                record.id, step_name, StepState.RUNNING, now=now, run_id=begun[-1].id, expect=(StepState.STARTING,)
            )
            if not adopted:
                await self.render(record.id)
                return
            if begun[-1].final:
                await self.step_ended(begun[-1])
                return
            await self.render(record.id)
            return
        try:
            run = await self.runs.start(
                actor,
                pipeline,
                params,
                channel=record.channel,
                origin=RunOrigin.WORKFLOW,
                authorized=True,
                workflow_run_id=record.id,
                step=step_name,
            )
        except UserError as exc:
            # a step given up by recovery meanwhile (its run's start) was ended and followed there already
            if not await self.store.workflows.set_step(
                record.id, step_name, StepState.FAILED, now=self.now(), expect=(StepState.STARTING, StepState.RUNNING)
            ):
                return
            note = StepNotStarted(step_name, str(exc))
            await self.notifier.workflow_note(record, keys.step_not_started_note(step_name), note)
            await self._follow(record.id, step_name, succeeded=False)
            return
        if not await self.store.workflows.set_step(
            record.id,
            step_name,
            StepState.RUNNING,
            now=self.now(),
            run_id=run.id,
            expect=(StepState.STARTING, StepState.RUNNING),
        ):
            # ended meanwhile: its start given up by recovery (this process taken for gone) and the workflow stopped,
            # announced; the run's tracking resumed with the answer, the workflow stays stopped until Retry (which
            # adopts this run); or its end told already (the trigger's answer said it ended) and followed
            await self.render(record.id)
            return
        if run.final:  # its trigger's answer said it ended: its end came before the step was running
            await self.step_ended(run)
            return
        await self.render(record.id)

    async def begin_stale_claims(self) -> int:
        """Steps claimed and never begun (the claimer killed between the two, the end before them already told):
        begun now, or given the run their claimer had recorded."""
        found = await self.store.workflows.stale_claims(self.now() - CLAIM_STALE)
        for workflow_run_id, step in found:
            await self._begin(workflow_run_id, step)
        return len(found)

    async def _found_by_watch(
        self, workflow_run_id: int, step_name: str, pipeline: str, given_up: RunRecord
    ) -> RunRecord | None:
        """The step's run given up "unknown whether it started" (recovery, or a trigger whose connection broke) may
        have started after all: passive watch then found it as a run of its own, its provider id matching none of
        ours. Such a run of the step's pipeline, begun since shortly before the given-up start, is the step's."""
        if not given_up.final or given_up.provider_run_id is not None:
            return None
        if given_up.run_state is not RunState.UNKNOWN or UNKNOWN_START not in given_up.message:
            return None  # refused ("did not start"): nothing of it can be running
        # the broken trigger's run began while it was being sent: by the time the start was given up, give or take
        # the slack; a run begun hours later (by hand, by the provider's own schedule) is not the step's
        since = given_up.created_at - WATCH_SLACK
        until = (given_up.ended_at or given_up.created_at) + WATCH_SLACK
        found = await self.store.runs.adopt_watched(
            pipeline, since=since, until=until, workflow_run_id=workflow_run_id, step=step_name
        )
        if found is not None:
            log.info("workflow run %s: step %s takes run %s (provider run %s), found by watch after its start was "
                     "given up", workflow_run_id, step_name, found.id, found.provider_run_id)
        return found

    async def step_ended(self, run: RunRecord) -> None:
        """A step's run ended (after its retry policy, if any, was used up); "starting": its start was given up
        before the step was marked running (the process died during its trigger)."""
        if run.workflow_run_id is None or run.step is None:
            return
        succeeded = run.run_state is RunState.SUCCEEDED
        state = StepState.SUCCEEDED if succeeded else _step_state(run)
        moved = await self.store.workflows.set_step(
            run.workflow_run_id,
            run.step,
            state,
            now=self.now(),
            run_id=run.id,
            expect=(StepState.RUNNING, StepState.STARTING),
        )
        if moved:
            await self._follow(run.workflow_run_id, run.step, succeeded=succeeded)
            return
        # told again (recovery replays an end whose handling was cut short: the database away, the process killed):
        # the step ended with this run, but what follows it may never have been begun; only pending steps are
        record = await self._get(run.workflow_run_id)
        ended = record.steps.get(run.step)
        if (
            record.state is WorkflowState.RUNNING
            and ended is not None
            and (ended.state, ended.run_id) == (state, run.id)
        ):
            await self._follow(run.workflow_run_id, run.step, succeeded=succeeded)

    async def decide(self, actor: Actor, workflow_run_id: int, step_name: str, approve: bool) -> str:
        record = await self._get(workflow_run_id)
        if _defined(self.catalog, record) is None:
            raise InvalidRequest(await self._undecidable(actor, record, step_name, approve))
        workflow = self.workflow(record.workflow)
        step = workflow.steps.get(step_name)
        if step is None or step.approval is None:
            raise InvalidRequest("That is not an approval step.")
        if actor.user_id not in self.auth.admins and not await self.auth.matches(actor, step.approval.approvers):
            who = ", ".join(principal_mention(p) for p in step.approval.approvers)
            await self.store.audit.record(
                user_id=actor.user_id,
                action="approve" if approve else "reject",
                target=f"workflow {workflow.name} #{record.id}",
                outcome="refused",
                now=self.now(),
            )
            raise NotAllowed(f"Only {who} may decide this step.")
        state = StepState.SUCCEEDED if approve else StepState.REJECTED
        if not await self.store.workflows.set_step(
            record.id, step_name, state, now=self.now(), decided_by=actor.user_id, expect=(StepState.WAITING,)
        ):
            current = (await self._get(record.id)).steps[step_name]
            by = f" by <@{current.decided_by}>" if current.decided_by else ""
            raise InvalidRequest(f"This step was already decided ({current.state}{by}).")
        await self.store.audit.record(
            user_id=actor.user_id,
            action="approve" if approve else "reject",
            target=f"workflow {workflow.name} #{record.id}",
            outcome="ok",
            now=self.now(),
            detail=step_name,
        )
        await self._follow(record.id, step_name, succeeded=approve)
        return "approved" if approve else "rejected"

    async def _undecidable(self, actor: Actor, record: WorkflowRunRecord, step_name: str, approve: bool) -> str:
        """A decision on a run whose workflow is not in the catalog as it ran leads nowhere (the run stayed "running"
        until the approval's timeout: hours, days): a waiting one stops the run now, announced, saying why."""
        shown = named(record.workflow)
        step = record.steps.get(step_name)
        if record.state is not WorkflowState.RUNNING or step is None or step.state is not StepState.WAITING:
            return f"Run #{record.id} of the workflow {shown} waits for no decision of this step ({record.state})."
        action, target = "approve" if approve else "reject", f"workflow {record.workflow} #{record.id}"
        await _audit(self.store, actor, action, target, "refused", f"{step_name}: the workflow is not in the catalog "
                     "as it ran", self.now())
        await _may_stop(self.auth, self.catalog, actor, record, step_name)
        await _audit_stopped(self.store, actor, target, step_name, self.now())
        await self._stop_undefined(record.id)
        return (
            f"The workflow {shown} left the bot's catalog (pipelines.yml), or its steps changed there, while run "
            f"#{record.id} waited for this approval, so that run cannot go on and stops (see its card): run the "
            "workflow again once the catalog has it as wanted."
        )

    async def expire_approvals(self) -> int:
        expired = 0
        for workflow_run_id, step in await self.store.workflows.approvals_due(self.now()):
            if await self.store.workflows.set_step(
                workflow_run_id, step, StepState.TIMED_OUT, now=self.now(), expect=(StepState.WAITING,)
            ):
                expired += 1
                await self._follow(workflow_run_id, step, succeeded=False)
        return expired

    async def _follow(self, workflow_run_id: int, step_name: str, *, succeeded: bool) -> None:
        record = await self._get(workflow_run_id)
        workflow = _defined(self.catalog, record)
        if workflow is None:
            # it raised here ("There is no workflow …") from the end of a step's run, before its failure's alert: the
            # failure never told, the run never marked shown, recovery's ERROR every 15 minutes
            await self._stop_undefined(workflow_run_id)
            return
        step = workflow.steps[step_name]
        for target in step.on_success if succeeded else step.on_failure:
            if record.steps[target].state in (StepState.PENDING, StepState.STARTING):  # a claim is checked by _begin
                await self._begin(record.id, target)
        await self._finish_if_done(record.id)

    async def _finish_if_done(self, workflow_run_id: int) -> None:
        record = await self._get(workflow_run_id)
        busy = (StepState.STARTING, StepState.RUNNING, StepState.WAITING)
        if record.state is not WorkflowState.RUNNING or any(s.state in busy for s in record.steps.values()):
            await self.render(record.id)
            return
        bad = [name for name, s in record.steps.items() if s.state in DONE_BAD]
        state = WorkflowState.FAILED if bad else WorkflowState.SUCCEEDED
        await self.store.workflows.set_state(record.id, state, now=self.now())
        await self.render(record.id)
        if bad:
            workflow = _defined(self.catalog, record) or _stand_in(record, {})
            steps = tuple((b, record.steps[b].state) for b in bad)
            # once per stop, not once per workflow run: a workflow resumed by Retry that stops again is told again;
            # two branches ending at once read the same ended steps, so they post one note
            ends = ",".join(f"{b}={_ending(record.steps[b])}" for b in bad)
            key = "failed:" + hashlib.sha256(ends.encode()).hexdigest()[:16]  # outbox keys are short; steps may be many
            await self.notifier.workflow_note(record, key, WorkflowStopped(workflow.name, steps, workflow.owners))

    async def _stop_undefined(self, workflow_run_id: int) -> None:
        """The run's workflow left the catalog or reshaped its steps: nothing more of it starts. Once its steps in
        flight have ended (their runs are followed and told as any), it stops, said in its card's thread."""
        record = await self._get(workflow_run_id)
        # an approval waiting is not waited for: whatever is decided, nothing can follow it (it kept the run
        # "running" until its timeout); it is given back, one of the steps that cannot start
        busy = (StepState.STARTING, StepState.RUNNING)
        if record.state is not WorkflowState.RUNNING or any(s.state in busy for s in record.steps.values()):
            await self.render(record.id)
            return
        waiting = [name for name, s in record.steps.items() if s.state is StepState.WAITING]
        for name in waiting:
            await self.store.workflows.set_step(
                record.id, name, StepState.PENDING, now=self.now(), expect=(StepState.WAITING,)
            )
        if waiting:
            record = await self._get(workflow_run_id)
        skipped = tuple(name for name, s in record.steps.items() if s.state is StepState.PENDING)
        if not skipped and not any(s.state in DONE_BAD for s in record.steps.values()):
            # every step ended and succeeded: nothing was kept from starting, so it succeeded (it was told
            # "stopped … cannot be resumed", a success told as a failure); a failed one keeps the note below, as
            # Retry cannot resume it
            await self._finish_if_done(record.id)
            return
        await self.store.workflows.set_state(record.id, WorkflowState.FAILED, now=self.now())
        await self.render(record.id)
        log.warning("workflow run %s stopped: workflow %s is not in the catalog as it ran", record.id, record.workflow)
        await self.notifier.workflow_note(record, "undefined", WorkflowUndefined(record.workflow, skipped))

    # -- the card ---------------------------------------------------------------------------

    async def render(self, workflow_run_id: int) -> None:
        # the ticket before the reads: two steps ending in one poll render at once, and the card drawn from the
        # earlier reads must not be the one written last (a step shown running, the workflow never ended)
        ticket = await self.store.cards.draw_ticket_for(keys.workflow_card(workflow_run_id))
        record = await self._get(workflow_run_id)
        if record.channel is None:
            return
        runs = {r.id: r for r in await self.store.runs.of_workflow(record.id)}
        workflow = _defined(self.catalog, record) or _stand_in(record, runs)
        await self.notifier.reporter.workflow_card(record, workflow, runs, ticket=ticket)

    async def _get(self, workflow_run_id: int) -> WorkflowRunRecord:
        record = await self.store.workflows.get(workflow_run_id)
        if record is None:
            raise InvalidRequest(f"There is no workflow run #{workflow_run_id}.")
        return record


async def _may_stop(auth: Authorizer, catalog: Catalog, actor: Actor, record: WorkflowRunRecord, step: str) -> None:
    """Who may stop a run whose approval waits, its workflow gone: an admin, who started it, or an approver of the
    step of that name where the catalog still has the workflow (its steps changed). Its approvers went with its
    definition: anyone's click stopped the run, which a rollback of the deploy would have let them decide."""
    if actor.user_id in auth.admins or actor.user_id == record.started_by:
        return
    found = catalog.workflows.get(record.workflow)
    spec = found.steps.get(step) if found is not None else None
    if spec is not None and spec.approval is not None and await auth.matches(actor, spec.approval.approvers):
        return
    who = f"<@{record.started_by}> (who started it) or an admin" if record.started_by else "an admin"
    raise NotAllowed(
        f"The workflow {named(record.workflow)} left the bot's catalog (pipelines.yml), or its steps changed there, "
        f"while run #{record.id} waited for this approval, so it cannot be decided: only {who} may stop that run."
    )


async def _audit_stopped(store: Store, actor: Actor, target: str, step: str, now: datetime) -> None:
    """The decision was refused, the run stopped by this person: the audit says both (it read "refused" alone, as
    a click that changed nothing)."""
    detail = f"{step}: its approval clicked, the workflow gone from the catalog"
    await _audit(store, actor, "stop workflow", target, "ok", detail, now)


async def _audit(
    store: Store, actor: Actor, action: str, target: str, outcome: str, detail: str, now: datetime
) -> None:
    await store.audit.record(user_id=actor.user_id, action=action, target=target, outcome=outcome, now=now,
                             detail=detail)


def _defined(catalog: Catalog, record: WorkflowRunRecord) -> Workflow | None:
    """The catalog's definition of ``record``'s workflow, while it has the run's steps: None once a deploy removed
    the workflow or renamed, added or removed its steps (the run cannot go on by it)."""
    found: Workflow | None = catalog.workflows.get(record.workflow)
    return found if found is not None and set(found.steps) == set(record.steps) else None


def _attempts_since(runs: list[RunRecord], recorded: int | None) -> set[int]:
    """The run ``recorded`` and every later attempt of it (a retry of it, of its retry, and so on)."""
    chain = {recorded} if recorded is not None else set()
    for run in sorted(runs, key=lambda r: r.id):  # a retry is always recorded after the run it retries
        if run.retry_of in chain:
            chain.add(run.id)
    return chain


def _stand_in(record: WorkflowRunRecord, runs: Mapping[int, RunRecord]) -> Workflow:
    """The run's card drawn without its definition (gone from the catalog): its steps as recorded, each shown
    with its run's pipeline."""

    def pipeline(step: StepRecord) -> str:
        run = runs.get(step.run_id) if step.run_id is not None else None
        return (run.pipeline if run is not None else None) or "?"

    steps = {name: StepSpec(pipeline=pipeline(step)) for name, step in record.steps.items()}
    return Workflow(name=record.workflow, steps=steps, start=())


def _ending(step: StepRecord) -> str:
    """What tells one end of a step from another: its run, else when it was decided or was due (an approval)."""
    if step.run_id is not None:
        return f"#{step.run_id}"
    when = step.decided_at or step.due_at
    return when.isoformat() if when else ""


def _step_state(run: RunRecord) -> StepState:
    """The end of a step whose run did not succeed: canceled (someone asked for it, or ended a run the bot could not
    follow; recorded and shown so, not as a failure of the pipeline), else failed."""
    return StepState.CANCELED if run.ended_without_outcome else StepState.FAILED
