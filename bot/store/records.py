"""Frozen records the store hands out: never rows, never sessions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.models import Json, JsonValue, RunState, RunStatus, TaskStatus

__all__ = [
    "GONE_FROM_CATALOG",
    "STARTING",
    "STOPPED_BY",
    "STOPPED_WHY",
    "WAITING",
    "AuditEntry",
    "CardRecord",
    "NewRun",
    "OutboxItem",
    "OutboxKind",
    "RunOrigin",
    "RunRecord",
    "StoredState",
    "Transition",
    "run_duration",
]


class StoredState(enum.StrEnum):
    """What a run's ``state`` column holds: a ``RunState`` (the provider's word, normalized), or one of the two
    states of a run the provider has not answered for yet. Equal to the ``RunState`` of the same value."""

    STARTING = "starting"  # recorded before its trigger is sent; the trigger has not answered yet
    WAITING = "waiting"  # a retry waiting for its backoff to end (or a start held by a provider's cap)
    QUEUED = RunState.QUEUED.value
    RUNNING = RunState.RUNNING.value
    SUCCEEDED = RunState.SUCCEEDED.value
    FAILED = RunState.FAILED.value
    CANCELED = RunState.CANCELED.value
    UNKNOWN = RunState.UNKNOWN.value


STARTING = StoredState.STARTING
WAITING = StoredState.WAITING

#: the key of a run's ``extra`` naming who ended it because the bot could not follow it any more (its connection
#: left the catalog: ``RunStore.stop_following``); such a run is final and ``unknown``
STOPPED_BY = "stopped_by"
#: why the bot could not follow it, as the replica that stopped it saw its catalog (``ClientPool.why_gone``)
STOPPED_WHY = "stopped_why"
GONE_FROM_CATALOG = "its connection {connection} is no longer in the bot's catalog (pipelines.yml)"


class RunOrigin(enum.StrEnum):
    """Who started a run (``runs.origin``; a workflow run's ``origin`` takes the first two)."""

    SLACK = "slack"  # a person, from Slack
    SCHEDULE = "schedule"  # the bot's schedule of pipelines.yml
    RETRY = "retry"  # the bot's automatic retry
    WORKFLOW = "workflow"  # a step of a workflow
    WATCH = "watch"  # started outside the bot, found by passive watch


class OutboxKind(enum.StrEnum):
    """How an outbox message is sent (``outbox.kind``)."""

    THREAD = "thread"  # a reply under a living message (a card), once that is posted
    POST = "post"  # a message of its own in a channel
    #: a Workflow Builder step's completion: ``channel`` holds its function_execution_id, ``blocks`` one object,
    #: ``{"outputs": {...}}`` or ``{"error": "..."}``; sent once its run's card is posted (the card's link is an
    #: output)
    FUNCTION = "function"


@dataclass(frozen=True, slots=True)
class NewRun:
    provider: str
    connection: str
    job: Mapping[str, JsonValue]
    parameters: Mapping[str, str]
    origin: RunOrigin
    pipeline: str | None = None
    started_by: str | None = None
    channel: str | None = None
    retry_of: int | None = None
    attempt: int = 1
    provider_run_id: str | None = None  # known at once for runs found by the watcher
    workflow_run_id: int | None = None
    step: str | None = None
    start_at: datetime | None = None  # a retry waiting for its backoff: started by the poller then
    by_policy: bool = False  # a retry the pipeline's retry policy made (not a person's, whoever started the run)


def run_duration(
    created_at: datetime, started_at: datetime | None, ended_at: datetime | None, *, final: bool, now: datetime
) -> timedelta | None:
    """How long a run took (ended), or has taken so far (``now``): from its start at the provider, else its
    creation; None for a run that ended without an end time."""
    end = ended_at or (None if final else now)
    return end - (started_at or created_at) if end else None


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    pipeline: str | None
    provider: str
    connection: str
    job: Mapping[str, JsonValue]
    parameters: Mapping[str, str]
    provider_run_id: str | None
    state: StoredState
    raw_status: str
    message: str
    warning: str
    tasks: tuple[TaskStatus, ...]
    extra: Mapping[str, str]
    final: bool
    origin: RunOrigin
    started_by: str | None
    channel: str | None
    retry_of: int | None
    attempt: int
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    next_poll_at: datetime | None
    polls: int
    unknown_since: datetime | None
    last_error: str
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    cancel_requested_by: str | None = None
    cancel_pending_since: datetime | None = None  # asked, the provider's answer not recorded yet
    cancel_asks: int = 0  # cancel calls on their way to the provider, their answers not heard yet
    cancel_unconfirmed: bool = False  # a cancel call's answer was lost: the provider may have taken it
    notified_state: StoredState | None = None
    workflow_run_id: int | None = None
    step: str | None = None

    @property
    def run_state(self) -> RunState | None:
        """The normalized state; None while the trigger has not answered (or a retry waits to start)."""
        return None if self.state in (STARTING, WAITING) else RunState(self.state)

    @property
    def stopped_by(self) -> str | None:
        """Who ended the run because the bot could not follow it any more (``RunStore.stop_following``)."""
        return self.extra.get(STOPPED_BY) if self.final else None

    @property
    def stopped_why(self) -> str:
        """Why the bot could not follow it when a person stopped following it ("its connection … is no longer in the
        bot's catalog", or is another provider's now); the first words for a run stopped before this was kept."""
        why = self.extra.get(STOPPED_WHY)
        return why if isinstance(why, str) and why else GONE_FROM_CATALOG.format(connection=self.connection)

    @property
    def ended_without_outcome(self) -> bool:
        """Ended with no outcome of its own: canceled, or no longer followed (a person ended it when the bot could
        not follow it, maybe running still). No failure to alert, no failed step to resume; its card offers Retry."""
        return self.final and (self.run_state is RunState.CANCELED or self.stopped_by is not None)

    @property
    def name(self) -> str:
        """What people call it: the pipeline, or provider:job for ad-hoc runs."""
        if self.pipeline:
            return self.pipeline
        ident = next(iter(self.job.values()), "?") if self.job else "?"
        return f"{self.provider}:{ident}"

    def duration(self, now: datetime) -> timedelta | None:
        return run_duration(self.created_at, self.started_at, self.ended_at, final=self.final, now=now)

    def as_status(self) -> RunStatus | None:
        if self.provider_run_id is None or self.run_state is None:
            return None
        return RunStatus(
            run_id=self.provider_run_id,
            state=self.run_state,
            raw_status=self.raw_status,
            message=self.message,
            tasks=self.tasks,
            started_at=self.started_at,
            ended_at=self.ended_at,
            warning=self.warning,
            final=self.final,
            extra=self.extra,
        )


@dataclass(frozen=True, slots=True)
class Transition:
    """A run's state changed: what it was and what it is. ``ended``: this change ended the run, also when its state
    stays what it was (a status held too long, ended "unknown" by the poller as it showed "unknown"): its end is to be
    acted on all the same (a workflow's next step, a retry, a waiting Workflow Builder step)."""

    run: RunRecord
    before: StoredState
    after: StoredState
    ended: bool = False

    @property
    def ends(self) -> bool:
        """Whether the run's end is told by this change (it ended, or reached its final state with it)."""
        return self.run.final and (self.ended or self.before != self.run.state)


@dataclass(frozen=True, slots=True)
class CardRecord:
    id: int
    key: str
    run_id: int | None
    channel: str
    ts: str | None
    text: str
    blocks: list[Json]
    version: int
    sent_version: int
    attempting_since: datetime | None
    attempts: int


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    key: str
    run_id: int | None
    kind: OutboxKind
    channel: str | None
    text: str
    blocks: list[Json] | None
    attempts: int
    attempting_since: datetime | None
    created_at: datetime
    #: for a thread reply: the card's channel and ts (None while the card is not posted yet)
    thread_channel: str | None = None
    thread_ts: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    user_id: str | None
    action: str
    target: str
    outcome: str
    detail: str = ""
    extra: Mapping[str, JsonValue] = field(default_factory=dict)
    #: the right that let the action through; None when refused
    right: str | None = None
