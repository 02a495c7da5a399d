"""What the Block Kit builders are given: frozen values of a run, an alert and a workflow run, made from the
store's records on the domain's side of the rendering boundary (``run_view``, ``alert_view``,
``workflow_view``), so ``bot.slack.blocks`` knows nothing of the store.

Each view holds only what a message shows; the reporter and the command handlers build them just before they
call a builder. Its states are the store's enums (``RunOrigin``, ``AlertState``, ``StepState``…), re-exported
here so the builders compare members, never strings, without importing the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.models import RunState, TaskStatus
from bot.store.alert_events import AlertEvent, EventKind
from bot.store.alerting import Alert, AlertKind, AlertState
from bot.store.paging import Page, PageState  # an alert's PagerDuty page: already a frozen value
from bot.store.records import WAITING, RunOrigin, RunRecord, StoredState, run_duration
from bot.store.workflow_runs import StepState, WorkflowRunRecord, WorkflowState

__all__ = [
    "AlertKind",
    "AlertState",
    "AlertStory",
    "AlertView",
    "EventKind",
    "Muted",
    "Page",
    "PageState",
    "RunOrigin",
    "RunView",
    "StepState",
    "StepView",
    "StoredState",
    "TimelineEntry",
    "WorkflowState",
    "WorkflowView",
    "alert_view",
    "run_view",
    "timeline_entry",
    "workflow_view",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunView:
    """One run as a message shows it."""

    id: int
    name: str  # the pipeline, or provider:job for an ad-hoc run
    pipeline: str | None
    run_state: RunState | None  # None while its trigger has not answered, or a retry waits to start
    waiting: bool  # a retry waiting for its backoff to end
    provider_run_id: str | None
    raw_status: str
    message: str
    warning: str
    tasks: tuple[TaskStatus, ...]
    extra: Mapping[str, str]
    final: bool
    origin: RunOrigin
    started_by: str | None
    parameters: Mapping[str, str]
    retry_of: int | None
    attempt: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    next_poll_at: datetime | None
    unknown_since: datetime | None
    acknowledged_by: str | None
    canceled_by: str | None = None  # who asked for the run's cancel (a run canceled before it started: who did)
    stopped_by: str | None = None  # who ended it because the bot could not follow it (its connection left the catalog)
    connection: str = ""  # the connection it was recorded on (named in ``stopped_why``)
    stopped_why: str = ""  # why it could not: "its connection … is no longer in the bot's catalog (pipelines.yml)"

    def duration(self, now: datetime) -> timedelta | None:
        return run_duration(self.created_at, self.started_at, self.ended_at, final=self.final, now=now)


def run_view(run: RunRecord) -> RunView:
    return RunView(
        id=run.id,
        name=run.name,
        pipeline=run.pipeline,
        run_state=run.run_state,
        waiting=run.state == WAITING,
        provider_run_id=run.provider_run_id,
        raw_status=run.raw_status,
        message=run.message,
        warning=run.warning,
        tasks=run.tasks,
        extra=run.extra,
        final=run.final,
        origin=RunOrigin(run.origin),
        started_by=run.started_by,
        parameters=run.parameters,
        retry_of=run.retry_of,
        attempt=run.attempt,
        created_at=run.created_at,
        updated_at=run.updated_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
        next_poll_at=run.next_poll_at,
        unknown_since=run.unknown_since,
        acknowledged_by=run.acknowledged_by,
        canceled_by=run.cancel_requested_by,
        stopped_by=run.stopped_by,
        stopped_why=run.stopped_why if run.stopped_by else "",
        connection=run.connection,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineEntry:
    """One line of an alert's timeline."""

    kind: EventKind
    at: datetime
    actor: str | None  # a Slack user id; None: the bot (a run, the retry policy)
    run_id: int | None
    detail: str
    link: str | None = None  # the permalink of the card of the run it names (a retry's)
    #: a retry's that ended with no outcome of its own: "canceled", or "no longer followed" (``stopped_by``)
    retry_ended: str | None = None
    retry_ended_by: str | None = None  # who canceled it, or stopped following it
    retry_ended_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertStory:
    """What an alert's own message tells beyond the alert: its timeline, oldest first, and its failed run with
    its links. Gathered by the service (``bot.service.alert_story``), empty where nothing was gathered."""

    timeline: tuple[TimelineEntry, ...] = ()
    run: RunView | None = None  # the latest failed run
    console_url: str | None = None
    card_link: str | None = None  # the permalink of that run's card

    @property
    def acknowledged_by(self) -> str | None:
        """Who acknowledged it since it last (re)opened."""
        who = None
        for entry in self.timeline:
            if entry.kind is EventKind.ACKNOWLEDGED:
                who = entry.actor
            elif entry.kind in (EventKind.REOPENED, EventKind.RESOLVED):
                who = None
        return who

    @property
    def muted_until(self) -> datetime | None:
        """Until when the latest mute of the pipeline, set since the alert opened, lasts (None: none was set, or it
        was lifted since)."""
        until = None
        for entry in self.timeline:
            if entry.kind is EventKind.MUTED:
                with contextlib.suppress(ValueError):
                    until = datetime.fromisoformat(entry.detail)
            elif entry.kind is EventKind.UNMUTED:
                until = None
        return until


def timeline_entry(event: AlertEvent, link: str | None = None, retry: RunRecord | None = None) -> TimelineEntry:
    """``retry``: the run a retry's event names, whose end the line tells when a person ended it (canceled, or
    stopped following it): the alert's failure then stands, and the timeline says why no outcome followed."""
    ended, by = None, None
    if retry is not None and retry.final and retry.stopped_by:
        ended, by = "no longer followed", retry.stopped_by
    elif retry is not None and retry.final and retry.run_state is RunState.CANCELED:
        ended, by = "canceled", retry.cancel_requested_by
    return TimelineEntry(
        kind=event.kind, at=event.at, actor=event.actor, run_id=event.run_id, detail=event.detail, link=link,
        retry_ended=ended, retry_ended_by=by, retry_ended_at=retry.ended_at if ended and retry else None,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertView:
    """One alert (a pipeline's failures, or a connection that does not answer) as its message shows it."""

    id: int
    kind: AlertKind
    pipeline: str | None
    connection: str | None
    state: AlertState
    count: int
    last_run_id: int | None
    message: str
    muted: bool
    first_at: datetime
    recovered_at: datetime | None
    recovered_by_run: int | None
    story: AlertStory = AlertStory()


def alert_view(alert: Alert, story: AlertStory | None = None) -> AlertView:
    return AlertView(
        story=story or AlertStory(),
        id=alert.id,
        kind=AlertKind(alert.kind),
        pipeline=alert.pipeline,
        connection=alert.connection,
        state=AlertState(alert.state),
        count=alert.count,
        last_run_id=alert.last_run_id,
        message=alert.message,
        muted=alert.muted,
        first_at=alert.first_at,
        recovered_at=alert.recovered_at,
        recovered_by_run=alert.recovered_by_run,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StepView:
    state: StepState
    run_id: int | None
    decided_by: str | None
    due_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowView:
    """One workflow run and its steps, by name."""

    id: int
    workflow: str
    parameters: Mapping[str, str]
    state: WorkflowState
    started_by: str | None
    created_at: datetime
    steps: Mapping[str, StepView]


def workflow_view(record: WorkflowRunRecord) -> WorkflowView:
    return WorkflowView(
        id=record.id,
        workflow=record.workflow,
        parameters=record.parameters,
        state=WorkflowState(record.state),
        started_by=record.started_by,
        created_at=record.created_at,
        steps={
            name: StepView(
                state=StepState(step.state), run_id=step.run_id, decided_by=step.decided_by, due_at=step.due_at
            )
            for name, step in record.steps.items()
        },
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Muted:
    """What a mute did: ``until`` is the mute in force now, ``before`` the one it had (None: none).

    ``changed`` is False when the pipeline was already muted for longer than asked and the mute was kept: a mute
    never silently shortens a longer one; shortening takes ``replace=True`` (an explicit button)."""

    until: datetime
    asked: datetime
    before: datetime | None
    changed: bool
