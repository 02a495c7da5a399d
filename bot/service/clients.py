"""One provider client per connection, built when first needed, with bounded concurrency per connection."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from bot.catalog.catalog import Catalog, connection_of
from bot.errors import InvalidRequest
from bot.models import JsonValue
from bot.ops.redact import Redactor
from bot.providers._http import RetryPolicy
from bot.providers.base import ConnectionConfig, JobConfig, SomeClient
from bot.providers.registry import provider

__all__ = ["ClientPool"]


class ClientPool:
    def __init__(self, connections: Mapping[str, ConnectionConfig], *, retry: RetryPolicy | None = None) -> None:
        self._connections = dict(connections)
        self._clients: dict[str, SomeClient] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._retry = retry
        #: every connection's secrets, and each client's (session tokens) once it is built: for the log filter
        self.redactor = Redactor(s for c in self._connections.values() for s in c.secret_values())

    @classmethod
    def for_catalog(cls, catalog: Catalog, *, retry: RetryPolicy | None = None) -> ClientPool:
        return cls(catalog.connections, retry=retry)

    def has(self, connection: str, provider_key: str | None = None) -> bool:
        """Whether the catalog has ``connection`` (of ``provider_key``, the provider a run was recorded on): a run
        of one it lacks cannot be followed from here."""
        return connection_of(self._connections, connection, provider_key) is not None

    def why_gone(self, connection: str, provider_key: str) -> str:
        """Why a run recorded on ``connection`` of ``provider_key`` cannot be followed here (``has`` is False)."""
        found = self._connections.get(connection)
        if found is None:
            return f"its connection {connection} is no longer in the bot's catalog (pipelines.yml)"
        now = found.provider
        return f"its connection {connection} is a {now} connection in the catalog now, not the {provider_key} one"

    def client(self, connection: str, provider_key: str | None = None) -> SomeClient:
        """The connection's client; ``provider_key``: the provider a run was recorded on, which the connection must
        still be (a deploy may give the name to another provider's account: that one's client was handed the run's
        job of the other provider, an AttributeError at every poll)."""
        if connection not in self._connections:
            raise InvalidRequest(
                f"There is no connection named {connection} in the catalog any more, so the bot cannot reach its "
                "provider: see the provider's console, or put the connection back in pipelines.yml."
            )
        if provider_key is not None and self._connections[connection].provider != provider_key:
            raise InvalidRequest(
                f"The connection {connection} is a {self._connections[connection].provider} connection in the "
                f"catalog now, not the {provider_key} one this run was started on, so the bot cannot reach its "
                "provider: see the provider's console, or put the connection back in pipelines.yml."
            )
        found = self._clients.get(connection)
        if found is None:
            config = self._connections[connection]
            found = provider(config.provider).client(connection, config, retry=self._retry)
            self._clients[connection] = found
            self.redactor.include(found.caller.redactor)
        return found

    def slot(self, connection: str) -> asyncio.Semaphore:
        """At most ``max_concurrency`` calls in flight per connection: one slow provider cannot eat the rest."""
        found = self._slots.get(connection)
        if found is None:
            limit = self._connections[connection].max_concurrency if connection in self._connections else 1
            found = self._slots[connection] = asyncio.Semaphore(limit)
        return found

    def job(self, provider_key: str, job: Mapping[str, JsonValue]) -> JobConfig:
        return provider(provider_key).job.model_validate(dict(job))

    @property
    def connections(self) -> list[str]:
        return list(self._connections)

    def connections_of(self, provider_key: str) -> list[str]:
        return [name for name, c in self._connections.items() if c.provider == provider_key]

    def provider_of(self, connection: str) -> str:
        return self._connections[connection].provider

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
