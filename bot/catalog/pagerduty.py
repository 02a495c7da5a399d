"""``pagerduty: {routing_key: "${PD_ROUTING_KEY}"}`` on a pipeline or in ``defaults``: where its failures page.

``url`` (optional): the PagerDuty service's page (``https://<subdomain>.pagerduty.com/service-directory/P…``),
which the Slack alert links: the Events API answers with no incident URL, so the service page is where on-call
finds the incident. The routing key is the 32-character Integration Key of an Events API v2 integration on a
PagerDuty service. It is a secret: written as a reference to an environment variable, never in the file, kept as a
``SecretStr`` and never quoted in a problem line. A pipeline's ``pagerduty: false`` opts out of the defaults' service.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from bot.models import JsonValue
from bot.urls import web_link_problem

__all__ = ["KEY_LENGTH", "PagerDutyService", "pagerduty_of"]

KEY_LENGTH = 32
_KEY = re.compile(r"[A-Za-z0-9]{32}")
_URL = re.compile(r"https://[^\s<>|]+")  # no space, nor what would break a mrkdwn link
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_EXAMPLE = "pagerduty: {routing_key: \"${PD_ROUTING_KEY}\"}"


@dataclass(frozen=True, slots=True)
class PagerDutyService:
    """The PagerDuty service a pipeline's failures page. ``variable``: the environment variable the key came from
    (what a person may be told; the key never is)."""

    routing_key: SecretStr
    variable: str
    url: str | None = None  # the service's page on PagerDuty, linked from the alert

    def __repr__(self) -> str:  # a dataclass repr would show SecretStr's mask; the variable says which key
        return f"PagerDutyService(routing_key=${{{self.variable}}}, url={self.url!r})"


def pagerduty_of(
    value: JsonValue, path: str, env: Mapping[str, str], problems: list[str]
) -> PagerDutyService | bool | None:
    """The service ``value`` names; ``False`` for an opt-out; None when absent or wrong (each problem appended as
    ``path.field: what to do``, never showing the key)."""
    if value is None:
        return None
    if value is False:
        return False  # this pipeline pages nobody, whatever ``defaults`` say
    if not isinstance(value, Mapping):
        problems.append(f"{path}: must be a mapping like {_EXAMPLE} (or false, to page nobody)")
        return None
    for key in value:
        if key not in ("routing_key", "url"):
            problems.append(f"{path}.{key}: unknown key; known keys: routing_key, url")
    url = value.get("url")
    if url is not None and (not isinstance(url, str) or not _URL.fullmatch(url.strip())):
        problems.append(
            f"{path}.url: must be the https address of the PagerDuty service's page, like "
            "https://acme.pagerduty.com/service-directory/PABC123"
        )
        return None
    if isinstance(url, str) and "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        # linked from every alert of the pipeline: a password in it is one given to the channel
        problems.append(
            f"{path}.url: holds a user name or password before its host (user:…@; not quoted here): remove them"
        )
        return None
    if isinstance(url, str) and (problem := web_link_problem(url.strip())) is not None:
        # read as the link is: a password holding / (https://admin:pa/ss@acme…) ends the host before its @ above,
        # and went into every alert's link; quoted without what precedes its last @
        problems.append(f"{path}.url: {problem}")
        return None
    written = value.get("routing_key")
    where = f"{path}.routing_key"
    if written is None:
        problems.append(
            f"{where}: routing_key is required: the {KEY_LENGTH}-character Integration Key of an Events API v2 "
            "integration on the PagerDuty service, written as ${PD_ROUTING_KEY}"
        )
        return None
    match = _REF.fullmatch(written.strip()) if isinstance(written, str) else None
    if match is None:
        problems.append(
            f"{where}: secrets do not belong in the catalog; put the Integration Key in an environment variable "
            "and write routing_key: ${PD_ROUTING_KEY}"
        )
        return None
    variable = match.group(1)
    key = env.get(variable)
    if key is None or not key.strip():
        problems.append(
            f"{where}: environment variable {variable} is {'not set' if key is None else 'empty'}; set it in .env "
            "or the environment"
        )
        return None
    if not _KEY.fullmatch(key.strip()):
        problems.append(
            f"{where}: the value of {variable} is not a PagerDuty Integration Key ({len(key.strip())} characters; "
            f"one is {KEY_LENGTH} letters and digits: Service → Integrations → Events API v2 → Integration Key)"
        )
        return None
    return PagerDutyService(SecretStr(key.strip()), variable, url.strip() if isinstance(url, str) else None)
