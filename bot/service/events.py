"""What the domain tells people, as values: the ``Reporter`` interface and what it is told.

Services and jobs say what happened (a run's card changed, a run failed, a note in a run's or a workflow's
thread, an alert opened, repeated or resolved, a connection went down or came back, a run seems stuck, the day's
digest) to a ``Reporter``. The Slack side (``bot.slack.reporter.SlackReporter``) renders each as Block Kit and
hands it to delivery: the run's card and the messages are written to the store (``cards``, ``outbox``) and
``bot.delivery`` sends them. Nothing here knows mrkdwn or Block Kit; message keys stay with the domain, since
they are what makes a message recorded twice be sent once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

from bot.catalog.workflows import Workflow
from bot.service.evidence import Evidence
from bot.service.views import AlertStory, RunView
from bot.store.alerting import Alert
from bot.store.records import RunRecord, StoredState
from bot.store.workflow_runs import StepState, WorkflowRunRecord

__all__ = [
    "TREND_RUNS",
    "CancelAsked",
    "CardView",
    "DigestData",
    "DigestRun",
    "EndedOddly",
    "Escalation",
    "Interrupted",
    "PipelineDay",
    "Recovered",
    "Reporter",
    "Resumed",
    "RetriedBy",
    "RetryScheduled",
    "RunNote",
    "StepNotStarted",
    "StoppedFollowing",
    "StuckRun",
    "SubscriberNote",
    "WorkflowNote",
    "WorkflowStopped",
]

TREND_RUNS = 30  # a pipeline running every few minutes shows its last runs only in the digest


# -- a run's card -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class CardView:
    """Everything a card shows, gathered by the caller; ``now`` matters only for the unknown-since note."""

    run: RunView
    display_name: str  # the provider's display name, "Rivery"
    job_text: str  # "river 5e8e…"
    now: datetime
    console_url: str | None = None
    can_cancel: bool = False
    unknown_after: timedelta = timedelta(minutes=2)
    retry_of_link: str | None = None  # a permalink, or text like "#12"
    retried_as: int | None = None
    muted_until: datetime | None = None
    attempts: int | None = None  # of the pipeline's retry policy: "attempt 2 of 3"
    workflow_link: str | None = None  # "step transform of daily-sales #4"
    paged: tuple[str, ...] = ()  # the owners its failure's alert mentioned (user or group ids)
    alert_link: str | None = None  # the permalink of that alert's message
    stuck_since: datetime | None = None  # when the run was warned of as stuck (``bot.tracking.stuck``)
    alerted: bool = False  # an alert counts this run: Acknowledge and Mute have something to act on
    #: the run's connection, when the catalog has it no more (a deploy renamed or removed it): nothing polls its
    #: provider, so its unknown status is this, not a provider that is not answering
    gone_connection: str | None = None


# -- notes in a run's thread --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recovered:
    """A retried run succeeded: no alert was sent."""

    attempt: int


@dataclass(frozen=True, slots=True)
class EndedOddly:
    """The run ended with a status outside the usual ones (``raw_status``), or was ended by the bot (a retry
    that did not start: ``message`` says why)."""

    raw_status: str
    message: str


@dataclass(frozen=True, slots=True)
class Resumed:
    """A run given up while its trigger was pending, whose trigger then answered: tracking resumed."""

    provider_run_id: str


@dataclass(frozen=True, slots=True)
class RetriedBy:
    user_id: str
    retry_id: int


@dataclass(frozen=True, slots=True)
class CancelAsked:
    user_id: str


@dataclass(frozen=True, slots=True)
class StoppedFollowing:
    """``user_id`` ended the run: the bot could not follow it, its ``connection`` gone from the catalog (``why``: as
    the replica that stopped it said it, another provider's connection now, say)."""

    user_id: str
    connection: str
    why: str = ""


@dataclass(frozen=True, slots=True)
class Interrupted:
    """The bot stopped while starting the run; ``message`` (plain text) says what to check."""

    message: str


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    attempt: int
    attempts: int
    outcome: str  # failed | unknown
    wait: timedelta
    retry_id: int


RunNote = (
    Recovered | EndedOddly | Resumed | RetriedBy | CancelAsked | StoppedFollowing | Interrupted | RetryScheduled
)


# -- workflows ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepNotStarted:
    step: str
    reason: str  # a UserError's reply: already mrkdwn-safe


@dataclass(frozen=True, slots=True)
class WorkflowStopped:
    workflow: str
    #: the steps that stopped it, with their state (failed, canceled, rejected, timed_out)
    steps: tuple[tuple[str, StepState], ...]
    owners: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class WorkflowUndefined:
    """A workflow run whose workflow left the catalog, or whose steps it renamed, added or removed, while it ran."""

    workflow: str
    skipped: tuple[str, ...]  # the steps that did not start


WorkflowNote = StepNotStarted | WorkflowStopped | WorkflowUndefined


# -- runs past their time -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StuckRun:
    run: RunRecord
    elapsed: timedelta
    limit: timedelta
    why: str  # "its expected duration", "1.5 × the 95th percentile of …"
    owners: tuple[str, ...]  # whom to mention: none when the pipeline is muted


# -- subscriptions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriberNote:
    """A run ended that a subscribed channel follows, or that a person who asked "notify me" started.

    ``failure``: the failure as its alert tells it (the routed alert is in ``alert_channel``); else a short note
    of how the run ended. ``why`` says what the subscription follows ("pipeline leads-ods", "tag finance")."""

    run: RunRecord
    why: str
    display_name: str
    failure: bool
    alert_channel: str | None = None
    console_url: str | None = None


# -- the daily digest -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PipelineDay:
    """One pipeline's day: how many runs, how they ended, and their states oldest → newest."""

    name: str
    runs: int
    succeeded: int
    failed: int
    trend: str  # one emoji per run, oldest → newest, cut to the last ``TREND_RUNS`` with a leading "…"


@dataclass(frozen=True, slots=True)
class DigestRun:
    """A run worth naming: a failure (with the provider's message) or one of the slowest."""

    run_id: int
    name: str
    at: datetime
    duration: timedelta | None = None
    message: str = ""
    muted: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestData:
    channel: str
    day: date
    timezone: str
    runs: int
    counts: Mapping[StoredState, int]  # per state: succeeded, failed, running…
    failure_rate: float  # failed / (succeeded + failed)
    p50: timedelta | None
    p95: timedelta | None
    pipelines: tuple[PipelineDay, ...]  # failing ones first, then by name
    failures: tuple[DigestRun, ...]  # oldest first
    slowest: tuple[DigestRun, ...]  # slowest first, successful runs only

    @property
    def failed(self) -> int:
        return self.counts.get(StoredState.FAILED, 0)


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalation:
    """An alert nobody acknowledged within its pipeline's ``escalate_after``: ping ``step`` in its thread."""

    alert: Alert
    key: str  # the outbox key: the ping is sent once
    step: int  # 1: its owners once more; 2: ``escalate_to``
    whom: tuple[str, ...]  # user and user group ids to mention
    open_for: timedelta  # since it (re)opened
    display_name: str


# -- the interface --------------------------------------------------------------------------------------


class Reporter(Protocol):
    """Where the domain says what happened. Each call is idempotent: a card is written only when its content
    changed, a message only once under its key (``True`` when it was new)."""

    async def run_card(self, channel: str, view: CardView, *, ticket: int | None = None) -> bool:
        """The run's card should show ``view``; False when it already does, or when a drawing holding a later
        ``ticket`` was written (this one read older facts)."""
        ...

    async def run_failed(
        self, run: RunRecord, *, owners: Sequence[str], display_name: str, console_url: str | None
    ) -> None:
        """The failure's details in the run's thread, mentioning ``owners``."""
        ...

    async def run_evidence(self, run: RunRecord, evidence: Evidence, *, thread: str | None = None) -> None:
        """The provider's own details of the failure and the comparison with the last success, in its thread:
        under the message ``thread`` (a key of ``cards``), by default the run's card."""
        ...

    async def run_note(self, run: RunRecord, key: str, note: RunNote) -> None:
        """A note in the run's thread, once per ``key`` (``run:<id>:<key>``)."""
        ...

    async def run_stuck(self, key: str, stuck: StuckRun, *, channel: str | None) -> bool:
        """The warning of a run past its time: in its thread, or posted in ``channel`` for a run without a card."""
        ...

    async def workflow_card(
        self, record: WorkflowRunRecord, workflow: Workflow, runs: Mapping[int, RunRecord], *, ticket: int | None = None
    ) -> None:
        """The workflow run's card should show its steps now (``runs`` by id: the runs of its steps); not written
        when a drawing holding a later ``ticket`` (``CardStore.draw_ticket_for``) was."""
        ...

    async def workflow_note(self, record: WorkflowRunRecord, key: str, note: WorkflowNote) -> None:
        """A note in the workflow card's thread, once per ``key``."""
        ...

    async def announce_alerts(
        self,
        *,
        window: timedelta,
        owners: Mapping[str, Sequence[str]],
        display_names: Mapping[str, str],
        stories: Mapping[int, AlertStory] | None = None,
        held: Collection[int] = (),
    ) -> list[tuple[str, int]]:
        """Announce the pending alerts whose oldest waited ``window``: one message per channel and burst (a few for
        a storm too large for one). ``owners`` and ``display_names`` by pipeline. Returns each message's key and how
        many alerts it holds. ``held``: alerts left pending this time."""
        ...

    async def alert_changed(
        self,
        key: str,
        alert: Alert,
        *,
        owners: Mapping[str, Sequence[str]],
        display_names: Mapping[str, str],
        stories: Mapping[int, AlertStory] | None = None,
        ticket: int | None = None,
    ) -> None:
        """An announced ``alert`` repeated, recovered or was acted on: rewrite the message ``key`` that announced it
        (with the other alerts it announced). ``stories``: by alert id, the timelines and links to show. ``ticket``:
        taken (``CardStore.draw_ticket_for``) before ``stories`` were read; not written when a later one was."""
        ...

    async def escalate(self, escalation: Escalation) -> bool:
        """Ping the people of an unacknowledged alert in its message's thread, and note it on its timeline. False
        when the ping is no longer owed (sent already by another replica, or the alert was taken meanwhile)."""
        ...

    async def connection_down(self, key: str, alert: Alert, display_name: str) -> None:
        """The one "cannot reach" message of a connection."""
        ...

    async def connection_back(self, key: str, alert: Alert, display_name: str, *, removed: bool = False) -> None:
        """The connection answers again: its "cannot reach" message rewritten, and one "back" notice. ``removed``:
        it was removed from the catalog instead (its alert closed at start), and both say so."""
        ...

    async def credential_expiring(
        self, key: str, *, channel: str, connection: str, display_name: str, expires: datetime, how: str
    ) -> None:
        """One notice before a credential the bot cannot renew expires."""
        ...

    async def digest(self, key: str, data: DigestData) -> bool:
        """The digest of one channel and day; True when it was new."""
        ...

    async def subscriber_note(self, key: str, channel: str, note: SubscriberNote) -> bool:
        """A subscribed channel (or a person's DM: ``channel`` is their user id) told of a run, once per ``key``."""
        ...
