"""What listeners need, handed to them explicitly at registration (no globals)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.catalog.catalog import Catalog
from bot.config import Settings
from bot.providers.registry import provider
from bot.service.audited import Audited
from bot.service.clients import ClientPool
from bot.service.function_steps import StepService
from bot.service.notify import Notifier
from bot.service.permissions import Authorizer
from bot.service.queries import RunQueries
from bot.service.runs import RunService
from bot.service.subscriptions import SubscriptionService
from bot.service.triage import Triage
from bot.service.workflows import WorkflowEngine
from bot.slack.tasks import TaskSet
from bot.store.store import Store

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    settings: Settings
    catalog: Catalog
    store: Store
    pool: ClientPool
    auth: Authorizer
    notifier: Notifier
    runs: RunService
    tasks: TaskSet
    now: Callable[[], datetime]
    workflows: WorkflowEngine
    steps: StepService | None = None  # Workflow Builder's "Run a pipeline" step (tests may build without it)

    @property
    def queries(self) -> RunQueries:
        """The runs in flight, a pipeline's last runs, statistics: what commands read, without the store."""
        return RunQueries(self.store, self.pool, self.now)

    @property
    def audited(self) -> Audited:
        """Permission checks and watches that commands record in the audit log."""
        return Audited(self.store, self.auth, self.now)

    @property
    def subscriptions(self) -> SubscriptionService:
        """``subscribe``, ``unsubscribe``, ``subscriptions``, ``notify me`` and the Home tab's Unsubscribe."""
        return SubscriptionService(self.store, self.catalog, self.auth, self.now)

    @property
    def triage(self) -> Triage:
        """The Full log's pages (and the failure's evidence, which ``Outcomes`` posts)."""
        return Triage(self.store, self.pool, self.notifier.reporter, self.now)

    @property
    def command(self) -> str:
        return self.settings.slack_command

    def display_names(self) -> dict[str, str]:
        return {key: provider(key).display_name for key in {p.provider for p in self.catalog.pipelines.values()}}
