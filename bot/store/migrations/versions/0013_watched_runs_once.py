"""Watched runs, one row each: a provider run that passive watch records is one row whatever the connection's name.

``ix_runs_provider_provider_run_id`` makes ``RunReads.find_moved`` (pipeline, provider, provider run id, any
connection) a lookup, not a scan of every run. ``uq_runs_watched`` is unique on (pipeline, provider,
provider_run_id) among the rows passive watch created (``origin = 'watch'``): two replicas whose catalogs name the
connection differently (a rolling deploy renaming it) that list one new run at once cannot both record it.

Rows of other origins are left out: a run the bot started and its watched copy share an id until the trigger's
answer absorbs the copy, a DataKitchen resume takes its order's id. Watched duplicates a database already holds
(recorded before ``find_moved`` or by the race) are kept, not merged: every row of such a group but one gets
``#dup-<its id>`` after its provider run id, so the key holds and nothing it points to is lost. The one kept is the
first still followed (one a workflow adopted as its step first), else the first recorded: an earlier copy may have
ended while the run goes on (its connection renamed, the old name's row stopped following); kept, it would leave the
run followed by nobody. Another one still followed (both recorded minutes before the upgrade) ends quietly,
``unknown`` and told as such already (a watched run has no card): polled under the marked id, its provider would not
know it, and the connection would be said unreachable. The run goes on being followed as the kept row (the watch
finds it by ``find`` or ``find_moved``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_WATCHED = sa.text("origin = 'watch'")
_MAX_ID = 200  # runs.provider_run_id's length


def upgrade() -> None:
    op.create_index("ix_runs_provider_provider_run_id", "runs", ["provider", "provider_run_id"])
    runs = sa.table(
        "runs",
        sa.column("id", sa.Integer()),
        sa.column("pipeline", sa.String()),
        sa.column("provider", sa.String()),
        sa.column("provider_run_id", sa.String()),
        sa.column("origin", sa.String()),
        sa.column("final", sa.Boolean()),
        sa.column("state", sa.String()),
        sa.column("message", sa.Text()),
        sa.column("ended_at", sa.DateTime()),
        sa.column("updated_at", sa.DateTime()),
        sa.column("next_poll_at", sa.DateTime()),
        sa.column("notified_state", sa.String()),
        sa.column("lease_owner", sa.String()),
        sa.column("lease_expires_at", sa.DateTime()),
        sa.column("workflow_run_id", sa.Integer()),
    )
    run_events = sa.table(
        "run_events",
        sa.column("run_id", sa.Integer()),
        sa.column("at", sa.DateTime()),
        sa.column("state", sa.String()),
        sa.column("raw_status", sa.String()),
        sa.column("message", sa.Text()),
    )
    first = runs.alias("first")
    same = (
        first.c.origin == "watch",
        first.c.pipeline == runs.c.pipeline,
        first.c.provider == runs.c.provider,
        first.c.provider_run_id == runs.c.provider_run_id,
    )
    # the row still followed, if one is: an earlier copy may have ended while the run goes on (its connection
    # renamed, the old name's row ended unknown or by Stop following); kept, it would leave the run followed by none.
    # Of two still followed, one a workflow adopted as its step: ended quietly, its workflow would wait for ever
    keeper = (
        sa.select(first.c.id)
        .where(*same)
        .order_by(first.c.final, first.c.workflow_run_id.is_(None), first.c.id)
        .limit(1)
        .scalar_subquery()
    )
    later = (
        sa.select(runs.c.id, runs.c.provider_run_id, runs.c.final, keeper)
        .where(runs.c.origin == "watch", keeper != runs.c.id)
        .order_by(runs.c.id)
    )
    bind = op.get_bind()
    now = datetime.now(UTC).replace(tzinfo=None)  # times are stored naive UTC
    for run_id, provider_run_id, final, kept in bind.execute(later).all():
        mark = f"#dup-{run_id}"
        values: dict[str, object] = {"provider_run_id": provider_run_id[: _MAX_ID - len(mark)] + mark}
        if not final:
            message = (
                "recorded twice (under two names of its connection): this provider run is followed as "
                f"run #{kept}"
            )
            values.update(final=True, state="unknown", message=message, ended_at=now, updated_at=now,
                          next_poll_at=None, notified_state="unknown", lease_owner=None, lease_expires_at=None)
            bind.execute(sa.insert(run_events).values(run_id=run_id, at=now, state="unknown", raw_status="",
                                                       message=message))
        bind.execute(sa.update(runs).where(runs.c.id == run_id).values(**values))
    op.create_index(
        "uq_runs_watched",
        "runs",
        ["pipeline", "provider", "provider_run_id"],
        unique=True,
        sqlite_where=_WATCHED,
        postgresql_where=_WATCHED,
    )


def downgrade() -> None:
    op.drop_index("uq_runs_watched", "runs")
    op.drop_index("ix_runs_provider_provider_run_id", "runs")
