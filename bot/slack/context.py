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
from bot.service.log_access import LogAccess
from bot.service.notify import Notifier
from bot.service.permissions import Authorizer
from bot.service.queries import RunQueries
from bot.service.runs import RunService
from bot.service.subscriptions import SubscriptionService
from bot.service.triage import Triage
from bot.service.workflows import WorkflowEngine
from bot.slack.tasks import TaskSet

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    """The services a listener calls, built by the composition root; never the store itself, so a listener cannot
    query it past the services (issue 13)."""

    settings: Settings
    catalog: Catalog
    pool: ClientPool
    auth: Authorizer
    notifier: Notifier
    runs: RunService
    tasks: TaskSet
    now: Callable[[], datetime]
    workflows: WorkflowEngine
    #: the runs in flight, a pipeline's last runs, statistics: what commands read
    queries: RunQueries
    #: permission checks and watches that commands record in the audit log
    audited: Audited
    #: ``subscribe``, ``unsubscribe``, ``subscriptions``, ``notify me`` and the Home tab's Unsubscribe
    subscriptions: SubscriptionService
    #: the Full log's pages (and the failure's evidence, which ``Outcomes`` posts)
    triage: Triage
    #: who may read a run's Full log (checked at each click)
    log_access: LogAccess
    #: Workflow Builder's "Run a pipeline" step
    steps: StepService

    @property
    def command(self) -> str:
        return self.settings.slack_command

    def display_names(self) -> dict[str, str]:
        return {key: provider(key).display_name for key in {p.provider for p in self.catalog.pipelines.values()}}
