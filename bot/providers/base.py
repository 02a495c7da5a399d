"""The one small interface every provider client implements, and the config models it takes.

Each provider module declares, in the same shape:
- ``Connection``: a pydantic model of one account (``provider`` literal, ``base_url``, secrets as
  ``SecretStr``, account fields); the catalog validates ``connections:`` entries against it;
- ``Job``: a pydantic model of the provider's identity of a job (river id, kitchen/recipe/variation…);
  the catalog validates a pipeline's provider fields against it;
- ``Client``: a ``ProviderClient`` subclass with its ``capabilities``; operations a provider lacks raise
  ``OperationNotSupported`` with a message that says so.
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from http.cookiejar import Cookie, CookieJar
from typing import ClassVar, Generic, Self, TypeAlias, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.errors import OperationNotSupported
from bot.models import JsonValue, RunLog, RunLogPage, RunStatus, Stats, Triggered, TriggerLimit
from bot.providers._http import (
    ACCEPT_ENCODING,
    Call,
    HttpCaller,
    RetryPolicy,
    Sleep,
    _default_error_text,
    header_problem,
)
from bot.providers.shards import ShardedTransport, tls_context
from bot.providers.transport import AiohttpTransport

#: the most lines of a run's log a client keeps (from its end): a Full log pages through these
LOG_KEEP_LINES = 20_000

__all__ = ["LOG_KEEP_LINES", "Capability", "ConnectionConfig", "JobConfig", "ProviderClient", "SomeClient"]


class Capability(enum.StrEnum):
    """Operations beyond trigger and status that a provider may offer."""

    LIST_RUNS = "list_runs"  # recent runs of a job: passive watch and `last`
    CANCEL = "cancel"
    ENABLE = "enable"
    DISABLE = "disable"
    ARCHIVE = "archive"
    RESET = "reset"
    RESUME = "resume"
    STATS = "stats"
    STATUSES = "statuses"  # the status of many runs of one scope in one call: batched polls
    LOGS = "logs"  # a run's own log lines: the failure's thread and its Full log


class ConnectionConfig(BaseModel):
    """Fields every connection has. Provider modules subclass it with a ``provider`` literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    base_url: str
    console_url: str | None = Field(default=None, description="web console, for links on cards")
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_concurrency: int = Field(default=8, ge=1, le=256, description="parallel status calls")

    #: secret fields whose value goes in an HTTP header (``check`` refuses one no header can carry)
    header_secrets: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def header_value(cls, field: str, value: str) -> str | None:
        """``value`` of ``field`` as a header carries it (stripped), or None for a field sent otherwise."""
        return value.strip() if field in cls.header_secrets else None

    @classmethod
    def unsendable(cls, field: str, value: str) -> str | None:
        """Why ``value`` of ``field`` cannot go in its HTTP header (never showing it), or None."""
        sent = cls.header_value(field, value)
        return header_problem(sent) if sent is not None else None

    def secret_values(self) -> list[str]:
        """Every secret of this connection in clear, for redaction of error messages."""
        return [
            value.get_secret_value()
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), SecretStr)
        ]


class JobConfig(BaseModel):
    """The provider's identity of a job. Provider modules subclass it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def describe(self) -> str:
        """Short human text for cards and messages."""
        return ", ".join(f"{k}={v}" for k, v in self.model_dump(exclude_none=True).items())

    def with_parameter_types(self, types: Mapping[str, str]) -> Self:
        """This job, told the catalog's parameter types (``int``, ``bool``…) by the catalog loader.

        Most providers take run parameters as text and ignore them; a provider whose API keeps JSON
        types (DataKitchen's overrides) stores the ones it needs, so that they travel with each run.
        """
        return self

    def run_refusal(self) -> str | None:
        """Why the provider cannot run this job (it can still be watched), or None when it can."""
        return None

    def lists_as(self, other: JobConfig) -> bool:
        """Whether a list of ``other``'s runs holds this job's: the same job at the provider, however either was
        written (a run's stored job against the catalog's now). Equal fields, unless a provider says more."""
        return self == other


ConnT = TypeVar("ConnT", bound=ConnectionConfig)
JobT = TypeVar("JobT", bound=JobConfig)


class ProviderClient(abc.ABC, Generic[ConnT, JobT]):
    """Talks to one connection of one provider. Async; one ``httpx.AsyncClient`` per connection."""

    provider: ClassVar[str]
    display_name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: whether ``trigger`` passes run parameters to the provider
    accepts_parameters: ClassVar[bool] = True
    #: HTTP/2 where the provider's own examples use it
    http2: ClassVar[bool] = False
    #: when how run parameters reach the provider is an assumption (no vendor source shows it), what to tell
    #: people who declare them: ``pipeline-bot check`` prints it for each such pipeline
    parameters_assumption: ClassVar[str] = ""
    #: a provider without a run's log (``Capability.LOGS``): what its API gives of a failed run instead, for the
    #: failure's thread
    no_logs: ClassVar[str] = ""

    def __init__(
        self,
        name: str,
        connection: ConnT,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.name = name
        self.connection = connection
        self._owns_http = http is None
        self.http = http or httpx.AsyncClient(
            base_url=_with_slash(connection.base_url),
            timeout=httpx.Timeout(connection.timeout_seconds, connect=min(10.0, connection.timeout_seconds)),
            auth=self._auth(),
            http2=self.http2,
            limits=_limits(connection.max_concurrency),
            verify=tls_context(),
            cookies=_NoCookies(),  # httpx keeps every answer's cookies and sends them back on every later call
            # the encodings read_capped inflates itself, whatever httpx would offer with brotli or zstd installed
            headers={"accept": "application/json", "accept-encoding": ACCEPT_ENCODING, "user-agent": "pipeline-bot"},
        )
        if http is None:
            # aiohttp's pool (bot/providers/transport.py), httpcore's small pools for HTTP/2 (bot/providers/shards.py).
            # As the client's own transport, not a mount: a proxy from the environment, mounted per scheme, still takes
            # precedence, and a host in NO_PROXY (mounted as "no proxy", i.e. the client's own transport) uses it too
            # (an ``all://`` mount left those on httpx's default pool). httpx offers no public way: ``transport=``
            # turns the environment's proxies off
            self.http._transport = _transport(connection.max_concurrency + SPARE_CONNECTIONS, http2=self.http2)
        self.caller = HttpCaller(
            self.http,
            provider=self.display_name,
            connection=name,
            secrets=connection.secret_values(),
            retry=retry,
            sleep=sleep,
            error_text=self._error_text,
            deadline=connection.timeout_seconds,  # the whole of one exchange, not each read (httpx's timeout)
        )

    # -- to implement -----------------------------------------------------------------------

    def _auth(self) -> httpx.Auth | None:
        return None

    def _error_text(self, response: httpx.Response) -> str:
        return _default_error_text(response)

    @abc.abstractmethod
    async def trigger(self, job: JobT, parameters: Mapping[str, str]) -> Triggered:
        """Start a run. Never retried: a failure that leaves the outcome open raises TriggerOutcomeUnknown."""

    @abc.abstractmethod
    async def get_status(self, job: JobT, run_id: str) -> RunStatus:
        """The current status of one run."""

    def console_url(self, job: JobT, run_id: str | None = None) -> str | None:
        """A link to the job (or run) in the provider's web console, where one is known."""
        return self.connection.console_url

    def credential_deadline(self) -> tuple[datetime, str] | None:
        """When this connection's credential stops working and how a person renews it; None when it does
        not expire or the bot renews it itself."""
        return None

    async def probe(self, job: JobT) -> str:
        """One harmless authenticated read that proves this connection's address and credentials, for
        ``pipeline-bot check --online``: what answered, in a few words. Raises ProviderError as any call does.

        By default the recent runs of ``job`` (a pipeline using this connection); a provider without such a list
        overrides it."""
        if not self.can(Capability.LIST_RUNS):
            raise self._unsupported(Capability.LIST_RUNS)
        runs = await self.list_runs(job, since=datetime.now(UTC) - timedelta(days=1), limit=1)
        return f"listed the recent runs of {job.describe()} ({len(runs)} in the last day)"

    # -- optional operations ----------------------------------------------------------------

    async def list_runs(self, job: JobT, *, since: datetime, limit: int = 50) -> list[RunStatus]:
        """Recent runs of a job, newest first, including runs started outside the bot."""
        raise self._unsupported(Capability.LIST_RUNS)

    def status_scope(self, job: JobT) -> Hashable | None:
        """What one batched status call covers for runs of ``job`` (a kitchen, a river, a configuration): runs
        whose scopes are equal are asked together by ``statuses``. None: this job's runs are asked one by one."""
        return None

    async def statuses(
        self, runs: Sequence[tuple[JobT, str]], *, since: datetime,
        slots: AbstractAsyncContextManager[object] | None = None,
    ) -> dict[str, RunStatus]:
        """The statuses of many runs of one scope (``status_scope``), none started before ``since``, in as few
        calls as the API allows (pages included), by provider run id.

        Runs the answer does not show (beyond its pages, older than its window) or shows in a form the bot
        cannot read are left out: the caller asks those with ``get_status``. So is a finished run whose details
        take a call of their own. Raises ProviderError as any call does when the call itself fails.

        ``slots``: the connection's slots (``ClientPool.slot``), the caller holding one for this call: a provider
        whose answer comes in pages may read several at once, each page beyond the caller's one in a slot of its
        own, so the connection's concurrency holds (DataKitchen's kitchens)."""
        raise self._unsupported(Capability.STATUSES)

    def listed(self, job: JobT, *, since: datetime, limit: int, max_age: float) -> list[RunStatus] | None:
        """What ``list_runs(job, since=since, limit=limit)`` would answer, read from the last batched call of
        ``job``'s scope when that call is at most ``max_age`` seconds old and its answer holds all of it: passive
        watch shares the tracker's call instead of making its own. None: no such answer, ask ``list_runs``."""
        return None

    async def cancel(self, job: JobT, run_id: str) -> None:
        raise self._unsupported(Capability.CANCEL)

    async def enable(self, job: JobT) -> None:
        raise self._unsupported(Capability.ENABLE)

    async def disable(self, job: JobT) -> None:
        raise self._unsupported(Capability.DISABLE)

    async def archive(self, job: JobT) -> None:
        raise self._unsupported(Capability.ARCHIVE)

    async def reset(self, job: JobT) -> None:
        raise self._unsupported(Capability.RESET)

    async def resume(self, job: JobT, run_id: str, parameters: Mapping[str, str]) -> Triggered:
        raise self._unsupported(Capability.RESUME)

    async def stats(self, job: JobT | None, *, start: datetime, end: datetime) -> Stats:
        raise self._unsupported(Capability.STATS)

    async def run_log(self, job: JobT, run_id: str) -> RunLog:
        """The run's own log, redacted, at most ``LOG_KEEP_LINES`` lines from its end (where a failure is told)."""
        if self.no_logs:
            raise OperationNotSupported(self.no_logs, provider=self.display_name, connection=self.name)
        raise self._unsupported(Capability.LOGS)

    async def run_log_page(self, job: JobT, run_id: str, page: int, size: int) -> RunLogPage | None:
        """Page ``page`` from the end (``size`` lines) of the run's whole log, where the provider exports it: for
        the Full log of a run whose ``run_log`` was cut. None: no export (the Full log pages ``run_log``'s lines)."""
        return None

    # -- helpers ----------------------------------------------------------------------------

    def trigger_limits(self, job: JobT) -> tuple[TriggerLimit, ...]:
        """The provider's published caps on starting runs of ``job`` (none by default). The bot holds to them
        itself: a person is told when to try again, the bot's own starts wait (``bot/service/limits.py``)."""
        return ()

    @classmethod
    def offered_by(cls, connection: ConnT) -> frozenset[Capability]:
        """What a connection with these settings offers (no client needed: ``pipeline-bot check`` asks it); a
        provider may narrow ``capabilities`` by connection settings."""
        return cls.capabilities

    @classmethod
    def connection_problems(cls, connection: ConnT) -> list[str]:
        """What would stop a client for this connection from being made, found without one (the catalog's
        validation asks, so `check` and the start say it rather than the first call): ``field: problem`` lines."""
        return []

    def offered(self) -> frozenset[Capability]:
        """What this connection offers."""
        return self.offered_by(self.connection)

    def can(self, capability: Capability) -> bool:
        return capability in self.offered()

    async def _json(self, call: Call) -> JsonValue:
        return await self.caller.json(call)

    def _unsupported(self, capability: Capability) -> OperationNotSupported:
        offered = ", ".join(sorted(c.value for c in self.offered())) or "only run and status"
        return OperationNotSupported(
            f"{self.display_name} has no '{capability.value}' operation (it offers: {offered}).",
            provider=self.display_name,
            connection=self.name,
        )

    async def aclose(self) -> None:
        if self._owns_http:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


#: a client of whichever provider, as the services hold it: the registry builds each client with its own provider's
#: connection and job models (a job reaches only the client of its pipeline's connection), so the base models
#: stand for them here
SomeClient: TypeAlias = "ProviderClient[ConnectionConfig, JobConfig]"


def _with_slash(url: str) -> str:
    """httpx joins relative paths onto the base URL's path only when it ends with a slash."""
    return url if url.endswith("/") else url + "/"


class _NoCookies(CookieJar):
    """A client's cookie jar that keeps none: no provider API the bot speaks needs one (credentials go in headers),
    and httpx's client keeps every ``Set-Cookie`` of every answer (a load balancer's, a gateway's) and sends them
    all on every later call, for the client's life; a new cookie per answer grew the jar and each request without
    bound (aiohttp's own jar is a ``DummyCookieJar``, bot/providers/transport.py)."""

    def set_cookie(self, cookie: Cookie) -> None:
        return None


#: connections a client may open beyond its ``max_concurrency`` status calls: triggers, logs and lists made meanwhile
SPARE_CONNECTIONS = 16


def _transport(connections: int, *, http2: bool) -> httpx.AsyncBaseTransport:
    """HTTP/1.1 on aiohttp's pool: half the CPU of httpcore's small pools per call; aiohttp has no HTTP/2."""
    if http2:
        return ShardedTransport(connections, http2=True)
    return AiohttpTransport(connections, verify=tls_context())


def _limits(max_concurrency: int) -> httpx.Limits:
    """As many connections kept alive as may be open (for a proxy from the environment: the small pools have their
    own). httpcore 1.0 closes an idle connection whenever its pool holds more connections, busy or idle, than its
    keep-alive limit (httpx's default 20): with 64 status calls in flight every burst reopened connections."""
    most = max_concurrency + SPARE_CONNECTIONS
    return httpx.Limits(max_connections=most, max_keepalive_connections=most, keepalive_expiry=5.0)
