"""The whole catalog, validated: connections, pipelines, defaults, routes and workflows (``load.py`` makes it).

Apart from ``model.py`` because a workflow (``workflows.py``) is built from the pipelines' models: the catalog
holds both, typed, without a cycle between the two modules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.catalog.model import Defaults, Pipeline, RouteRule
from bot.catalog.workflows import Workflow
from bot.providers.base import ConnectionConfig

__all__ = ["Catalog", "connection_of"]


@dataclass(frozen=True, slots=True)
class Catalog:
    connections: Mapping[str, ConnectionConfig]
    pipelines: Mapping[str, Pipeline]
    defaults: Defaults = field(default_factory=Defaults)
    routes: tuple[RouteRule, ...] = ()
    source: str = "pipelines.yml"
    workflows: Mapping[str, Workflow] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # what works but should not be so (plain http credentials), for check and logs

    def channel_for(self, pipeline: Pipeline) -> str | None:
        """Where a pipeline's alerts go: its own channel, else the first matching route, else the default."""
        if pipeline.channel:
            return pipeline.channel
        for rule in self.routes:
            if rule.matches(pipeline):
                return rule.channel
        return self.defaults.channel

    def paged(self) -> list[Pipeline]:
        """The pipelines whose failures page a PagerDuty service."""
        return [p for p in self.pipelines.values() if p.pagerduty is not None]

    def by_provider(self) -> dict[str, list[Pipeline]]:
        grouped: dict[str, list[Pipeline]] = {}
        for p in self.pipelines.values():
            grouped.setdefault(p.provider, []).append(p)
        return grouped

    def counts_by_provider(self) -> dict[str, int]:
        """How many pipelines each provider has, by provider key."""
        return {k: len(v) for k, v in sorted(self.by_provider().items())}


def connection_of(
    connections: Mapping[str, ConnectionConfig], name: str, provider_key: str | None = None
) -> ConnectionConfig | None:
    """The connection ``name`` in ``connections``; None when it is gone, or (``provider_key``: the provider a run was
    recorded on) when a deploy gave the name to another provider's account: a run recorded on it cannot be followed
    nor started again from here."""
    found = connections.get(name)
    return found if found is not None and (provider_key is None or found.provider == provider_key) else None
