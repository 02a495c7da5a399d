"""Ad-hoc targets for admins: ``rivery:<river_id>``, ``datakitchen:<kitchen>/<recipe>/<variation>``…"""

from __future__ import annotations

from pydantic import ValidationError

from bot.errors import InvalidRequest
from bot.ops.text import escape
from bot.service.clients import ClientPool
from bot.service.runs import AdHoc

__all__ = ["FORMS", "adhoc_target"]

#: provider → the job fields an ad-hoc id spells, separated by "/"; the last may contain "/"
FIELDS: dict[str, tuple[str, ...]] = {
    "rivery": ("river_id",),
    "invision": ("dataflow_id",),
    "datakitchen": ("kitchen", "recipe", "variation"),
    "tailer": ("account", "environment", "configuration_type", "configuration_id", "job_id"),
}
FORMS = {
    "rivery": "rivery:<river_id>",
    "invision": "invision:<dataflow_id>",
    "datakitchen": "datakitchen:<kitchen>/<recipe>/<variation>",
    "tailer": "tailer:<account>/<environment>/<configuration_type>/<configuration_id>[/<job_id>]",
}


def adhoc_target(pool: ClientPool, provider_or_connection: str, ident: str) -> AdHoc:
    connections = (
        [provider_or_connection]
        if provider_or_connection in _all(pool)
        else pool.connections_of(provider_or_connection)
    )
    if not connections:
        raise InvalidRequest(f"No connection of {escape(provider_or_connection)} is configured in the catalog.")
    if len(connections) > 1:
        raise InvalidRequest(
            f"{escape(provider_or_connection)} has several connections ({escape(', '.join(connections))}): "
            f"name one, like `{escape(connections[0])}:{escape(ident)}`."
        )
    connection = connections[0]
    provider = pool.provider_of(connection)
    fields = FIELDS[provider]
    parts = ident.split("/", len(fields) - 1) if len(fields) > 1 else [ident]
    job = dict(zip(fields, parts, strict=False))
    try:
        pool.job(provider, job)
    except ValidationError:
        hint = " (job_id is required except for table-to-table)" if provider == "tailer" else ""
        raise InvalidRequest(f"Write the target as `{FORMS[provider]}`{hint}.") from None
    return AdHoc(provider=provider, connection=connection, job=job)


def _all(pool: ClientPool) -> list[str]:
    return [c for key in FIELDS for c in pool.connections_of(key)]
