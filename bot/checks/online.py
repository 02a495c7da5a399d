"""``pipeline-bot check --online``: after the offline checks, what only the outside world can say.

Each item is tried on its own, all at once, each with its own deadline, so one unreachable provider costs its
deadline and no more: every connection with a harmless authenticated read (``ProviderClient.probe``), Slack's
``auth.test``, every channel the catalog names (does it exist, is it archived, is the bot in it), every person and
user group (``users.info``, ``usergroups.list``), and the names the catalog uses instead of ids
(``bot/checks/names.py``). Each result says ✓ or ✗ and, for a ✗, what would fix it. PagerDuty is not tried (it
has no harmless call), and a line says so. Nothing here prints a secret: the caller redacts every line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.catalog.catalog import Catalog
from bot.checks.names import Directory, Names, is_name, names_in, resolve_names
from bot.delivery.answers import slack_answer, slack_error, slack_field
from bot.errors import ProviderAuthError, ProviderError
from bot.models import Json
from bot.providers._http import RetryPolicy
from bot.providers.base import ConnectionConfig, SomeClient
from bot.providers.registry import provider

__all__ = ["DEADLINE", "Result", "online_checks", "render"]

#: seconds each check may take, all told (they run at the same time)
DEADLINE = 10.0


@dataclass(frozen=True, slots=True)
class Result:
    item: str  # "connection rivery-us", "channel #data-alerts"…
    ok: bool
    said: str  # what answered, or what went wrong
    fix: str = ""  # for a ✗: what to do

    def lines(self) -> list[str]:
        head = f"{'✓' if self.ok else '✗'} {self.item}: {self.said}"
        return [head] if self.ok or not self.fix else [head, f"    fix: {self.fix}"]


def render(results: Iterable[Result]) -> list[str]:
    return [line for r in results for line in r.lines()]


async def _bounded(item: str, check: Awaitable[Result], deadline: float, fix: str) -> Result:
    """One check within its deadline; what it could not say itself (the network, a surprise) is its ✗."""
    try:
        return await asyncio.wait_for(check, deadline)
    except TimeoutError:
        return Result(item, False, f"no answer within {deadline:g} s", fix)
    except (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError) as exc:
        # the proxy, not Slack: "check SLACK_API_URL" sent people to the wrong place
        return Result(item, False, f"the proxy did not let it through ({type(exc).__name__}: {exc})", PROXY_FIX)
    except (aiohttp.ClientError, OSError) as exc:
        return Result(item, False, f"cannot be reached ({type(exc).__name__}: {exc})", fix)
    except Exception as exc:  # a check reports what went wrong; the other checks still run
        return Result(item, False, f"unexpected {type(exc).__name__}: {exc}", fix)


# -- connections ----------------------------------------------------------------------------------------


async def _connection(name: str, connection: ConnectionConfig, catalog: Catalog) -> Result:
    item = f"connection {name} ({connection.provider})"
    pipeline = next((p for _, p in sorted(catalog.pipelines.items()) if p.connection == name), None)
    if pipeline is None:
        return Result(item, True, "not tried: no pipeline uses it")
    cls = provider(connection.provider).client
    client: SomeClient = cls(name, connection, retry=RetryPolicy(attempts=1))
    try:
        said = await client.probe(pipeline.job)
    except ProviderAuthError as exc:
        return Result(item, False, str(exc), f"check the credentials of connections.{name} (the environment "
                      "variables it names with ${…}) and that they may read runs")
    except ProviderError as exc:
        return Result(item, False, str(exc), f"check connections.{name}.base_url ({connection.base_url}) and that "
                      "it can be reached from here (proxy, firewall, VPN)")
    finally:
        await client.aclose()
    return Result(item, True, said)


# -- Slack ---------------------------------------------------------------------------------------------


def _slack_error(exc: SlackApiError) -> str:
    said = slack_answer(exc.response)
    needed = slack_field(exc.response, "needed")
    return said + (f" (needs the scope {needed})" if needed else "")


def _slack_fix(exc: SlackApiError, default: str) -> str:
    error = slack_error(exc.response)
    if error == "missing_scope":
        scope = slack_field(exc.response, "needed") or "it needs"
        return (f"add the scope {scope} to the app (manifest.yml lists them all), then "
                "reinstall it to the workspace and update SLACK_BOT_TOKEN")
    if error in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
        return "SLACK_BOT_TOKEN is not a working bot token: copy it again from OAuth & Permissions (xoxb-…)"
    if not error:  # a gateway's or proxy's page, not Slack's answer: no token, channel or scope is at fault
        return NOT_SLACK_FIX
    return default


#: what fixes a proxy that refused Slack's calls or could not be reached
PROXY_FIX = (
    "check the proxy in HTTPS_PROXY / HTTP_PROXY (the one the Slack SDK uses): its address, its user name and "
    "password, and that it lets the bot reach the host of SLACK_API_URL"
)

#: what fixes an answer that did not come from Slack
NOT_SLACK_FIX = (
    "something between the bot and Slack answered instead of Slack: check SLACK_API_URL (https://slack.com/api/ "
    "unless a gateway is meant) and the proxy in HTTPS_PROXY / HTTP_PROXY (its address, its credentials)"
)


class _Slack:
    """The Slack items of one check: the answers they share (the bot's name, the user groups) asked once."""

    def __init__(self, client: AsyncWebClient, catalog: Catalog, names: Names) -> None:
        self.client, self.catalog, self.names = client, catalog, names
        self.bot = "@bot"
        self._groups: asyncio.Task[Json] | None = None
        self._directory: asyncio.Task[Directory] | None = None

    async def auth(self) -> Result:
        try:
            answer = await self.client.auth_test()
        except SlackApiError as exc:
            return Result("Slack auth.test", False, _slack_error(exc), _slack_fix(exc, "check SLACK_BOT_TOKEN"))
        self.bot = f"@{answer.get('user') or 'bot'}"
        return Result("Slack auth.test", True, f"the token is the bot {self.bot} of team {answer.get('team')}")

    async def directory(self) -> Directory:
        """Asked once for all the checks; shielded: one check's deadline must not cancel it for the others."""
        if self._directory is None:
            self._directory = asyncio.ensure_future(resolve_names(self.client, self.catalog))
        return await asyncio.shield(self._directory)

    async def groups(self) -> Json:
        async def fetch() -> Json:
            answer = await self.client.usergroups_list()
            return {g["id"]: g for g in answer.get("usergroups") or []}

        if self._groups is None:
            self._groups = asyncio.ensure_future(fetch())
        return await asyncio.shield(self._groups)

    async def _id_of(self, value: str) -> tuple[str | None, str]:
        """The id for an entry's value (a name is resolved), or None with why."""
        if not is_name(value):
            return value, ""
        directory = await self.directory()
        if value in directory.ids:
            return directory.ids[value], ""
        why = next((p for p in directory.problems if f" {value} " in f"{p} " or f" {value}:" in p), "")
        return None, why

    async def channel(self, value: str, *, post: bool = True) -> Result:
        """``post``: alerts go there, so the bot must be in it; else (an allow_run entry) it must only exist."""
        item = f"channel {value}"
        where = self.names.where(value)
        try:
            channel_id, why = await self._id_of(value)
            if channel_id is None:  # the start-up's words know no bot name; auth.test gave it
                fix = why.split(": ", 1)[-1].replace("/invite @bot ", f"/invite {self.bot} ")
                return Result(item, False, "not found", fix)
            answer = await self.client.conversations_info(channel=channel_id)
        except SlackApiError as exc:
            default = (f"no channel {value} the bot can see ({where}): check the id (channel details → About, at "
                       f"the bottom); a private channel needs the bot invited: /invite {self.bot}")
            return Result(item, False, _slack_error(exc), _slack_fix(exc, default))
        info = answer.get("channel") or {}
        shown = f"#{info.get('name')}" if info.get("name") else channel_id
        if info.get("is_archived"):
            return Result(item, False, f"{shown} is archived", f"unarchive it, or name another channel at {where}")
        if not post:
            return Result(item, True, f"{shown} exists")
        if not info.get("is_member"):
            return Result(item, False, f"the bot is not in {shown}",
                          f"invite the bot with /invite {self.bot} in {shown}")
        return Result(item, True, f"{shown} exists and the bot is in it")

    async def principal(self, value: str) -> Result:
        kind = "user group" if value.startswith(("S", "@")) else "person"
        item = f"{kind} {value}"
        try:
            found, why = await self._id_of(value)
            if found is None:
                return Result(item, False, "not found", why.split(": ", 1)[-1])
            if found.startswith("S"):
                group = (await self.groups()).get(found)
                if group is None:
                    return Result(item, False, f"no user group {found}", f"check the id at {self.names.where(value)}:"
                                  " People → User groups → the group → ⋮ → Copy group ID")
                return Result(item, True, f"user group @{group.get('handle')} ({found})")
            answer = await self.client.users_info(user=found)
        except SlackApiError as exc:
            default = (f"check the id at {self.names.where(value)}: the person's profile → ⋮ → Copy member ID, "
                       "or write their e-mail instead")
            return Result(item, False, _slack_error(exc), _slack_fix(exc, default))
        user = answer.get("user") or {}
        if user.get("deleted"):
            return Result(item, False, f"{found} is deactivated", f"replace them at {self.names.where(value)}")
        return Result(item, True, f"{user.get('real_name') or user.get('name')} ({found})")


async def _slack_checks(slack: _Slack, names: Names, deadline: float) -> list[Result]:
    """auth.test first (its bot name goes into the fixes; without a working token nothing else can answer)."""
    reach = "check SLACK_API_URL and that Slack can be reached from here"
    auth = await _bounded("Slack auth.test", slack.auth(), deadline, reach)
    if not auth.ok:
        return [auth]
    posts = sorted(v for v, where in names.places.items() if any(w.endswith(".channel") for w in where))
    checks: list[tuple[str, Awaitable[Result]]] = [(f"channel {v}", slack.channel(v)) for v in posts]
    for value in sorted(v for v in names.places if v not in posts and v != "*"):
        if value.startswith(("C", "G", "#")):  # a channel allowed to run: it must exist, the bot need not be in it
            checks.append((f"channel {value}", slack.channel(value, post=False)))
        else:
            checks.append((value, slack.principal(value)))
    return [auth, *await asyncio.gather(*(_bounded(item, check, deadline, reach) for item, check in checks))]


async def online_checks(
    catalog: Catalog, client: AsyncWebClient | None, *, deadline: float = DEADLINE
) -> list[Result]:
    """Every check, at once, each within ``deadline``; ``client`` None: no Slack token, Slack is not tried."""
    probes = [
        _bounded(f"connection {name} ({c.provider})", _connection(name, c, catalog), deadline,
                 f"check connections.{name}.base_url and that it can be reached from here (proxy, firewall, VPN)")
        for name, c in sorted(catalog.connections.items())
    ]

    async def slack_part() -> list[Result]:
        if client is None:
            return []
        names = names_in(catalog)
        return await _slack_checks(_Slack(client, catalog, names), names, deadline)

    connections, slack = await asyncio.gather(asyncio.gather(*probes), slack_part())
    return [*connections, *slack, *_pagerduty(catalog)]


def _pagerduty(catalog: Catalog) -> list[Result]:
    """PagerDuty is not tried, and the check says so: the Events API has no harmless call (an event pages someone,
    and a bad routing key is only refused when an event is sent). The offline check validated the keys' form."""
    paged = catalog.paged()
    if not paged:
        return []
    names = ", ".join(p.name for p in paged[:5]) + (", …" if len(paged) > 5 else "")
    said = (
        f"not tried: the Events API has no harmless call (any event pages someone); {len(paged)} pipeline(s) "
        f"page it ({names}); a routing key it refuses is logged when the first alert is sent"
    )
    return [Result("PagerDuty", True, said)]
