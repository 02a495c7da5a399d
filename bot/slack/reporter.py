"""The Slack side of ``bot.service.events.Reporter``: what happened, rendered as Block Kit, handed to delivery.

Nothing here calls Slack either: the card's content and each message are written to the store (``cards`` and
``outbox``) under the domain's keys, and the delivery loop (``bot.delivery.sender``) sends them. So a crash at any
point loses nothing, and a message recorded twice under the same key is sent once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta

from bot.catalog.workflows import Workflow
from bot.models import Json
from bot.ops.text import named_within, principal_mention
from bot.service.events import (
    CancelAsked,
    CardView,
    DigestData,
    EndedOddly,
    Escalation,
    Interrupted,
    Recovered,
    Resumed,
    RetriedBy,
    RetryScheduled,
    RunNote,
    StepNotStarted,
    StoppedFollowing,
    StuckRun,
    SubscriberNote,
    WorkflowNote,
    WorkflowStopped,
    WorkflowUndefined,
)
from bot.service.evidence import Evidence
from bot.service.views import AlertStory, alert_view, run_view, workflow_view
from bot.slack.blocks.alerts import (
    alert_batches,
    alert_group,
    connection_alert,
    connection_back,
    credential_expiring,
)
from bot.slack.blocks.card import run_card
from bot.slack.blocks.digest import digest_message
from bot.slack.blocks.escalation import escalation_message
from bot.slack.blocks.evidence import evidence_note
from bot.slack.blocks.replies import failure_details, notice
from bot.slack.blocks.subscriptions import subscriber_message
from bot.slack.blocks.workflow import workflow_card
from bot.slack.text import escape, human_duration, mention, named, truncate
from bot.store import keys
from bot.store.alerting import Alert
from bot.store.records import OutboxKind, RunRecord
from bot.store.store import Store
from bot.store.workflow_runs import WorkflowRunRecord

__all__ = ["SlackReporter", "note_text", "workflow_note_text"]

Now = Callable[[], datetime]


class SlackReporter:
    def __init__(
        self,
        store: Store,
        now: Now,
        *,
        paging: bool = False,
        page_links: Mapping[str, str] | None = None,
        command: str = "/pipeline",
        workspace_url: Callable[[], str | None] = lambda: None,
    ) -> None:
        """``paging``: some pipeline pages PagerDuty (alert messages show their page; ``page_links``: the PagerDuty
        service page of each pipeline the catalog gives one, linked from its alert). ``workspace_url``:
        ``https://team.slack.com/`` as ``auth.test`` said it, for links to cards (None while unknown: a note then
        names the card's channel without a link)."""
        self.store = store
        self.now = now
        self.paging = paging
        self.page_links = dict(page_links or {})
        self.command = command
        self.workspace_url = workspace_url

    # -- runs -------------------------------------------------------------------------------

    async def run_card(self, channel: str, view: CardView, *, ticket: int | None = None) -> bool:
        text, blocks = run_card(view)
        return await self.store.cards.write_run_card(
            view.run.id, channel, text, blocks, now=view.now, final=view.run.final, ticket=ticket
        )

    async def run_failed(
        self, run: RunRecord, *, owners: Sequence[str], display_name: str, console_url: str | None
    ) -> None:
        text, blocks = failure_details(run_view(run), owners=owners, display_name=display_name, console_url=console_url)
        await self.store.outbox.enqueue(
            keys.run_failure(run.id), kind=OutboxKind.THREAD, run_id=run.id, text=text, blocks=blocks, now=self.now()
        )

    async def run_evidence(self, run: RunRecord, evidence: Evidence, *, thread: str | None = None) -> None:
        text, blocks = evidence_note(evidence)
        await self.store.outbox.enqueue(
            keys.run_evidence(run.id), kind=OutboxKind.THREAD, run_id=run.id, text=text, blocks=blocks,
            now=self.now(), card_key=thread,
        )

    async def run_note(self, run: RunRecord, key: str, note: RunNote) -> None:
        text, blocks = notice(note_text(note), formatted=True)
        await self.store.outbox.enqueue(
            keys.run_reply(run.id, key), kind=OutboxKind.THREAD, run_id=run.id, text=text, blocks=blocks, now=self.now()
        )

    async def run_stuck(self, key: str, stuck: StuckRun, *, channel: str | None) -> bool:
        run = stuck.run
        owners = " ".join(dict.fromkeys(_mentions(stuck.owners)))
        said = (
            f"⏰ {named(run.name)} has been running for {human_duration(stuck.elapsed)}, longer than "
            f"{human_duration(stuck.limit)} ({stuck.why}). It may be stuck: check it in the console."
            + (f"\ncc {owners}" if owners else "")
        )
        text, blocks = notice(said, formatted=True)
        if channel is None:
            return await self.store.outbox.enqueue(
                key, kind=OutboxKind.THREAD, run_id=run.id, text=text, blocks=blocks, now=self.now()
            )
        return await self.store.outbox.enqueue(
            key, kind=OutboxKind.POST, channel=channel, text=text, blocks=blocks, now=self.now()
        )

    # -- workflows --------------------------------------------------------------------------

    async def workflow_card(
        self, record: WorkflowRunRecord, workflow: Workflow, runs: Mapping[int, RunRecord], *, ticket: int | None = None
    ) -> None:
        if record.channel is None:
            return
        now = self.now()
        views = {run_id: run_view(run) for run_id, run in runs.items()}
        text, blocks = workflow_card(workflow_view(record), workflow, views, now=now)
        key = keys.workflow_card(record.id)
        await self.store.cards.write(key, record.channel, text, blocks, now=now, ticket=ticket)

    async def workflow_note(self, record: WorkflowRunRecord, key: str, note: WorkflowNote) -> None:
        text, blocks = notice(workflow_note_text(note), formatted=True)
        await self.store.outbox.enqueue(
            keys.workflow_reply(record.id, key),
            kind=OutboxKind.THREAD,
            card_key=keys.workflow_card(record.id),
            text=text,
            blocks=blocks,
            now=self.now(),
        )

    # -- alerts -----------------------------------------------------------------------------

    async def announce_alerts(
        self,
        *,
        window: timedelta,
        owners: Mapping[str, Sequence[str]],
        display_names: Mapping[str, str],
        stories: Mapping[int, AlertStory] | None = None,
        held: Collection[int] = (),
    ) -> list[tuple[str, int]]:
        sizes: dict[str, int] = {}
        pages = await self.store.paging.pages() if self.paging else {}  # of the alerts about to be announced
        told = stories or {}

        def render(key: str, group: list[Alert]) -> tuple[str, str, list[Json]]:
            sizes[key] = len(group)
            views = [alert_view(a, told.get(a.id)) for a in group]
            return alert_group(
                key, views, owners=owners, display_names=display_names, pages=pages, page_links=self.page_links
            )

        def split(group: list[Alert]) -> list[list[Alert]]:
            by_id = {alert.id: alert for alert in group}
            batches = alert_batches([alert_view(a) for a in group], owners=owners)
            return [[by_id[view.id] for view in batch] for batch in batches]

        written = await self.store.alerting.flush(now=self.now(), window=window, render=render, split=split,
                                                  held=held)
        for key in written if self.paging else ():
            # a page sent or refused while the flush wrote the message (too early for its rewrite): shown now
            group = await self.store.alerting.group(key)
            now = await self.store.paging.pages(a.id for a in group)
            if any(page != pages.get(alert_id) for alert_id, page in now.items()):
                await self.alert_changed(key, group[0], owners=owners, display_names=display_names, stories=told)
        return [(key, sizes.get(key, 0)) for key in written]

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
        if ticket is None:
            ticket = await self.store.cards.draw_ticket_for(key)
        group = await self.store.alerting.group(key)
        pages = await self.store.paging.pages(a.id for a in group) if self.paging else {}
        told = stories or {}
        views = [alert_view(a, told.get(a.id)) for a in group]
        _, text, blocks = alert_group(
            key, views, owners=owners, display_names=display_names, pages=pages, page_links=self.page_links
        )
        await self.store.cards.write(key, alert.channel, text, blocks, now=self.now(), ticket=ticket)

    async def escalate(self, escalation: Escalation) -> bool:
        alert = escalation.alert
        if alert.group_key is None:
            return False  # not announced: no thread to ping in (the store lists announced alerts only)
        text, blocks = escalation_message(
            alert.pipeline or "", escalation.display_name, step=escalation.step, whom=escalation.whom,
            open_for=escalation.open_for,
        )
        return await self.store.escalations.escalate(
            alert.id, step=escalation.step, key=escalation.key, card_key=alert.group_key, text=text, blocks=blocks,
            pinged=escalation.whom, now=self.now(),
        )

    async def connection_down(self, key: str, alert: Alert, display_name: str) -> None:
        await self._connection_alert(key, alert, display_name)

    async def connection_back(self, key: str, alert: Alert, display_name: str, *, removed: bool = False) -> None:
        now = self.now()
        await self._connection_alert(key, alert, display_name, removed=removed)
        text, blocks = connection_back(alert_view(alert), display_name, removed=removed)
        await self.store.outbox.enqueue(
            keys.back(key), kind=OutboxKind.POST, channel=alert.channel, text=text, blocks=blocks, now=now
        )

    async def _connection_alert(self, key: str, alert: Alert, display_name: str, *, removed: bool = False) -> None:
        """The "cannot reach" message as the alert is now, read after the ticket: a poll failing and another
        answering at once (two tasks, two replicas) must not leave it saying "cannot reach" over its "answers
        again" once the connection is back (the caller's ``alert`` was read before the other's change)."""
        ticket = await self.store.cards.draw_ticket_for(key)
        alert = await self.store.alerting.get(alert.id) or alert
        back = alert.recovered_at is not None
        text, blocks = connection_alert(alert_view(alert), display_name, back=back, removed=removed)
        await self.store.cards.write(key, alert.channel, text, blocks, now=self.now(), ticket=ticket,
                                     while_open=None if back else alert.id)

    async def credential_expiring(
        self, key: str, *, channel: str, connection: str, display_name: str, expires: datetime, how: str
    ) -> None:
        text, blocks = credential_expiring(connection, display_name, expires, how)
        await self.store.outbox.enqueue(
            key, kind=OutboxKind.POST, channel=channel, text=text, blocks=blocks, now=self.now()
        )

    # -- the digest -------------------------------------------------------------------------

    async def digest(self, key: str, data: DigestData) -> bool:
        text, blocks = digest_message(data.channel, data.day, data)
        return await self.store.outbox.enqueue(
            key, kind=OutboxKind.POST, channel=data.channel, text=text, blocks=blocks, now=self.now()
        )

    # -- subscriptions ----------------------------------------------------------------------

    async def subscriber_note(self, key: str, channel: str, note: SubscriberNote) -> bool:
        card = await self.store.cards.ts_of(keys.run_card(note.run.id))
        base = self.workspace_url()
        # a message's permalink, as chat.getPermalink gives it for a top-level message: built here, since
        # nothing in the reporter calls Slack (the workspace's address comes from auth.test)
        permalink = f"{base.rstrip('/')}/archives/{card[0]}/p{card[1].replace('.', '')}" if card and base else None
        shown = (card[0], permalink) if card else None
        text, blocks = subscriber_message(note, card=shown, command=self.command)
        return await self.store.outbox.enqueue(
            key, kind=OutboxKind.POST, channel=channel, text=text, blocks=blocks, run_id=None, now=self.now()
        )


def note_text(note: RunNote) -> str:
    """The mrkdwn of a note in a run's thread."""
    match note:
        case Recovered(attempt):
            return f"✅ Succeeded on attempt {attempt}: no alert was sent."
        case EndedOddly(raw_status, message):
            if not raw_status and message:  # ended by the bot (a retry that did not start): its reason
                return escape(message)
            return f"The run ended with a status outside the usual ones: {escape(raw_status)}"
        case Resumed(provider_run_id):
            return (
                f"The provider answered after all: the run started as `{escape(provider_run_id)}`. "
                "Tracking resumed: this card follows it to its end."
            )
        case RetriedBy(user_id, retry_id):
            return f"<@{user_id}> retried this as run #{retry_id}."
        case CancelAsked(user_id):
            return f"<@{user_id}> asked to cancel this run."
        case StoppedFollowing(user_id, connection, why) if why:
            said = truncate(named_within(why, connection), 400, "…")
            return f"<@{user_id}> stopped following this run: {said}, so how it ended is unknown."
        case StoppedFollowing(user_id, connection):
            return (
                f"<@{user_id}> stopped following this run: its connection {named(connection)} is no longer in the "
                "bot's catalog, so how it ended is unknown."
            )
        case Interrupted(message):
            return escape(message)
        case RetryScheduled(attempt, attempts, outcome, wait, retry_id):
            return (
                f"Attempt {attempt} of {attempts} {outcome}: retrying automatically in "
                f"{human_duration(wait)} as run #{retry_id} (`/pipeline cancel {retry_id}` keeps it from starting)."
            )


def workflow_note_text(note: WorkflowNote) -> str:
    """The mrkdwn of a note in a workflow card's thread."""
    match note:
        case StepNotStarted(step, reason):
            return f"Step {named(step)} did not start: {reason}"
        case WorkflowStopped(workflow, steps, owners):
            cc = " ".join(principal_mention(p) for p in owners)
            stopped = ", ".join(f"{named(name)} ({state.replace('_', ' ')})" for name, state in steps)
            return (
                f"❌ Workflow {named(workflow)} stopped: {stopped}. Retry on the card resumes from there."
                + (f"\ncc {cc}" if cc else "")
            )
        case WorkflowUndefined(workflow, skipped):
            left = ", ".join(named(name) for name in skipped)
            return (
                f"❌ Workflow {named(workflow)} stopped: it left the bot's catalog (pipelines.yml), or its steps "
                "changed there, while this run went on, so "
                + (f"its steps {left} cannot start" if skipped else "it cannot be resumed")
                + ". Run the workflow again once the catalog has it as wanted."
            )


def _mentions(owners: Sequence[str]) -> list[str]:
    found = []
    for owner in owners:
        try:
            found.append(mention(owner))
        except ValueError:
            continue
    return found
