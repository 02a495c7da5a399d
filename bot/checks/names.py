"""Catalog entries that name Slack things instead of giving ids: ``#channel-name``, ``@user-group-handle`` and
people by e-mail. ``rewrite`` walks every such entry of a catalog (defaults, routes, pipelines, workflows and their
approval steps) with its dotted path; ``resolve_names`` asks Slack for the ids and gives the catalog with ids
only, or the entries that do not resolve, each with what to do. Ids are left as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.catalog import Catalog
from bot.delivery.answers import slack_answer, slack_error, slack_field
from bot.errors import StartupError
from bot.models import Json, JsonValue

__all__ = [
    "Directory",
    "Names",
    "catalog_with_ids",
    "is_name",
    "names_in",
    "resolve_names",
    "rewrite",
    "with_ids",
]

#: one entry's value → its replacement; told the entry's dotted path (``pipelines.a.owners``)
Mapper = Callable[[str, str], str]


def is_name(value: str) -> bool:
    """``#channel``, ``@handle`` or an e-mail: something to resolve, not an id."""
    return value.startswith(("#", "@")) or "@" in value


def _all(path: str, values: tuple[str, ...], f: Mapper) -> tuple[str, ...]:
    return tuple(f(path, v) for v in values)


def _one(path: str, value: str | None, f: Mapper) -> str | None:
    return None if value is None else f(path, value)


def rewrite(catalog: Catalog, f: Mapper) -> Catalog:
    """The catalog with every channel and principal entry passed through ``f`` (which may also just record)."""
    d = catalog.defaults
    defaults = d.model_copy(update={
        "channel": _one("defaults.channel", d.channel, f), "owners": _all("defaults.owners", d.owners, f),
        "allow_run": _all("defaults.allow_run", d.allow_run, f),
        "allow_change": _all("defaults.allow_change", d.allow_change, f),
        "escalate_to": _all("defaults.escalate_to", d.escalate_to, f),
    })
    routes = tuple(r.model_copy(update={"channel": f(f"routes[{i}].channel", r.channel)})
                   for i, r in enumerate(catalog.routes))
    pipelines = {
        name: dataclasses.replace(
            _entry(f"pipelines.{name}", p, f), escalate_to=_all(f"pipelines.{name}.escalate_to", p.escalate_to, f)
        )
        for name, p in catalog.pipelines.items()
    }
    workflows: Json = {}
    for name, w in catalog.workflows.items():
        steps = {}
        for step_name, step in w.steps.items():
            if step.approval is not None:
                where = f"workflows.{name}.steps.{step_name}.approval.approvers"
                approval = step.approval.model_copy(update={"approvers": _all(where, step.approval.approvers, f)})
                step = step.model_copy(update={"approval": approval})
            steps[step_name] = step
        workflows[name] = dataclasses.replace(_entry(f"workflows.{name}", w, f), steps=steps)
    return dataclasses.replace(catalog, defaults=defaults, routes=routes, pipelines=pipelines, workflows=workflows)


def _entry(path: str, entry: JsonValue, f: Mapper) -> JsonValue:
    return dataclasses.replace(
        entry, channel=_one(f"{path}.channel", entry.channel, f), owners=_all(f"{path}.owners", entry.owners, f),
        allow_run=_all(f"{path}.allow_run", entry.allow_run, f),
        allow_change=_all(f"{path}.allow_change", entry.allow_change, f),
    )


@dataclass
class Names:
    """Every value of the catalog's channel and principal entries, with where each is written."""

    places: dict[str, list[str]] = field(default_factory=dict)  # value → dotted paths

    def record(self, path: str, value: str) -> str:
        self.places.setdefault(value, []).append(path)
        return value

    def where(self, value: str) -> str:
        paths = self.places.get(value, [])
        return ", ".join(paths[:3]) + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")

    def unresolved(self) -> list[str]:
        return sorted(v for v in self.places if is_name(v))


def names_in(catalog: Catalog) -> Names:
    names = Names()
    rewrite(catalog, names.record)
    return names


def with_ids(catalog: Catalog, ids: Mapping[str, str]) -> Catalog:
    """The catalog with each name in ``ids`` replaced by its id (entries written twice stay once each)."""
    return rewrite(catalog, lambda _path, value: ids.get(value, value))


@dataclass
class Directory:
    """Names → ids, as Slack answered; ``problems``: the names it could not resolve, each with what to do."""

    ids: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


async def _channels(client: AsyncWebClient) -> dict[str, str]:
    """``#name`` → id of every public and private channel the bot can see (conversations.list, paged)."""
    found: dict[str, str] = {}
    cursor = None
    while True:
        page = await client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=1000, cursor=cursor
        )
        for channel in page.get("channels") or []:
            found[f"#{channel['name']}"] = channel["id"]
        cursor = (page.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return found


async def _groups(client: AsyncWebClient) -> dict[str, str]:
    answer = await client.usergroups_list()
    return {f"@{g['handle']}": g["id"] for g in answer.get("usergroups") or [] if g.get("handle")}


async def resolve_names(client: AsyncWebClient, catalog: Catalog) -> Directory:
    """Ask Slack for the id of every name the catalog uses; Slack errors (a missing scope…) propagate."""
    names = names_in(catalog)
    wanted = names.unresolved()
    found = Directory()
    channels = await _channels(client) if any(n.startswith("#") for n in wanted) else {}
    groups = await _groups(client) if any(n.startswith("@") for n in wanted) else {}
    for name in wanted:
        where = names.where(name)
        if name.startswith("#"):
            if name in channels:
                found.ids[name] = channels[name]
            else:
                found.problems.append(
                    f"{where}: no channel {name} that the bot can see: check the spelling; a private channel "
                    "needs the bot invited first (/invite @bot in it); or give the channel's id (C…)")
        elif name.startswith("@"):
            if name in groups:
                found.ids[name] = groups[name]
            else:
                found.problems.append(
                    f"{where}: no user group with the handle {name}: check it in Slack (People → User groups), "
                    "or give the group's id (S…)")
        else:
            try:
                answer = await client.users_lookupByEmail(email=name)
                found.ids[name] = answer["user"]["id"]
            except SlackApiError as exc:
                if slack_error(exc.response) != "users_not_found":
                    raise
                found.problems.append(
                    f"{where}: no person in this workspace with the e-mail {name}: check the address, or give "
                    "their member id (U…: profile → ⋮ → Copy member ID)")
    return found


async def catalog_with_ids(client: AsyncWebClient, catalog: Catalog) -> Catalog:
    """The catalog the bot runs: every name replaced by its id (a catalog of ids only is returned as it is).
    StartupError (one line) when Slack cannot be asked or a name does not resolve, naming each entry."""
    if not names_in(catalog).unresolved():
        return catalog
    try:
        directory = await resolve_names(client, catalog)
    except SlackApiError as exc:
        needed = slack_field(exc.response, "needed")
        fix = (f": add the scope {needed} to the app (manifest.yml) and reinstall it" if needed
               else ": check SLACK_BOT_TOKEN, or write ids instead of names" if slack_error(exc.response)
               # a gateway's or proxy's page: "AttributeError: 'str' object has no attribute…"
               else ": something between the bot and Slack answered instead: check SLACK_API_URL and the proxy in "
               "HTTPS_PROXY / HTTP_PROXY, or write ids instead of names")
        said = slack_answer(exc.response)
        raise StartupError(f"cannot resolve the catalog's names to Slack ids: {said}{fix}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise StartupError(
            f"cannot resolve the catalog's names to Slack ids: Slack cannot be reached ({type(exc).__name__}); "
            "check SLACK_API_URL and the network"
        ) from None
    if directory.problems:
        raise StartupError(f"{len(directory.problems)} name(s) in the catalog do not resolve: "
                           + "; ".join(directory.problems))
    return with_ids(catalog, directory.ids)
