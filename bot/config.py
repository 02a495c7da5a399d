"""Process settings: environment, ``.env`` and a secrets directory, through pydantic-settings.

Tokens are ``SecretStr``: printing the settings never shows them, nor the password of ``DATABASE_URL`` (hidden in
``repr`` and in ``model_dump``). ``problems()`` lists what would stop the bot from running, each with the
environment variable to set.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
from pydantic import BeforeValidator, Field, SecretStr, ValidationError, field_serializer, field_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from bot.ops.plain import plain_error, safe_text
from bot.ops.redact import MIN_SECRET_LENGTH
from bot.urls import check_url

__all__ = [
    "DEFAULT_SECRETS_DIR",
    "Settings",
    "database_url_problem",
    "environment",
    "hide_password",
    "load_settings",
    "sqlite_folder_problem",
    "unfilled_placeholders",
]

DEFAULT_SECRETS_DIR = Path("/run/secrets")

#: the placeholders of .env.example (tests/unit/test_config.py keeps the two the same): a variable that still holds
#: its placeholder was copied and never filled in, which `check` cannot otherwise tell from a real value
EXAMPLE_VALUES: dict[str, str] = {
    "SLACK_BOT_TOKEN": "xoxb-0000000000-0000000000000-example",
    "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
    "RIVERY_API_TOKEN": "rivery-token-example",
    "RIVERY_EU_API_TOKEN": "rivery-eu-token-example",
    "TAILER_API_JWT": "eyJhbGciOiJSUzI1NiJ9.example.signature",
    "INVISION_API_KEY": "dd63a1ad-60eb-4066-8d71-1721007437b4",
    "DATAKITCHEN_USERNAME": "bot@example.com",
    "DATAKITCHEN_PASSWORD": "change-me",
    "PD_ROUTING_KEY": "pagerdutyroutingkeyexample000000",
}


def unfilled_placeholders(env: dict[str, str]) -> list[str]:
    """The variables of ``env`` that still hold .env.example's placeholder, sorted."""
    return sorted(name for name, value in env.items() if EXAMPLE_VALUES.get(name) == value)


def _duration(value: object, *, above_zero: bool) -> timedelta:
    """A setting ``…_SECONDS`` as a ``timedelta``: the environment gives a number of seconds (``10``, ``1.5``),
    code may give a ``timedelta``. Anything else is refused in plain words."""
    duration: timedelta | None = None
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, int | float | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError, OverflowError):  # not a number; nan, inf or beyond a timedelta
            duration = timedelta(seconds=float(value))
    if duration is None or duration < timedelta(0) or (above_zero and not duration):
        least = "above 0" if above_zero else "0 or more"
        raise ValueError(f"must be a number of seconds, {least}, e.g. 10")  # the default, in load_settings
    return duration


#: a duration set as a number of seconds: 0 or more, or above 0
Seconds = Annotated[timedelta, BeforeValidator(lambda value: _duration(value, above_zero=False))]
PositiveSeconds = Annotated[timedelta, BeforeValidator(lambda value: _duration(value, above_zero=True))]


class Settings(BaseSettings):
    """Everything the process reads from its environment. Names are the upper-case field names."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    slack_bot_token: SecretStr | None = Field(default=None, description="xoxb-… bot token")
    slack_signing_secret: SecretStr | None = Field(default=None, description="verifies HTTP-mode requests")
    slack_app_token: SecretStr | None = Field(default=None, description="xapp-… token; set → Socket Mode")
    slack_api_url: str = Field(default="https://slack.com/api/", description="Slack Web API base URL")
    slack_command: str = Field(default="/pipeline", description="the slash command")
    # NoDecode: the comma form (U1,U2) must reach the validator instead of failing as JSON
    slack_admins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Slack user ids allowed everything"
    )

    database_url: str = Field(default="sqlite+aiosqlite:///pipeline-bot.db")
    pipelines_file: Path = Field(default=Path("pipelines.yml"))
    host: str = "0.0.0.0"  # noqa: S104 - a server in a container listens on all interfaces
    port: int = Field(default=3000, ge=0, le=65535)
    http_read_timeout_seconds: PositiveSeconds = Field(
        default=timedelta(seconds=10), description="a client that has not sent its request within this is disconnected"
    )

    # tracking and delivery pace; the defaults suit production, tests and the demo set them lower
    poll_interval_seconds: PositiveSeconds = Field(
        default=timedelta(seconds=5), description="first polls of a run; grows with age"
    )
    poll_interval_max_seconds: PositiveSeconds = timedelta(seconds=60)
    poll_tick_seconds: PositiveSeconds = Field(
        default=timedelta(seconds=1), description="how often due runs are looked for"
    )
    delivery_tick_seconds: PositiveSeconds = Field(
        default=timedelta(seconds=0.25), description="how often Slack messages are sent"
    )
    unknown_after_seconds: Seconds = Field(default=timedelta(minutes=2), description="show 'status unknown' after this")
    shutdown_grace_seconds: Seconds = timedelta(seconds=10)
    lease_seconds: PositiveSeconds = Field(
        default=timedelta(seconds=60), description="a dead replica's work is taken over after this"
    )

    # alerting
    watch_interval_seconds: PositiveSeconds = Field(
        default=timedelta(seconds=60), description="passive watch: list calls per pipeline"
    )
    stuck_check_seconds: PositiveSeconds = timedelta(seconds=30)
    alert_group_seconds: Seconds = Field(
        default=timedelta(seconds=10), description="failures within this become one message"
    )
    usergroup_cache_seconds: Seconds = Field(
        default=timedelta(seconds=60),
        description="a user group's members (owners, allow_*) are looked up again after this",
    )
    alert_suppress_seconds: Seconds = Field(
        default=timedelta(hours=1), description="a repeat inside this updates the alert"
    )
    message_edit_gap_seconds: Seconds = Field(
        default=timedelta(seconds=5),
        description="a message many runs share (alert, workflow card) is edited at most this often",
    )
    provider_down_after_seconds: Seconds = Field(
        default=timedelta(minutes=2), description="then one 'cannot reach' alert"
    )
    fallback_channel: str | None = Field(default=None, description="where messages go when their channel refuses")
    pagerduty_events_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue", description="PagerDuty Events API v2 (or an emulator)"
    )
    pagerduty_timeout_seconds: PositiveSeconds = Field(
        default=timedelta(seconds=10), description="how long one PagerDuty event may take before it is tried again"
    )
    pagerduty_retry_seconds: PositiveSeconds = Field(
        default=timedelta(seconds=2), description="first wait after PagerDuty failed (429, 5xx); doubles to 5 minutes"
    )
    digest_time: str | None = Field(default="09:00", description="daily digest per channel, HH:MM; empty: none")
    digest_timezone: str = Field(default="UTC", description="time zone of DIGEST_TIME, e.g. Europe/Oslo")

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value.strip()):
            raise ValueError("write it as HH:MM, like 09:00, or leave it empty for no digest")
        return value.strip()

    @field_validator("digest_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone; use a name like Europe/Oslo or UTC") from None
        return value

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # the libraries' own loggers (aiosqlite, sqlalchemy, httpx…) would fill DEBUG with a line per query
    library_log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="WARNING", description="level of the libraries' loggers; LOG_LEVEL still applies on top"
    )
    log_format: Literal["auto", "json", "text"] = "auto"

    @field_validator("slack_command")
    @classmethod
    def _command(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith("/") or len(value) > 32 or " " in value:
            raise ValueError("must start with '/', have no spaces and be at most 32 characters, like /pipeline")
        return value

    @field_validator("slack_admins", mode="before")
    @classmethod
    def _admins(cls, value: object) -> object:
        if isinstance(value, str):  # SLACK_ADMINS=U1,U2 as well as JSON
            stripped = value.strip()
            if stripped.startswith("["):
                try:
                    return json.loads(stripped)
                except json.JSONDecodeError:
                    raise ValueError(
                        "is not a JSON list; write the ids separated by commas, like U0ALICE01,U0BOB0002"
                    ) from None
            return [v.strip() for v in stripped.split(",") if v.strip()]
        return value

    @field_serializer("database_url")
    def _database_url_shown(self, url: str) -> str:
        return hide_password(url)

    def __repr_args__(self) -> Iterator[tuple[str | None, object]]:
        # pydantic's repr shows every field as it is: the database URL carries its password
        for name, value in super().__repr_args__():
            yield name, hide_password(value) if name == "database_url" and isinstance(value, str) else value

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def problems(self) -> list[str]:
        """What stops the bot from running with these settings, one line each."""
        found: list[str] = []
        bot = self.slack_bot_token.get_secret_value() if self.slack_bot_token else ""
        if not bot:
            found.append("SLACK_BOT_TOKEN: not set; the bot cannot talk to Slack (a token starting xoxb-)")
        elif problem := _token_problem(bot):
            found.append(f"SLACK_BOT_TOKEN: {problem}")
        elif not bot.startswith("xoxb-"):
            found.append("SLACK_BOT_TOKEN: should start with xoxb- (the bot token, not a user or app token)")
        if self.socket_mode:
            app = self.slack_app_token.get_secret_value() if self.slack_app_token else ""
            if problem := _token_problem(app):
                found.append(f"SLACK_APP_TOKEN: {problem}")
            elif not app.startswith("xapp-"):
                found.append("SLACK_APP_TOKEN: should start with xapp- (an app-level token with connections:write)")
        elif not self.slack_signing_secret or not self.slack_signing_secret.get_secret_value():
            found.append(
                "SLACK_SIGNING_SECRET: not set; HTTP mode cannot verify requests "
                "(set it, or set SLACK_APP_TOKEN to use Socket Mode)"
            )
        elif problem := _token_problem(self.slack_signing_secret.get_secret_value()):
            found.append(f"SLACK_SIGNING_SECRET: {problem}")
        for admin in self.slack_admins:
            if admin[:1] not in ("U", "W") or not admin.isalnum():
                found.append(f"SLACK_ADMINS: {admin!r} is not a Slack user id (like U0123ABCD)")
        if problem := database_url_problem(self.database_url):
            found.append(f"DATABASE_URL: {problem}")
        check_url(self.slack_api_url, "SLACK_API_URL", found, [], sends="the bot token")
        check_url(self.pagerduty_events_url, "PAGERDUTY_EVENTS_URL", found, [], sends="the PagerDuty routing keys")
        found += _proxy_problems(os.environ)
        return found

    def warnings(self) -> list[str]:
        """Worth fixing, not worth refusing to run: plain http to a Slack API off this machine."""
        found: list[str] = []
        check_url(self.slack_api_url, "SLACK_API_URL", [], found, sends="the bot token")
        check_url(self.pagerduty_events_url, "PAGERDUTY_EVENTS_URL", [], found, sends="the PagerDuty routing keys")
        found += _slack_proxy_bypass(os.environ, self.slack_api_url)
        return found

    def secret_values(self) -> list[str]:
        """Every secret of the settings in clear (tokens, signing secret, the database password), to redact."""
        values = [
            value.get_secret_value()
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr)
        ]
        values += _database_passwords(self.database_url)
        values += _proxy_passwords(os.environ)
        return values


def _database_passwords(url: str) -> list[str]:
    """The password of a database URL in every way it may be read: as SQLAlchemy reads it (what the driver is
    given: ``bot:p/ss@db`` has the password ``p/ss``), as ``urlsplit`` reads it (``p``), as written and decoded,
    SQLAlchemy's ``user:password`` (what hides a password too short to redact alone), and asyncpg's
    ``?password=``."""
    from sqlalchemy.engine import make_url

    found: list[str] = []
    try:
        parsed = make_url(url)
    except Exception:  # a URL SQLAlchemy cannot read; problems() says so
        parsed = None
    if parsed is not None:
        if parsed.password:
            found += [parsed.password, f"{parsed.username or ''}:{parsed.password}"]
        query = parsed.query.get("password")
        found += [query] if isinstance(query, str) else list(query or ())
    try:
        split = urlsplit(url)
        password = split.password
    except ValueError:  # a URL too broken to split
        password = None
    if password:
        found += [password, unquote(password)]
    found += [v for k, v in parse_qsl(url.partition("?")[2]) if k.lower() == "password"]
    return found


#: a URL's scheme (RFC 3986)
_SCHEME = re.compile(r"[a-z][a-z0-9+.\-]*")

#: where httpx (the provider clients) and the Slack SDK take a proxy from, in either case
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _spellings(environ: Mapping[str, str], name: str) -> list[str]:
    """The variables of the environment named ``name`` in any case, upper then lower case first: httpx takes its
    proxies from ``urllib.request.getproxies()``, which reads ``Https_Proxy`` as well; read as HTTPS_PROXY and
    https_proxy alone, such a proxy's password was no secret (its ``Proxy-Authorization`` quoted in clear from a
    407 page by ``check --online`` and the provider errors)."""
    others = sorted(v for v in environ if v.lower() == name.lower() and v not in (name, name.lower()))
    return [name, name.lower(), *others]


def _proxy_problems(environ: Mapping[str, str]) -> list[str]:
    """A proxy in the environment that httpx cannot use: every provider client of the running bot would fail to be
    made (an ``ImportError`` for SOCKS without ``socksio``, a ``ValueError`` for another scheme), each call an ERROR
    with a traceback, while ``check`` said ok. The URL is never quoted (it may hold a password)."""
    found: list[str] = []
    for name in _PROXY_VARIABLES:
        for variable in _spellings(environ, name):
            url = environ.get(variable, "").strip()
            if not url:
                continue
            scheme = url.split("://", 1)[0].lower() if "://" in url else "http"  # httpx reads "host:port" as http
            if scheme in ("socks5", "socks5h"):
                if importlib.util.find_spec("socksio") is None:
                    found.append(
                        f"{variable}: a SOCKS proxy needs the socksio package, which this installation lacks: no "
                        "provider could be called; use an http:// proxy"
                    )
            elif scheme not in ("http", "https"):
                # a scheme is letters, digits, + - . (RFC 3986): what else came before "://" is a user name and the
                # start of a password holding "://" (``alice:Pa55://word@proxy:3128``), quoted here in clear while
                # no secret was known of it
                found.append(
                    f"{variable}: the proxy's scheme {safe_text(scheme[:20])!r} is not one the bot can use (http, "
                    "https, socks5): no provider could be called" if _SCHEME.fullmatch(scheme) else
                    f"{variable}: what comes before '://' is no scheme (not quoted here: it may hold a password): no "
                    "provider could be called. Write the proxy as http://user:password@host:port, a user name or "
                    "password holding : / @ percent-encoded (: as %3A, / as %2F, @ as %40)"
                )
                continue
            full = url if "://" in url else f"http://{url}"
            try:  # as httpx reads it: a password holding # / ? ends the host early ("Invalid port: '<its start>'")
                httpx.URL(full)
                # as the Slack SDK's aiohttp (yarl, like urlsplit) reads it: a password holding [ or ] is an "Invalid
                # IPv6 URL" there (httpx takes it): every Slack call failed with the URL, password and all, in the
                # logs, while no secret was known of it
                urlsplit(full).port  # noqa: B018 - the port is read only when asked for
            except (httpx.InvalidURL, ValueError):
                found.append(
                    f"{variable}: not a URL the bot can read (not quoted here: it may hold a password): no provider "
                    "(or Slack) could be called. A user name or password holding @ : / ? # [ ] or % must be "
                    "percent-encoded in "
                    "it (# as %23, / as %2F, ? as %3F, [ as %5B, ] as %5D)"
                )
    if (slack := _slack_proxy(environ)) is not None:
        variable, url = slack
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme in ("", "socks5", "socks5h"):  # another scheme is a problem above, for everything
            # aiohttp (the Slack SDK) refuses a proxy without its scheme ("InvalidURL") and speaks HTTP to any other
            # (a SOCKS proxy hangs up): every Slack call failed while httpx (the providers) took it and check said ok
            shown = f"the scheme {safe_text(scheme[:20])!r}" if scheme else "no scheme (host:port)"
            found.append(
                f"{variable}: the Slack SDK takes its proxy from here and can use only an http:// or https:// proxy "
                f"written with its scheme; this one has {shown}: no Slack call could be made. Write it as "
                "http://host:port; to send only the providers through a SOCKS proxy, set it as ALL_PROXY and leave "
                "HTTPS_PROXY and HTTP_PROXY unset (the Slack SDK does not read ALL_PROXY)"
            )
        elif not _aiohttp_can_send(url):
            # aiohttp raised at every Slack call (ValueError "A ':' is not allowed in login", UnicodeEncodeError
            # "'latin-1' codec can't encode…") while httpx sent them: check said ok
            found.append(
                f"{variable}: the Slack SDK takes its proxy from here and cannot send its user name and password "
                "(not quoted here): a user name holding ':', or a character outside Latin-1 (such as €) in either: "
                "no Slack call could be made. Use a proxy account whose user name has no ':' and whose password "
                "has only Latin-1 characters"
            )
    return found


def _aiohttp_can_send(url: str) -> bool:
    """Whether aiohttp (the Slack SDK) can make the ``Proxy-Authorization`` of this proxy URL."""
    from aiohttp import BasicAuth
    from yarl import URL

    try:
        parsed = URL(url)
    except ValueError:  # no URL to yarl: a problem of its own (_proxy_problems)
        return True
    try:
        auth = BasicAuth.from_url(parsed)
        if auth is not None:
            auth.encode()
    except ValueError:  # a ':' in the user name; UnicodeEncodeError (a ValueError): outside Latin-1
        return False
    return True


def _slack_proxy_bypass(environ: Mapping[str, str], slack_api_url: str) -> list[str]:
    """NO_PROXY naming SLACK_API_URL's host while the Slack SDK has a proxy: the SDK never reads NO_PROXY, so its calls
    went through the proxy all the same (the providers' did not), and nothing said so."""
    slack = _slack_proxy(environ)
    bypass = next((environ[v] for v in _spellings(environ, "NO_PROXY") if environ.get(v)), "")
    try:
        host = urlsplit(slack_api_url).hostname or ""
    except ValueError:  # a problem of its own
        return []
    if slack is None or not bypass.strip() or not host:
        return []
    if not _bypassed(host, bypass):
        return []
    return [
        f"NO_PROXY names the host of SLACK_API_URL, but the Slack SDK does not read NO_PROXY: its calls go through "
        f"the proxy in {slack[0]} all the same. If that proxy cannot reach {safe_text(host[:80])}, let it, or unset "
        f"{slack[0]} for the bot"
    ]


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether httpx would reach ``host`` without a proxy for this NO_PROXY: ``*``; a domain, itself and below it;
    ``.domain`` below it (and itself here: a warning too many rather than one missing); an address as it is (a port
    or a scheme in an entry is not compared)."""
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        name = entry.split("://", 1)[-1].split("/", 1)[0]
        if name.startswith("["):
            name = name[1:].partition("]")[0]
        elif name.count(":") == 1:
            name = name.partition(":")[0]
        if entry == "*" or host == name.lstrip("*.") or (name.lstrip("*") and host.endswith("." + name.lstrip("*."))):
            return True
    return False


def _slack_proxy(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """The variable the Slack SDK (and its Socket Mode client) takes a proxy from, and its value, or None: the first
    of these set and not empty, as ``slack_sdk.proxy_env_variable_loader`` reads them (no ALL_PROXY, no NO_PROXY;
    one holding only spaces means no proxy)."""
    for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        if value := environ.get(variable):
            return (variable, value.strip()) if value.strip() else None
    return None


def _proxy_passwords(environ: Mapping[str, str]) -> list[str]:
    """The password of each proxy URL in the environment (``http://user:password@proxy:3128``), to redact: httpx
    sends it in every request to a plain-http base_url as ``Proxy-Authorization: Basic base64(user:password)``, and
    a proxy's error page that shows the request echoes it into the answer the bot quotes. As written, decoded (what
    httpx encodes), and ``user:password`` (whose base64 is the header). A proxy whose credential is its user name
    alone (``http://API_KEY:@proxy:8011``, ``http://API_KEY@proxy``, as some proxy services take an API key): httpx
    sends ``Basic base64(API_KEY:)`` all the same, so that base64 is a secret, and the user name too when it is as long
    as a key (``MIN_SECRET_LENGTH``; a short account name such as ``data`` would mask the word everywhere) (fifteenth
    pass (b))."""
    found: list[str] = []
    for name in _PROXY_VARIABLES:
        for variable in _spellings(environ, name):
            url = environ.get(variable, "").strip()
            if not url:
                continue
            found += _aiohttp_basic(url if "://" in url else f"http://{url}")
            for username, password in _proxy_userinfo(url if "://" in url else f"http://{url}"):
                user = unquote(username or "")
                if password:
                    found += [password, unquote(password), f"{user}:{unquote(password)}"]
                    found += _latin1_basic(f"{user}:{unquote(password)}")
                elif username:
                    found.append(base64.b64encode(f"{user}:".encode()).decode("ascii"))
                    found += _latin1_basic(f"{user}:")
                    if len(user) >= MIN_SECRET_LENGTH:
                        found += [username, user]
    return found


def _latin1_basic(userpass: str) -> list[str]:
    """The ``Proxy-Authorization`` the Slack SDK's aiohttp sends for ``user:password`` holding a non-ASCII character:
    aiohttp's ``BasicAuth`` encodes it as Latin-1, not UTF-8 (httpx), so its base64 is no form the redactor makes of
    the password (seen: a plain-http Slack API behind a proxy whose 407 page shows the request, the ``SlackApiError``
    quoting it)."""
    try:
        raw = userpass.encode("latin-1")
    except UnicodeEncodeError:  # aiohttp cannot send it either
        return []
    return [] if userpass.isascii() else [base64.b64encode(raw).decode("ascii")]


def _aiohttp_basic(url: str) -> list[str]:
    """The base64 of the ``Proxy-Authorization`` the Slack SDK's aiohttp sends for this proxy URL, as aiohttp makes
    it: yarl leaves a percent-escape that is no UTF-8 as written (``pass%E4word``: an ``ä`` escaped as Latin-1), so
    aiohttp sends ``user:pass%E4word`` where httpx sends the decoded password, and no form the redactor made of it
    matched: a proxy's 407 page showing the request put the header in a ``SlackApiError``, stored and logged in
    clear."""
    from aiohttp import BasicAuth
    from yarl import URL

    try:
        auth = BasicAuth.from_url(URL(url))
        header = auth.encode() if auth is not None else ""
    except (ValueError, TypeError):  # a URL yarl refuses, a character Latin-1 lacks: aiohttp sends nothing
        return []
    return [header.removeprefix("Basic ")] if header else []


def _proxy_userinfo(url: str) -> list[tuple[str, str]]:
    """A proxy URL's user and password as each reader of it reads them: ``urlsplit`` (as written) and httpx (what it
    sends as ``Proxy-Authorization``). They differ: a password holding ``[`` or ``]`` is no URL to ``urlsplit``
    (``Invalid IPv6 URL``) while httpx sends it; read by ``urlsplit`` alone, nothing of it was a secret (sixteenth
    pass (b))."""
    found: list[tuple[str, str]] = []
    with contextlib.suppress(ValueError):  # too broken to split
        split = urlsplit(url)
        found.append((split.username or "", split.password or ""))
    with contextlib.suppress(httpx.InvalidURL, ValueError):  # httpx refuses it: it sends nothing
        # httpx's own reading, as it keeps it (percent-encoded): decoded by the caller, as urlsplit's is
        user, _, password = httpx.URL(url).userinfo.decode("ascii").partition(":")
        found.append((user, password))
    return found


def hide_password(url: str) -> str:
    """A database URL as SQLAlchemy reads it, its password (in the userinfo or as ``?password=``) shown as ``***``;
    only ``***`` for one SQLAlchemy cannot read."""
    from sqlalchemy.engine import make_url

    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # its message holds the URL: nothing of it is shown
        return "***"
    base, mark, query = shown.partition("?")
    if not mark:
        return shown
    pieces = [
        f"{piece.partition('=')[0]}=***" if piece.partition("=")[0].lower() == "password" else piece
        for piece in query.split("&")
    ]
    return f"{base}?{'&'.join(pieces)}"


def _token_problem(value: str) -> str | None:
    """Why a Slack token or secret as given cannot be the real one (never showing it), or None.

    Slack's tokens and secrets are one word of letters, digits and dashes: a space, a line break or quotes
    come from copying (or Docker's --env-file, which keeps quotes), and every Slack call would fail; none is
    shorter than ``MIN_SECRET_LENGTH`` (a placeholder, or a value cut short)."""
    if len(value) < MIN_SECRET_LENGTH:
        return (
            f"is shorter than {MIN_SECRET_LENGTH} characters: not a real Slack token or secret "
            "(a placeholder, or cut short when copied?): copy it again from the app's settings"
        )
    if value[:1] in ("'", '"'):
        return "is wrapped in quotes (Docker's --env-file keeps them): remove them"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "contains a space, a line break or a control character (copied with the token?): remove it"
    if not value.isascii():  # a typographic dash (–) from a document, say
        return "contains a character that is not plain ASCII (a typographic dash or quote?): copy it again from Slack"
    return None


#: the drivers the bot is installed with, by database
_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
_FORMS = "sqlite+aiosqlite:///path/to/file.db or postgresql+asyncpg://user:password@host:5432/db"
_ENCODE = "A password with @ : / ? # or % in it must be percent-encoded in the URL (@ as %40, : as %3A)"


def database_url_problem(url: str) -> str | None:
    """Why the bot cannot open ``url``, saying which form to use (never showing the URL: it may hold a
    password), or None."""
    if "://" not in url:
        return f"not a database URL; use {_FORMS}"
    scheme = url.split("://", 1)[0]
    written, _, driver = scheme.partition("+")
    database = "postgresql" if written == "postgres" else written
    if database not in _DRIVERS:
        return f"{shown_scheme(scheme)}:// is not a database the bot can use; use {_FORMS}"
    if driver != _DRIVERS[database] or written != database:  # SQLAlchemy knows no postgres+asyncpg://
        form = f"{database}+{_DRIVERS[database]}://" + ("/…" if database == "sqlite" else "…")
        return (
            f"use {form} (got {shown_scheme(scheme)}://): the bot talks to {_NAMES[database]} through "
            f"{_DRIVERS[database]}"
        )
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)  # as the engine will read it
        port = parsed.port
    except Exception:  # its message holds the URL, password included
        return f"cannot be read as a URL; write it like {_FORMS}. {_ENCODE}"
    if database == "sqlite":
        return _sqlite_problem(parsed.database, dict(parsed.query))
    if parsed.host and any(c in parsed.host for c in "@/?# "):  # bot:p@ss@db reads as host "ss@db"
        return (
            "the password must be percent-encoded in the URL (@ as %40, : as %3A, / as %2F, ? as %3F, # as %23, "
            "% as %25): as written, part of it is read as the host name"
        )
    if port is not None and not 0 < port < 65536:
        return f"port {port} is out of range (1-65535)"
    if "sslmode" in parsed.query:
        return "asyncpg takes ssl=require (or ssl=verify-full…), not sslmode=: write ?ssl=require"
    return None


def _sqlite_problem(database: str | None, query: dict[str, object]) -> str | None:
    if not database or database == ":memory:" or "mode=memory" in database or query.get("mode") == "memory":
        return (
            "an in-memory SQLite database is lost when the bot stops (runs, cards and alerts with it): "
            "use a file, like sqlite+aiosqlite:///pipeline-bot.db"
        )
    if database.startswith("file:") or "uri" in query:
        return "SQLite URI filenames (file:…, ?uri=true) are not supported: write the path, like sqlite+aiosqlite:///data/bot.db"
    for name in ("timeout",):
        value = query.get(name)
        if value is not None:
            try:
                float(str(value))
            except ValueError:
                return f"?{name}= must be a number of seconds"
    return None


def shown_scheme(scheme: str) -> str:
    """The scheme as a problem line quotes it: cut, never a password (a URL without :// in the right place)."""
    return scheme if len(scheme) <= 40 and "@" not in scheme and ":" not in scheme else scheme[:20] + "…"


def load_settings(env_file: Path | str | None = ".env", secrets_dir: Path | None = None) -> Settings:
    """Read settings; a value that cannot be parsed raises ConfigError naming its variable."""
    directory = secrets_dir or Path(os.environ.get("SECRETS_DIR", DEFAULT_SECRETS_DIR))
    _readable_env_file(env_file)
    try:
        return Settings(
            _env_file=env_file,
            _secrets_dir=directory if directory.is_dir() else None,
        )
    except ValidationError as exc:
        lines = [_settings_problem(err) for err in exc.errors()]
        raise ConfigError([_placed(line, env_file) for line in lines], source="settings") from None


def _placed(line: str, env_file: Path | str | None) -> str:
    """``PORT: …`` → ``.env:3: PORT: …`` when the value came from that line of the dotenv file (the process
    environment, which wins, does not have it)."""
    variable = line.split(":", 1)[0]
    if env_file is None or variable in os.environ or not Path(env_file).is_file():
        return line
    pattern = re.compile(rf"\s*(?:export\s+)?{re.escape(variable)}\s*=", re.IGNORECASE)
    found = 0
    for number, text in enumerate(Path(env_file).read_text(encoding="utf-8").splitlines(), start=1):
        if pattern.match(text):
            found = number  # the last one is the one read
    return f"{env_file}:{found}: {line}" if found else line


def _settings_problem(err: ErrorDetails) -> str:
    """One setting that cannot be read, in plain words: ``PORT: must be a whole number, e.g. 3000`` (the
    example is the setting's default where it has one)."""
    name = str(err["loc"][0]) if err["loc"] else ""
    variable = name.upper() or "settings"
    sentence = plain_error(err, "").strip()
    field = Settings.model_fields.get(name)
    default = field.default if field is not None else None
    if isinstance(default, int | float) and not isinstance(default, bool):
        sentence = sentence.replace("e.g. 3", f"e.g. {default:g}").replace("e.g. 2.5", f"e.g. {default:g}")
    if isinstance(default, timedelta):  # a duration, set in seconds
        sentence = sentence.replace("e.g. 10", f"e.g. {default.total_seconds():g}")
    return f"{variable}: {safe_text(sentence)}"


def _readable_env_file(env_file: Path | str | None) -> None:
    """A ``.env`` that is not UTF-8 (a Latin-1 é from an editor) is a ConfigError naming where, not a traceback."""
    if env_file is None or not Path(env_file).is_file():
        return
    try:
        Path(env_file).read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"{env_file}:{line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); save the file as UTF-8"],
            source=str(env_file),
        ) from None
    except OSError as exc:
        raise ConfigError([f"{env_file}: cannot be read: {exc.strerror}"], source=str(env_file)) from None


def environment(env_file: Path | str | None = ".env") -> dict[str, str]:
    """Variables for ``${NAME}`` references in the catalog: the process environment over ``.env``.

    The same precedence pydantic-settings uses for the settings themselves.
    """
    from dotenv import dotenv_values

    merged: dict[str, str] = {}
    _readable_env_file(env_file)
    if env_file is not None and Path(env_file).is_file():
        merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(os.environ)
    return merged


def sqlite_folder_problem(url: str) -> str | None:
    """A SQLite file in a folder that does not exist (here, where ``check`` runs), or None: ``run`` would stop."""
    if database_url_problem(url) is not None or not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    folder = Path(database or ".").resolve().parent
    if folder.is_dir():
        return None
    return f"the folder {folder} of the SQLite file does not exist; create it (a volume, in a container) or correct it"
