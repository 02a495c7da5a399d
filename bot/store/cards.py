"""The cards family: living messages (a run's card, a workflow's, an alert group's) that are posted once and then
edited. The desired content has a version; delivery claims the cards whose version Slack does not show yet."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.models import Json
from bot.store import keys
from bot.store.messages import write_message
from bot.store.records import CardRecord
from bot.store.rows import card_of_row, cards_by_ids, claim, is_postgres
from bot.store.tables import alerts, cards, runs

__all__ = ["CardStore"]


class _Resolved(Exception):
    """The alert a drawing showed open was resolved meanwhile: roll the drawing back."""


class CardStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._greatest = func.greatest if is_postgres(engine) else func.max

    # -- what a message should show ---------------------------------------------------------

    async def draw_ticket(self, run_id: int) -> int:
        """A ticket for drawing the run's card, taken before reading what the card shows. Two drawings can run at
        once (a click and the alert's link, a tick and a reminder); each reads the run after taking its ticket, so
        the one holding the higher ticket read everything the other did, and `write_run_card` keeps it."""
        async with self.engine.begin() as conn:
            await conn.execute(update(runs).where(runs.c.id == run_id).values(card_draws=runs.c.card_draws + 1))
            ticket = (await conn.execute(select(runs.c.card_draws).where(runs.c.id == run_id))).scalar()
        return int(ticket or 0)

    async def draw_ticket_for(self, key: str) -> int:
        """A ticket for drawing the living message ``key`` (an alert's, a workflow's), as `draw_ticket` for a run's
        card: taken before reading what the message shows, given to `write`. 0 while the message does not exist."""
        async with self.engine.begin() as conn:
            await conn.execute(update(cards).where(cards.c.key == key).values(draws=cards.c.draws + 1))
            ticket = (await conn.execute(select(cards.c.draws).where(cards.c.key == key))).scalar()
        return int(ticket or 0)

    async def write_run_card(
        self,
        run_id: int,
        channel: str,
        text: str,
        blocks: list[Json],
        *,
        now: datetime,
        final: bool = True,
        ticket: int | None = None,
    ) -> bool:
        """What the run's card should show. Returns False when it already shows exactly that; when ``final`` is
        False (drawn from the run in flight) and the run has ended since: a view read before the end must not
        overwrite the final card, which nothing would write again; and when a drawing with a later ``ticket``
        (`draw_ticket`) was written already: this one read older facts."""
        async with self.engine.begin() as conn:
            if not final:
                ended = (await conn.execute(select(runs.c.final).where(runs.c.id == run_id))).scalar()
                if ended:
                    return False
            return await _write_drawn(conn, keys.run_card(run_id), channel, text, blocks, now, run_id, ticket)

    async def write(
        self,
        key: str,
        channel: str,
        text: str,
        blocks: list[Json],
        *,
        now: datetime,
        run_id: int | None = None,
        ticket: int | None = None,
        while_open: int | None = None,
    ) -> bool:
        """What a living message (card, alert) should show; False when it already shows exactly that, or when a
        drawing holding a later ``ticket`` (`draw_ticket_for`) was written already: this one read older facts.
        ``while_open``: the alert this drawing showed open; not written if it is resolved by the commit (a message's
        first drawings all hold ticket 0: one read before the resolution must not overwrite the resolution's)."""
        try:
            async with self.engine.begin() as conn:
                written = await _write_drawn(conn, key, channel, text, blocks, now, run_id, ticket)
                if while_open is not None:  # checked after the write, which holds the row: a resolution committed
                    # before this read is seen, one committed after it writes its message after ours
                    query = select(alerts.c.recovered_at).where(alerts.c.id == while_open)
                    if (await conn.execute(query)).scalar() is not None:
                        raise _Resolved
                return written
        except _Resolved:
            return False

    async def ts_of(self, key: str) -> tuple[str, str] | None:
        """(channel, ts) of a living message once Slack has it."""
        query = select(cards.c.channel, cards.c.ts).where(cards.c.key == key)
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return (row.channel, row.ts) if row and row.ts else None

    async def written(self, key: str) -> bool:
        """Whether the living message ``key`` was ever written (sent or not)."""
        async with self.engine.connect() as conn:
            return (await conn.execute(select(cards.c.id).where(cards.c.key == key))).first() is not None

    async def set_permalink(self, key: str, permalink: str) -> None:
        """The link Slack gave for a posted message (``chat.getPermalink``), for the messages that link to it."""
        async with self.engine.begin() as conn:
            await conn.execute(update(cards).where(cards.c.key == key).values(permalink=permalink[:500]))

    async def of_run(self, run_id: int) -> CardRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(cards).where(cards.c.run_id == run_id))).mappings().first()
        return card_of_row(row) if row else None

    # -- delivery ---------------------------------------------------------------------------

    async def claim(self, owner: str, *, now: datetime, limit: int, lease: timedelta) -> list[CardRecord]:
        free = or_(cards.c.lease_expires_at.is_(None), cards.c.lease_expires_at < now)
        ready = or_(cards.c.not_before.is_(None), cards.c.not_before <= now)
        query = (
            select(cards.c.id)
            .where(cards.c.version > cards.c.sent_version, free, ready)
            .order_by(cards.c.id)
            .limit(limit)
        )
        return await claim(self.engine, cards, query, owner, now + lease, cards_by_ids)

    async def attempt(self, card_id: int, *, now: datetime) -> None:
        """Before posting: if we die before hearing back, the next try knows a post may exist."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards).where(cards.c.id == card_id).values(attempting_since=now, attempts=cards.c.attempts + 1)
            )

    async def sent(
        self,
        card_id: int,
        version: int,
        ts: str | None,
        *,
        channel: str | None = None,
        next_edit_at: datetime | None = None,
    ) -> None:
        """Slack shows ``version``. A newer version waits until ``next_edit_at`` (edits of one message paced)."""
        values: dict[str, object] = {
            "sent_version": self._greatest(cards.c.sent_version, version),
            "attempting_since": None,
            "attempts": 0,
            "not_before": next_edit_at,
            "last_error": "",
            "lease_owner": None,
            "lease_expires_at": None,
        }
        if ts is not None:
            values["ts"] = ts
        if channel is not None:  # Slack answers with the channel id: updates need it, not #name
            values["channel"] = channel
        async with self.engine.begin() as conn:
            await conn.execute(update(cards).where(cards.c.id == card_id).values(**values))

    async def posted(
        self, card_id: int, version: int, ts: str, *, channel: str, next_edit_at: datetime | None = None
    ) -> bool:
        """Record a card's first post. False when another process recorded one first: ours is a duplicate."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(cards)
                .where(cards.c.id == card_id, cards.c.ts.is_(None))
                .values(
                    ts=ts,
                    channel=channel,
                    sent_version=self._greatest(cards.c.sent_version, version),
                    attempting_since=None,
                    attempts=0,
                    not_before=next_edit_at,
                    last_error="",
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )
            return bool(result.rowcount == 1)

    async def move(self, card_id: int, channel: str) -> None:
        """Its channel refused it: post it in ``channel`` instead."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards)
                .where(cards.c.id == card_id)
                .values(
                    channel=channel,
                    ts=None,
                    sent_version=0,
                    attempting_since=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )

    async def lost(self, card_id: int) -> None:
        """The message was deleted in Slack: post the card again."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards)
                .where(cards.c.id == card_id)
                .values(ts=None, sent_version=0, attempting_since=None, lease_owner=None, lease_expires_at=None)
            )

    async def given_up(self, card_id: int, version: int, error: str) -> None:
        """Slack refuses this card for good (channel gone…): stop trying, keep the reason."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards)
                .where(cards.c.id == card_id)
                .values(
                    sent_version=version,
                    last_error=error[:2000],
                    attempting_since=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )

    async def retry_later(self, card_id: int, *, not_before: datetime, error: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(cards)
                .where(cards.c.id == card_id)
                .values(not_before=not_before, last_error=error[:2000], lease_owner=None, lease_expires_at=None)
            )


async def _write_drawn(
    conn: AsyncConnection,
    key: str,
    channel: str,
    text: str,
    blocks: list[Json],
    now: datetime,
    run_id: int | None,
    ticket: int | None,
) -> bool:
    """`write_message`, unless a drawing holding a later ticket was written already. The ticket is checked and kept
    in one update, first: on PostgreSQL it locks the row to the commit, so two replicas' drawings cannot both pass
    the check and the earlier one write last (a read, then a write, let them)."""
    if ticket is not None:
        kept = await conn.execute(update(cards).where(cards.c.key == key, cards.c.drawn <= ticket).values(drawn=ticket))
        if kept.rowcount == 0 and (await conn.execute(select(cards.c.id).where(cards.c.key == key))).first():
            return False  # a later drawing holds it
    # a new message is created with its first drawing's ticket; one created by a later drawing since is kept
    return await write_message(conn, key, channel, text, blocks, now=now, run_id=run_id, ticket=ticket)
