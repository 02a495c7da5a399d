"""The store: one engine, and the table families that speak SQL over it.

Each family is one module with named queries that take and return domain records (``bot.store.records``):

========================  ===================================================================================
``store.runs``            ``bot.store.runs.RunStore``: a run and what its provider says of it; the poller's leases
``store.starts``          ``bot.store.starts.StartStore``: runs before their trigger answers (leases, recovery)
``store.cards``           ``bot.store.cards.CardStore``: living messages, posted once and then edited
``store.outbox``          ``bot.store.outbox.OutboxStore``: messages sent once, in order, under idempotent keys
``store.alerting``        ``bot.store.alerting.AlertStore``: alerts, passive watch, connection health
``store.escalations``     ``bot.store.escalations.EscalationStore``: alerts nobody acknowledged, pinged once
``store.mutes``           ``bot.store.mutes.MuteStore``
``store.audit``           ``bot.store.audit.AuditLog``
``store.slots``           ``bot.store.slots.SlotStore``: work done once across replicas
``store.workflows``       ``bot.store.workflow_runs.WorkflowStore``
``store.limits``          ``bot.store.limits.TriggerLimits``: a provider's cap on starts
``store.requests``        ``bot.store.requests``: Slack requests already answered (replays)
``store.subscriptions``   ``bot.store.subscriptions.SubscriptionStore``: self-serve subscriptions, notify me
``store.functions``       ``bot.store.function_steps.FunctionSteps``: Workflow Builder steps and their runs
========================  ===================================================================================

A write that must change two families at once is ONE transaction, kept in the one place that does it: the
trigger's answer absorbing a watched copy (runs, outbox, alerts: ``StartStore.answered``), an alert group's flush
writing its message (alerts, cards: ``AlertStore.flush``), an escalation's ping (alerts, outbox, alert_events:
``EscalationStore.escalate``). The few operations over several families with no
single owner are here: handing back leases, and counting what is still to send.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.alert_events import AlertEvents
from bot.store.alerting import AlertStore
from bot.store.audit import AuditLog
from bot.store.cards import CardStore
from bot.store.escalations import EscalationStore
from bot.store.function_steps import FunctionSteps
from bot.store.limits import TriggerLimits
from bot.store.mutes import MuteStore
from bot.store.outbox import OutboxState, OutboxStore
from bot.store.paging import PagingStore
from bot.store.requests import Ledger, LocalRequestLedger, RequestLedger
from bot.store.rows import is_postgres
from bot.store.runs import AlreadyRetried, AlreadyTracked, RunStore
from bot.store.slots import SlotStore
from bot.store.starts import StartStore
from bot.store.subscriptions import SubscriptionStore
from bot.store.tables import cards, outbox, pagerduty_events, runs
from bot.store.workflow_runs import WorkflowStore

__all__ = ["AlreadyRetried", "AlreadyTracked", "Store"]


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = is_postgres(engine)
        self.runs = RunStore(engine)
        self.starts = StartStore(engine)
        self.cards = CardStore(engine)
        self.outbox = OutboxStore(engine)
        self.functions = FunctionSteps(engine)
        self.paging = PagingStore(engine)
        self.alerting = AlertStore(engine)
        self.alert_events = AlertEvents(engine)
        self.escalations = EscalationStore(engine)
        self.mutes = MuteStore(engine)
        self.audit = AuditLog(engine)
        self.slots = SlotStore(engine)
        self.workflows = WorkflowStore(engine)
        self.limits = TriggerLimits(engine)
        self.subscriptions = SubscriptionStore(engine)
        self.requests: Ledger = RequestLedger(engine) if self._postgres else LocalRequestLedger(engine)

    @property
    def single_process(self) -> bool:
        """SQLite: one process owns the database (``bot.store.lock``); PostgreSQL may have replicas."""
        return not self._postgres

    async def close(self) -> None:
        await self.requests.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(select(1))

    async def release_leases(self, owner: str | None = None) -> None:
        """Hand back leases of runs, cards and messages, in one transaction: one owner's at shutdown; everyone's
        at start on SQLite, where only one process can run, so any lease found there belongs to a process that
        died."""
        async with self.engine.begin() as conn:
            for table in (runs, cards, outbox, pagerduty_events):
                query = update(table).values(lease_owner=None, lease_expires_at=None)
                if owner is not None:
                    query = query.where(table.c.lease_owner == owner)
                await conn.execute(query)

    async def release_delivery_leases(self, owner: str) -> None:
        """Hand back the cards and messages ``owner`` claimed in a delivery tick that failed midway."""
        async with self.engine.begin() as conn:
            for table in (cards, outbox):
                await conn.execute(
                    update(table).where(table.c.lease_owner == owner).values(lease_owner=None, lease_expires_at=None)
                )

    async def unsent(self) -> int:
        """Messages still to send: pending outbox messages and cards whose content Slack does not show yet."""
        async with self.engine.connect() as conn:
            result = await conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.state == OutboxState.PENDING.value)
            )
            pending = int(result.scalar_one())
            result = await conn.execute(
                select(func.count()).select_from(cards).where(cards.c.version > cards.c.sent_version)
            )
            return pending + int(result.scalar_one())
