"""The database schema: the only description of it besides the migrations that create it.

Times are stored as naive UTC and read back as aware UTC (``UTCDateTime``), the same on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "SafeString",
    "SafeText",
    "UTCDateTime",
    "alert_events",
    "alerts",
    "audit",
    "cards",
    "connection_health",
    "function_steps",
    "metadata",
    "mutes",
    "outbox",
    "pagerduty_events",
    "run_events",
    "runs",
    "singletons",
    "slack_requests",
    "subscriptions",
    "watches",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store: use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: object, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        when = datetime.fromisoformat(value) if isinstance(value, str) else value  # SQLite may hand back text
        assert isinstance(when, datetime)
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


class SafeText(TypeDecorator[str]):
    """Text with NUL removed on the way in. PostgreSQL refuses U+0000 in text (SQLite keeps it), and free text
    reaches the store from outside: a provider's status message, an error, what a person typed. Dropping it
    changes nothing anyone could read; refusing the write would lose the run's status for good."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


class SafeString(TypeDecorator[str]):
    """``SafeText`` for bounded columns (a target, a key, a step name): NUL removed on the way in."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

#: the rows ``uq_runs_watched`` covers (migration 0013)
WATCHED_ONLY = "origin = 'watch'"

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pipeline", SafeString(64), nullable=True),  # null for ad-hoc provider:id targets
    Column("provider", SafeString(32), nullable=False),
    Column("connection", SafeString(64), nullable=False),
    Column("job", JSON, nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("provider_run_id", SafeString(200), nullable=True),  # null until the trigger answered
    Column("state", SafeString(16), nullable=False),  # records.StoredState: a RunState, "starting", "waiting"
    Column("raw_status", SafeString(64), nullable=False, default=""),
    Column("message", SafeText, nullable=False, default=""),
    Column("warning", SafeText, nullable=False, default=""),
    Column("tasks", JSON, nullable=False),
    Column("extra", JSON, nullable=False),
    Column("final", Boolean, nullable=False, default=False),
    Column("origin", SafeString(16), nullable=False),  # records.RunOrigin
    Column("started_by", SafeString(32), nullable=True),  # Slack user id; null: outside Slack
    Column("channel", SafeString(80), nullable=True),
    Column("retry_of", Integer, ForeignKey("runs.id"), nullable=True, unique=True),
    Column("attempt", Integer, nullable=False, default=1),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("next_poll_at", UTCDateTime, nullable=True),  # null: not polled any more
    Column("polls", Integer, nullable=False, default=0),
    Column("card_draws", Integer, nullable=False, default=0),  # tickets: see CardStore.draw_ticket
    Column("unknown_since", UTCDateTime, nullable=True),  # provider not answering since
    Column("last_error", SafeText, nullable=False, default=""),
    Column("acknowledged_by", SafeString(32), nullable=True),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("cancel_requested_by", SafeString(32), nullable=True),  # some providers report a cancel as a failure
    Column("cancel_pending_since", UTCDateTime, nullable=True),  # the request not yet taken by the provider
    Column("cancel_asks", Integer, nullable=False, default=0, server_default="0"),  # cancels on their way to it
    Column("cancel_unconfirmed", Boolean, nullable=False, default=False, server_default=false()),  # answer lost
    Column("notified_state", SafeString(16), nullable=True),  # the state whose card and alerts are written
    Column("workflow_run_id", Integer, nullable=True, index=True),  # a step of a workflow run
    Column("step", SafeString(64), nullable=True),
    Column("lease_owner", SafeString(64), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    UniqueConstraint("connection", "provider_run_id", name="uq_runs_connection_provider_run_id"),
    Index("ix_runs_next_poll_at", "next_poll_at"),
    Index("ix_runs_pipeline_created_at", "pipeline", "created_at"),
    Index("ix_runs_provider_provider_run_id", "provider", "provider_run_id"),  # RunReads.find_moved: any connection
    # a provider run passive watch found is one row whatever its connection is named (replicas whose catalogs name
    # it differently list it at once); only the watch's rows: a started run and its watched copy share an id until
    # the copy is absorbed. Migration 0013 creates it partial, WHERE origin = 'watch'. The WHERE is the migration's
    # alone: declared here (``sqlite_where``, ``postgresql_where``) it would import both dialects' modules into every
    # process (``tests/unit/test_lazy_imports.py``); nothing creates tables from this metadata, and Alembic's
    # comparison does not read an index's WHERE (``test_watched_runs_once.py`` proves the index partial)
    Index("uq_runs_watched", "pipeline", "provider", "provider_run_id", unique=True, info={"where": WATCHED_ONLY}),
)

run_events = Table(
    "run_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("state", SafeString(16), nullable=False),
    Column("raw_status", SafeString(64), nullable=False),
    Column("message", SafeText, nullable=False),
)

# Living messages: one card per run, per workflow run, per alert group or connection outage (keys: keys.py).
# Each always shows the current truth: ``version`` counts what it should show, ``sent_version`` what Slack
# shows; delivery closes the gap with one post or update.
cards = Table(
    "cards",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", SafeString(200), nullable=False, unique=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=True, unique=True),
    Column("channel", SafeString(80), nullable=False),
    Column("ts", SafeString(32), nullable=True),  # null until posted
    Column("permalink", SafeString(500), nullable=True),  # chat.getPermalink's answer, once posted
    Column("text", SafeText, nullable=False),
    Column("blocks", JSON, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("sent_version", Integer, nullable=False, default=0),
    Column("drawn", Integer, nullable=False, default=0),  # the ticket of the drawing it holds
    Column("draws", Integer, nullable=False, default=0),  # tickets handed out (not a run's card: see draw_ticket_for)
    Column("attempting_since", UTCDateTime, nullable=True),  # a post whose answer we never saw
    Column("not_before", UTCDateTime, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", SafeText, nullable=False, default=""),
    Column("lease_owner", SafeString(64), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Messages other than cards (thread replies, alerts, notices): the intent is stored before the call,
# marked sent after it. ``key`` is unique: the same intent recorded twice is one message.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", SafeString(200), nullable=False, unique=True),
    Column("run_id", Integer, ForeignKey("runs.id"), nullable=True, index=True),
    Column("card_key", SafeString(200), nullable=True),  # thread: the living message it replies under
    Column("kind", SafeString(16), nullable=False),  # records.OutboxKind: thread | post
    Column("channel", SafeString(80), nullable=True),  # null for thread: the card's channel
    Column("text", SafeText, nullable=False),
    Column("blocks", JSON, nullable=True),
    Column("state", SafeString(16), nullable=False, default="pending"),  # outbox.OutboxState
    Column("ts", SafeString(32), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("attempting_since", UTCDateTime, nullable=True),
    Column("not_before", UTCDateTime, nullable=True),
    Column("last_error", SafeText, nullable=False, default=""),
    Column("lease_owner", SafeString(64), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Index("ix_outbox_state_not_before", "state", "not_before"),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("user_id", SafeString(32), nullable=True),
    Column("action", SafeString(32), nullable=False),
    Column("target", SafeString(200), nullable=False),
    Column("outcome", SafeString(16), nullable=False),  # ok | refused | failed
    Column("detail", SafeText, nullable=False, default=""),
    # the right that let an action through: admin | allow_change | owner | starter | allow_run (None: refused,
    # or an entry from before rights were recorded)
    Column("right_used", SafeString(16), nullable=True),
    Index("ix_audit_at", "at"),
)

# A muted pipeline's failures still show on the card and the App Home; they just do not alert.
mutes = Table(
    "mutes",
    metadata,
    Column("pipeline", SafeString(64), primary_key=True),
    Column("until", UTCDateTime, nullable=False),
    Column("muted_by", SafeString(32), nullable=True),
    Column("muted_at", UTCDateTime, nullable=False),
)

# An alert: a pipeline failing (or stuck), or a connection not answering. Repeated failures inside the
# suppression interval update the open alert instead of posting; a success of a run begun after its latest
# failure marks it recovered (``recovered_at``; a pending one stays pending until it is posted, then recovered).
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", SafeString(16), nullable=False),  # alerting.AlertKind: failure | unreachable
    Column("pipeline", SafeString(64), nullable=True),
    Column("connection", SafeString(64), nullable=True),
    Column("channel", SafeString(80), nullable=False),
    Column("state", SafeString(16), nullable=False),  # alerting.AlertState: pending | open | recovered
    Column("count", Integer, nullable=False, default=1),
    Column("runs", JSON, nullable=False),  # ids of the failed runs, newest last (capped)
    Column("last_run_id", Integer, nullable=True),
    Column("message", SafeText, nullable=False, default=""),
    Column("muted", Boolean, nullable=False, default=False),
    Column("group_key", SafeString(200), nullable=True),  # the grouped message that announced it
    Column("first_at", UTCDateTime, nullable=False),
    Column("last_at", UTCDateTime, nullable=False),
    Column("recovered_at", UTCDateTime, nullable=True),
    Column("recovered_by_run", Integer, nullable=True),
    # escalation (catalog ``escalate_after``): the pings sent since it last (re)opened, 1 its owners once more, 2
    # ``escalate_to``; and when the wait for the next one began (the last ping, or the reopening; null: first_at)
    Column("escalations", Integer, nullable=False, default=0),
    Column("escalated_at", UTCDateTime, nullable=True),
    Index("ix_alerts_state_channel", "state", "channel"),
    Index("ix_alerts_pipeline", "pipeline"),
)
#: an alert's timeline: what happened to it, written with the state change it records (``alert_events.py``)
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", SafeString(16), nullable=False),  # alert_events.EventKind
    Column("actor", SafeString(32), nullable=True),  # a Slack user id; null: the bot (a run, the retry policy)
    Column("run_id", Integer, nullable=True),  # the run it is about (the failure, the retry, the success)
    Column("detail", SafeText, nullable=False, default=""),
    Index("ix_alert_events_alert_id", "alert_id", "id"),
    Index("ix_alert_events_run_id", "run_id"),
)

# PagerDuty Events API v2 events of alerts (bot/delivery/paging.py sends them): one row per alert and action,
# ``key`` ``pd:{alert_id}:{action}`` unique, so the same intent recorded twice is one event. The routing key is
# never stored: the sender reads it from the catalog (by ``pipeline``) when it sends.
pagerduty_events = Table(
    "pagerduty_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", SafeString(200), nullable=False, unique=True),
    Column("alert_id", Integer, nullable=False, index=True),
    Column("action", SafeString(16), nullable=False),  # trigger | acknowledge | resolve
    Column("pipeline", SafeString(64), nullable=False),
    Column("dedup_key", SafeString(255), nullable=False),
    Column("event", JSON, nullable=False),  # what PagerDutyEvents.trigger takes, the routing key aside
    Column("state", SafeString(16), nullable=False, default="pending"),  # paging.PageState
    Column("attempts", Integer, nullable=False, default=0),
    Column("not_before", UTCDateTime, nullable=True),
    Column("last_error", SafeText, nullable=False, default=""),
    Column("lease_owner", SafeString(64), nullable=True),
    Column("lease_expires_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Index("ix_pagerduty_events_state_not_before", "state", "not_before"),
)

# Passive watch switched on or off from Slack (the catalog's `watch:` is the default). ``since`` is when
# watching began: runs that ended before it are history, not news.
watches = Table(
    "watches",
    metadata,
    Column("pipeline", SafeString(64), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("channel", SafeString(80), nullable=True),
    Column("since", UTCDateTime, nullable=False),
    Column("updated_by", SafeString(32), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Whether a connection answers: one "cannot reach" alert when it stops, one "back" notice when it answers.
connection_health = Table(
    "connection_health",
    metadata,
    Column("connection", SafeString(64), primary_key=True),
    Column("failing_since", UTCDateTime, nullable=True),
    Column("alert_id", Integer, nullable=True),
    Column("last_error", SafeText, nullable=False, default=""),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Periodic work that must run once per slot across the fleet (watch cycles, digests, schedules).
singletons = Table(
    "singletons",
    metadata,
    Column("name", SafeString(120), primary_key=True),
    Column("slot", SafeString(64), nullable=False),
    Column("owner", SafeString(64), nullable=True),
    Column("at", UTCDateTime, nullable=False),
)

workflow_runs = Table(
    "workflow_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", SafeString(64), nullable=False),
    Column("parameters", JSON, nullable=False),
    Column("state", SafeString(16), nullable=False),  # running | succeeded | failed
    Column("origin", SafeString(16), nullable=False),
    Column("started_by", SafeString(32), nullable=True),
    Column("channel", SafeString(80), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
)

# One row per step of a workflow run. State: pending | starting (claimed by whoever begins it) | running
# | succeeded | failed | waiting (approval) | rejected | timed_out | skipped. ``run_id`` is the step's latest run
# (retries replace it).
workflow_steps = Table(
    "workflow_steps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow_run_id", Integer, ForeignKey("workflow_runs.id"), nullable=False),
    Column("step", SafeString(64), nullable=False),
    Column("state", SafeString(16), nullable=False),
    Column("run_id", Integer, nullable=True),
    Column("decided_by", SafeString(32), nullable=True),
    Column("decided_at", UTCDateTime, nullable=True),
    Column("due_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("workflow_run_id", "step", name="uq_workflow_steps_workflow_run_id"),
)

# Slack requests already taken, so a replayed or redelivered one does nothing (bot/slack/replays.py). ``key``
# is a SHA-256 of what identifies the request; the first insert claims it. ``held``: an attempt is answering
# it now (a claim that lapses unanswered can be taken over by Slack's retry); ``answered``: acknowledged, done.
slack_requests = Table(
    "slack_requests",
    metadata,
    Column("key", SafeString(64), primary_key=True),
    Column("state", SafeString(8), nullable=False),  # held | answered
    Column("token", SafeString(32), nullable=False),  # which attempt holds it
    Column("claimed_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # forgotten after this: a repeat is refused by then
    Index("ix_slack_requests_expires_at", "expires_at"),
)

# Self-serve subscriptions (``/pipeline subscribe``), alongside the catalog's routing: a channel hears of a
# pipeline's, a tag's or a provider's failures (``level`` failures) or of every run's end (all). ``kind`` started
# is a person's "notify me": ``target`` and ``channel`` are their user id, and each run they start DMs them when
# it ends. One row per (kind, target, channel): subscribing again changes the level.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", SafeString(16), nullable=False),  # pipeline | tag | provider | started
    Column("target", SafeString(80), nullable=False),
    Column("channel", SafeString(80), nullable=False),
    Column("level", SafeString(16), nullable=False),  # failures | all
    Column("created_by", SafeString(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("kind", "target", "channel", name="uq_subscriptions_kind"),
)

# Workflow Builder's "Run a pipeline" steps (bot/slack/events/steps.py): one row per function execution Slack
# sent, claimed before the run starts, so the same execution delivered twice starts one run. ``run_id`` is set
# once the run is recorded; a step that ``waits`` is completed at its run's end (its retries' end) through the
# outbox, under the key ``function:<execution_id>``, so it is completed once whoever sees the end.
function_steps = Table(
    "function_steps",
    metadata,
    Column("execution_id", SafeString(64), primary_key=True),
    Column("run_id", Integer, nullable=True, index=True),
    Column("wait", Boolean, nullable=False, default=False),
    Column("user_id", SafeString(32), nullable=False),  # who used the workflow: the step acts as them
    Column("created_at", UTCDateTime, nullable=False),
)
