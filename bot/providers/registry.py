"""The four providers by key. Modules are imported when first asked for."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache

from bot.providers.base import ConnectionConfig, JobConfig, SomeClient

__all__ = ["PROVIDERS", "ProviderSpec", "provider"]

#: provider key → module; the key is what `provider:` says in pipelines.yml and `rivery:<id>` in commands
PROVIDERS: dict[str, str] = {
    "rivery": "bot.providers.rivery",
    "tailer": "bot.providers.tailer",
    "invision": "bot.providers.invision",
    "datakitchen": "bot.providers.datakitchen",
}


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    key: str
    display_name: str
    connection: type[ConnectionConfig]
    job: type[JobConfig]
    client: type[SomeClient]


@cache
def provider(key: str) -> ProviderSpec:
    """The provider with this key; KeyError for an unknown one."""
    module = importlib.import_module(PROVIDERS[key])
    client: type[SomeClient] = module.Client
    return ProviderSpec(
        key=key,
        display_name=client.display_name,
        connection=module.Connection,
        job=module.Job,
        client=client,
    )
