"""Rivery (Boomi Data Integration): run a river and follow it, through the legacy or the v1 API.

Two APIs, one client, chosen per connection with ``api``:

- **legacy** (``https://console.rivery.io/api``, the default): ``POST run``, ``GET check_run``,
  ``POST run/cancel``. Only run, status and cancel exist there.
- **v1** (``https://api.rivery.io``, regional hosts alike): everything under
  ``v1/accounts/{account}/environments/{env}``: run, one run, the runs of a river (paged), cancel,
  activity statistics, and enabling or disabling a river (answered at once with 204, or later through
  an operation that is polled).

Both take a static Bearer token made by an account admin. A 401 is final (``HttpCaller`` never retries
it). Status codes of both APIs go through one ``map_status``; the raw code and Rivery's message stay on
every ``RunStatus``.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr, field_validator, model_validator

from bot.errors import (
    OperationNotSupported,
    ProviderError,
    ProviderNotFound,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
)
from bot.models import Json, JsonValue, RunLog, RunState, RunStatus, Stats, TaskStatus, Triggered, TriggerLimit
from bot.providers._http import BearerToken, Call, RetryPolicy, Sleep, loads
from bot.providers.base import LOG_KEEP_LINES, Capability, ConnectionConfig, JobConfig, ProviderClient

__all__ = ["Client", "Connection", "Job", "map_status", "parse_check_run", "parse_statistics", "parse_v1_run"]

LEGACY_BASE_URL = "https://console.rivery.io/api"
V1_BASE_URL = "https://api.rivery.io"
CONSOLE_URL = "https://console.rivery.io"

# Boomi's Legacy Data Integration API reference, RunRiver ("Throttling rules"): a river may be run at most 2 times a
# minute, and each user (API token) may run rivers at most 15 times a minute; past that Rivery answers 429.
RIVER_RUNS_PER_MINUTE = 2
TOKEN_RUNS_PER_MINUTE = 15

_STATES: dict[str, RunState] = {
    # legacy one-letter codes; a missing code means the run is still waiting
    "": RunState.QUEUED,
    "w": RunState.QUEUED,
    "p": RunState.QUEUED,
    "r": RunState.RUNNING,
    "d": RunState.SUCCEEDED,
    "f": RunState.FAILED,
    "e": RunState.FAILED,
    # v1 run statuses, and the spellings the activities filters use
    "pending": RunState.QUEUED,
    "running": RunState.RUNNING,
    "succeeded": RunState.SUCCEEDED,
    "succeed": RunState.SUCCEEDED,
    "partially succeeded": RunState.SUCCEEDED,
    "partially succeed": RunState.SUCCEEDED,
    "failed": RunState.FAILED,
    "canceled": RunState.CANCELED,
    "cancelled": RunState.CANCELED,
    "skipped": RunState.CANCELED,
}

_PARTIAL = frozenset({"partially succeeded", "partially succeed"})
_V1_ONLY = frozenset(
    {Capability.LIST_RUNS, Capability.STATS, Capability.ENABLE, Capability.DISABLE, Capability.STATUSES}
)
#: at most this many runs of a river read by one batched poll (pages of ``_PAGE_SIZE``)
_BATCH_RUNS = 2000
# statuses of an asynchronous operation (activate/disable): "W" working, "D" done, "E" error
_OPERATION_DONE = frozenset({"d", "done", "succeeded", "success", "completed", "finished"})
_OPERATION_FAILED = frozenset({"e", "error", "f", "failed"})
# the bot's clock and Rivery's may disagree a little: the end of a listing window reaches past "now"
_CLOCK_SKEW = timedelta(minutes=5)
_MAX_PAGES = 100  # a cursor that never ends must not keep us listing for ever
_PAGE_SIZE = 200  # the most the runs endpoint allows


def _key(raw: str | None) -> str:
    return " ".join((raw or "").strip().lower().replace("_", " ").split())


def map_status(raw: str | None) -> RunState:
    """Rivery status (legacy code or v1 word) → normalized state; case-insensitive, unknown → UNKNOWN.

    A missing legacy status means the run is still waiting (PROVIDERS.md), hence ``""`` → QUEUED.
    """
    return _STATES.get(_key(raw), RunState.UNKNOWN)


# -- configuration --------------------------------------------------------------------------


class Connection(ConnectionConfig):
    provider: Literal["rivery"] = "rivery"
    header_secrets: ClassVar[frozenset[str]] = frozenset({"api_token"})
    base_url: str = Field(
        default=LEGACY_BASE_URL,
        description="legacy: https://console.rivery.io/api (US) or https://api.eu-west-1.rivery.io (EU: the API "
        "host, not the EU console's); v1: https://api.rivery.io or the regional API host (EU: "
        "https://api.eu-west-1.rivery.io). Defaults by `api`.",
    )
    api: Literal["legacy", "v1"] = Field(default="legacy", description="which Rivery API this connection uses")
    api_token: SecretStr = Field(description="an API token with river:execute (and river:list for v1 listing)")
    account_id: str | None = Field(default=None, description="required for the v1 API")
    environment_id: str | None = Field(default=None, description="required for the v1 API")
    console_url: str | None = Field(default=CONSOLE_URL, description="the Rivery console, for links on cards")
    river_runs_per_minute: int = Field(
        default=RIVER_RUNS_PER_MINUTE, ge=1,
        description="how often a river may be run per minute: 2 in Boomi's legacy API reference; change it only "
        "if Rivery set another limit for your account",
    )
    runs_per_minute: int = Field(
        default=TOKEN_RUNS_PER_MINUTE, ge=1,
        description="how many runs this connection's API token may start per minute: 15 in Boomi's legacy API "
        "reference; change it only if Rivery set another limit for your account",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_base_url(cls, data: JsonValue) -> JsonValue:
        """Without a base_url, each API has its US host: a v1 connection must not talk to the console's /api."""
        if isinstance(data, dict) and not data.get("base_url"):
            return {**data, "base_url": V1_BASE_URL if data.get("api") == "v1" else LEGACY_BASE_URL}
        return data

    @model_validator(mode="after")
    def _v1_needs_account_and_environment(self) -> Connection:
        if self.api == "v1":
            missing = [name for name in ("account_id", "environment_id") if not (getattr(self, name) or "").strip()]
            if missing:
                raise ValueError(
                    f"a Rivery connection with api: v1 needs {' and '.join(missing)}: every v1 path is "
                    "/v1/accounts/<account_id>/environments/<environment_id>/…; copy both ids from the Rivery "
                    "console URL, or use api: legacy"
                )
        return self


class Job(JobConfig):
    river_id: str = Field(description="the river id: the part after /river/ in the Rivery console URL")

    @field_validator("river_id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip().strip("/")
        if not value:
            raise ValueError("river_id must not be empty: copy it from the console URL, after /river/")
        return value

    def describe(self) -> str:
        return f"river {self.river_id}"


# -- parsing (pure functions, so the seed's samples can be fed to them verbatim) -------------------


def _when(value: JsonValue) -> datetime | None:
    """A Rivery time: epoch milliseconds (legacy), epoch seconds, or an ISO 8601 / RFC 3339 string."""
    if value is None or isinstance(value, bool) or value == "":
        return None
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if number is None:
        return None
    seconds = number / 1000.0 if number > 1e11 else number  # 1e11 s is the year 5138: it must be ms
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _text(body: Mapping[str, JsonValue], *keys: str) -> str:
    for key in keys:
        value = body.get(key)
        if value not in (None, ""):
            return str(value).strip()
    return ""


def _duration(started: datetime | None, ended: datetime | None) -> timedelta | None:
    if started is None or ended is None or ended < started:
        return None
    return ended - started


def _task_items(value: JsonValue) -> list[Mapping[str, JsonValue]]:
    """``tasks_status`` as a list of tasks: the seed's check_run sample gives a list of
    ``{task_status, task_status_message}``; Boomi's legacy API reference (RunRiver sample) gives one such object
    on its own. Anything else holds no task."""
    if isinstance(value, dict):
        return [value] if "task_status" in value or "task_status_message" in value else []
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def parse_check_run(body: Mapping[str, JsonValue], run_id: str) -> RunStatus:
    """A legacy ``check_run`` answer → RunStatus.

    ``river_run_status`` (missing while waiting), ``river_run_message``, ``error_description`` on errors,
    ``tasks_status`` (a list of ``{task_status, task_status_message}``, or one such object),
    ``run_insert_date``/``run_end_date`` in epoch ms.
    """
    raw = str(body.get("river_run_status") or "").strip()
    state = map_status(raw)
    words = [_text(body, "river_run_message"), _text(body, "error_description")]
    message = " — ".join(dict.fromkeys(w for w in words if w))
    if state is RunState.FAILED and not message:
        message = "Rivery reports the run failed without a message: see the run in the Rivery console."
    tasks: list[TaskStatus] = []
    for number, item in enumerate(_task_items(body.get("tasks_status")), 1):
        task_raw = str(item.get("task_status") or "").strip()
        tasks.append(
            TaskStatus(
                # the answer names no task; its message does ("load to bq batches Done Successfully")
                name=_text(item, "task_name", "name") or f"task {number}",
                state=map_status(task_raw),
                raw_status=task_raw,
                message=_text(item, "task_status_message"),
            )
        )
    started = _when(body.get("run_insert_date"))
    ended = _when(body.get("run_end_date"))
    return RunStatus(
        run_id=_text(body, "run_id") or run_id,
        state=state,
        raw_status=raw,
        message=message,
        tasks=tuple(tasks),
        started_at=started,
        ended_at=ended,
        duration=_duration(started, ended),
    )


def parse_v1_run(body: Mapping[str, JsonValue], run_id: str = "") -> RunStatus:
    """One v1 run (``GET …/runs/{run_id}`` or an item of the runs list) → RunStatus.

    Field names beyond ``run_id`` and ``status`` are read in the spellings seen in Rivery's activities
    schemas (``start_date_utc``, ``error_description``) and the obvious alternatives.
    """
    raw = _text(body, "status", "run_status")
    state = map_status(raw)
    message = _text(body, "error_description", "error_message", "message", "status_message")
    warning = _text(body, "warning", "warning_message")
    if _key(raw) in _PARTIAL and not warning:
        warning = "Rivery reports the run only partially succeeded: some targets may not have loaded."
    if state is RunState.FAILED and not message:
        message = "Rivery reports the run failed without a message: see the run in the Rivery console."
    started = _when(body.get("start_date_utc") or body.get("start_time") or body.get("run_start_time"))
    ended = _when(body.get("end_date_utc") or body.get("end_time") or body.get("run_end_time"))
    extra = {k: str(body[k]) for k in ("run_group_id", "river_cross_id") if body.get(k) not in (None, "")}
    return RunStatus(
        run_id=_text(body, "run_id") or run_id,
        state=state,
        raw_status=raw,
        message=message,
        started_at=started,
        ended_at=ended,
        duration=_duration(started, ended),
        warning=warning,
        extra=extra,
        shows_cancels=True,  # v1 says "canceled" of a canceled run: its "failed" is never a cancel
    )


_STATS_KEYS = ("runs_statuses", "statuses", "status_counts", "counts", "by_status", "runs", "items",
               "statistics", "data")


def _count(value: JsonValue) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def parse_statistics(body: JsonValue, _depth: int = 0) -> dict[RunState, int]:
    """Run counts per normalized state from an ``activities_statistics`` answer.

    The answer's shape is not documented; tolerated are a list of ``{status, count}``, a mapping of
    status → count, either of them under a key such as ``runs_statuses`` or ``statuses``, and a flat
    object whose status-named keys hold counts.
    """
    counts: dict[RunState, int] = {}
    if isinstance(body, list):
        for item in body:
            if not isinstance(item, dict):
                continue
            raw = _text(item, "status", "run_status", "name")
            number = next((n for k in ("count", "runs", "total", "value", "amount")
                           if (n := _count(item.get(k))) is not None), None)
            if raw and number is not None:
                state = map_status(raw)
                counts[state] = counts.get(state, 0) + number
        return counts
    if not isinstance(body, dict) or _depth > 3:
        return counts
    for key in _STATS_KEYS:
        nested = body.get(key)
        if isinstance(nested, list | dict):
            found = parse_statistics(nested, _depth + 1)
            if found:
                return found
    for raw, value in body.items():
        number = _count(value)
        state = map_status(str(raw))
        if number is not None and str(raw).strip() and state is not RunState.UNKNOWN:
            counts[state] = counts.get(state, 0) + number
    return counts


def _rfc3339(when: datetime) -> str:
    """A time as Rivery's v1 reference writes its ``start_time``/``end_time`` (seed R2:655-657,
    ``<yyyy-mm-ddThh:mm:ss>``): UTC, with no zone suffix."""
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _utcnow() -> datetime:
    return datetime.now(UTC)


_OLDEST = datetime.min.replace(tzinfo=UTC)


# -- the client -----------------------------------------------------------------------------


class Client(ProviderClient[Connection, Job]):
    provider: ClassVar[str] = "rivery"
    display_name: ClassVar[str] = "Rivery"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.CANCEL,
            Capability.LIST_RUNS,
            Capability.STATS,
            Capability.ENABLE,
            Capability.DISABLE,
            Capability.STATUSES,
        }
    )
    parameters_assumption: ClassVar[str] = (
        "Rivery run parameters are sent as a `variables` object next to the river id; no Rivery document or "
        "client (Boomi's API references, rivery-cli) shows a run body beyond river_id, so this is an assumption: "
        "check on one run that the river receives them"
    )
    #: how many times an asynchronous enable/disable operation is checked, and how far apart (seconds)
    operation_checks: ClassVar[int] = 10
    operation_interval: ClassVar[float] = 2.0

    def __init__(
        self,
        name: str,
        connection: Connection,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        super().__init__(name, connection, http=http, retry=retry, sleep=sleep)
        self._sleep = sleep
        #: the bot's clock, for the end of listing windows; replaceable in tests
        self.now: Callable[[], datetime] = _utcnow

    def _auth(self) -> httpx.Auth:
        return BearerToken(self.connection.api_token.get_secret_value())

    @property
    def legacy(self) -> bool:
        return self.connection.api == "legacy"

    @classmethod
    def offered_by(cls, connection: Connection) -> frozenset[Capability]:
        """The legacy API has run, status and cancel only."""
        return frozenset({Capability.CANCEL, Capability.LOGS}) if connection.api == "legacy" else cls.capabilities

    def _unsupported(self, capability: Capability) -> OperationNotSupported:
        if capability is Capability.LOGS and not self.legacy:
            return OperationNotSupported(
                "Rivery's v1 API documents no log download (rivery-cli downloads a run's log from the legacy API): "
                "see the run's log in the Rivery console.",
                provider=self.display_name,
                connection=self.name,
            )
        if not (self.legacy and capability in _V1_ONLY):
            return super()._unsupported(capability)
        return OperationNotSupported(
            f"Connection {self.name} uses Rivery's legacy API, which has no '{capability.value}' operation "
            "(it offers run, status, cancel and a run's log). Use a v1 connection for it: api: v1, base_url "
            f"{V1_BASE_URL} (or your region's API host), account_id and environment_id.",
            provider=self.display_name,
            connection=self.name,
        )

    def _error_text(self, response: httpx.Response) -> str:
        """v1 validation errors are ``{"detail": [{loc, msg, type}]}``: show "start_time: field required"."""
        try:
            body = loads(response.content)
        except ValueError:
            return super()._error_text(response)
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, list) and detail:
            return "; ".join(_detail_line(item) for item in detail[:5])
        return super()._error_text(response)

    # -- paths and calls --------------------------------------------------------------------

    def _v1(self, *parts: str) -> str:
        account = quote(self.connection.account_id or "", safe="")
        environment = quote(self.connection.environment_id or "", safe="")
        rest = "/".join(quote(p, safe="") for p in parts)
        return f"v1/accounts/{account}/environments/{environment}/{rest}"

    def _river(self, job: Job, *parts: str) -> str:
        return self._v1("rivers", job.river_id, *parts)

    async def _send(self, call: Call, job: Job | None, run_id: str | None = None) -> httpx.Response:
        """Send through HttpCaller; a 404 becomes a message that says what to check."""
        try:
            return await self.caller.send(call)
        except ProviderNotFound as err:
            raise self._not_found(err, job, run_id) from None

    async def _fetch(self, call: Call, job: Job | None, run_id: str | None = None) -> JsonValue:
        return self.caller.decode(await self._send(call, job, run_id), call)

    def _not_found(self, err: ProviderError, job: Job | None, run_id: str | None) -> ProviderError:
        what = f"run {run_id} of river {job.river_id}" if job and run_id else job.describe() if job else "it"
        advice = (
            f"Check river_id '{job.river_id}' in pipelines.yml (the id after /river/ in the Rivery console URL)"
            if job
            else "Check the connection's settings"
        )
        if not self.legacy:
            advice += f", and account_id/environment_id of connection {self.name}"
        return self.caller.error(
            ProviderNotFound, f"Rivery does not know {what}. {err} {advice}.", status_code=err.status_code
        )

    def _bad_answer(self, call: Call, body: JsonValue, missing: str) -> ProviderError:
        return self.caller.error(
            ProviderResponseError,
            f"Rivery's answer when asked to {call.what} has no {missing}: {self.caller.excerpt(body, 200)!r}",
        )

    def _may_have_started(self, call: Call, body: JsonValue, missing: str) -> ProviderError:
        """A trigger answered with success but no run id: the river may run, so this is not "did not start"."""
        return self.caller.error(
            TriggerOutcomeUnknown,
            f"Rivery accepted the request to {call.what} but its answer has no {missing}: the river may have "
            f"started. Check the Rivery console before running it again (answer: {str(body)[:200]!r}).",
        )

    # -- trigger and status -----------------------------------------------------------------

    def _trigger_body(self, parameters: Mapping[str, str]) -> Json:
        # ASSUMPTION: run parameters are Rivery river variables, sent as a "variables" object next to the
        # river id; neither API documents a body beyond {"river_id"} (legacy) or none (v1).
        return {"variables": dict(parameters)} if parameters else {}

    async def trigger(self, job: Job, parameters: Mapping[str, str]) -> Triggered:
        if self.legacy:
            call = Call("POST", "run", f"run {job.describe()}", idempotent=False,
                        json={"river_id": job.river_id, **self._trigger_body(parameters)})
            body = await self._fetch(call, job)
            run_id = _text(body, "run_id", "river_run_id") if isinstance(body, dict) else ""
            if not run_id:
                raise self._may_have_started(call, body, "run_id")
            status = parse_check_run(body, run_id) if "river_run_status" in body else None
            return Triggered(run_id=run_id, status=self.caller.redact_status(status) if status else None)
        call = Call("POST", self._river(job, "run"), f"run {job.describe()}", idempotent=False,
                    json=self._trigger_body(parameters) or None)
        body = await self._fetch(call, job)
        runs = body.get("runs") if isinstance(body, dict) else None
        first = runs[0] if isinstance(runs, list) and runs and isinstance(runs[0], dict) else {}
        run_id = _text(first, "run_id") or (_text(body, "run_id") if isinstance(body, dict) else "")
        if not run_id:
            raise self._may_have_started(call, body, "runs[0].run_id")
        if "status" not in first:
            return Triggered(run_id=run_id)
        status = parse_v1_run({"run_group_id": body.get("run_group_id"), **first}, run_id)
        return Triggered(run_id=run_id, status=self.caller.redact_status(status))

    async def get_status(self, job: Job, run_id: str) -> RunStatus:
        what = f"check run {run_id} of {job.describe()}"
        if self.legacy:
            call = Call("GET", "check_run", what, params={"run_id": run_id})
        else:
            call = Call("GET", self._river(job, "runs", run_id), what)
        body = await self._fetch(call, job, run_id)
        if not isinstance(body, dict):
            raise self._bad_answer(call, body, "run status")
        status = parse_check_run(body, run_id) if self.legacy else parse_v1_run(body, run_id)
        return self.caller.redact_status(status)

    def trigger_limits(self, job: Job) -> tuple[TriggerLimit, ...]:
        minute = timedelta(minutes=1)
        per_river, per_token = self.connection.river_runs_per_minute, self.connection.runs_per_minute
        return (
            TriggerLimit(per_river, minute, f"Rivery allows {_times(per_river)} of a river a minute",
                         {"river_id": job.river_id}),
            TriggerLimit(per_token, minute, f"Rivery allows {_times(per_token)} a minute per API token "
                         f"(connection {self.name})"),
        )

    def console_url(self, job: Job, run_id: str | None = None) -> str | None:
        base = self.connection.console_url
        return f"{base.rstrip('/')}/#/river/{quote(job.river_id, safe='')}" if base else None

    # -- optional operations ----------------------------------------------------------------

    async def cancel(self, job: Job, run_id: str) -> None:
        """Ask Rivery to stop a run. Answered 200 (any body, or none) or 204: the body is not read.

        Sent as idempotent: asking twice to cancel the same run does no harm, unlike a second trigger.
        """
        what = f"cancel run {run_id} of {job.describe()}"
        path = "run/cancel" if self.legacy else self._river(job, "cancel_run")
        await self._send(Call("POST", path, what, json={"run_id": run_id}), job, run_id)

    async def run_log(self, job: Job, run_id: str) -> RunLog:
        """The run's log as rivery-cli downloads it (``RiverySession.fetch_run_logs``): ``GET
        activities/runs/logs?id=`` starts a query answered 202 with a ``queryid`` header, asked again with
        ``queryId`` until it answers 200 with CSV. Legacy API only: v1 documents no log download."""
        if not self.legacy:
            raise self._unsupported(Capability.LOGS)
        what = f"download the log of run {run_id} of {job.describe()}"
        params: dict[str, str] = {"id": run_id}
        for wait in _LOG_WAITS:
            response = await self._send(Call("GET", "activities/runs/logs", what, params=params), job, run_id)
            if response.status_code != 202:
                return _log_of(self.caller.redactor.snapshot(), response.text, what)
            query = response.headers.get("queryid") or params.get("queryId", "")
            if not query:
                raise self._bad_answer(Call("GET", "activities/runs/logs", what), response.text, "queryid header")
            params = {"id": run_id, "queryId": query}
            await self._sleep(wait)
        raise self.caller.error(
            ProviderResponseError, f"Rivery was still preparing the log of run {run_id} after {len(_LOG_WAITS)} polls."
        )

    async def list_runs(self, job: Job, *, since: datetime, limit: int = 50) -> list[RunStatus]:
        """Runs of a river started since ``since``, newest first, following pages up to ``limit``."""
        if self.legacy:
            raise self._unsupported(Capability.LIST_RUNS)
        if limit <= 0:
            return []
        base = {
            "start_time": _rfc3339(since),
            "end_time": _rfc3339(self.now() + _CLOCK_SKEW),
            "items_per_page": min(_PAGE_SIZE, limit),
        }
        what = f"list runs of {job.describe()}"
        runs: list[RunStatus] = []
        path = self._river(job, "runs")
        call = Call("GET", path, what, params={**base, "page": 1})
        asked: set[str] = set()
        for _ in range(_MAX_PAGES):
            asked.add(_page_key(call))
            body = await self._fetch(call, job)
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise self._bad_answer(call, body, "items")
            runs.extend(
                self.caller.redact_status(parse_v1_run(item))
                for item in items
                if isinstance(item, dict) and item.get("run_id")
            )
            total = _count(body.get("total_items"))
            following = body.get("next_page")
            if (
                len(runs) >= limit
                or not items
                or following in (None, "", False)
                or (total is not None and len(runs) >= total)
            ):
                break
            call = self._next_page(call, following, path, base)
            if _page_key(call) in asked:
                break
        runs.sort(key=lambda r: r.started_at or r.ended_at or _OLDEST, reverse=True)
        return runs[:limit]

    def status_scope(self, job: Job) -> Hashable | None:
        return None if self.legacy else ("river", job.river_id)

    async def statuses(
        self, runs: Sequence[tuple[Job, str]], *, since: datetime,
        slots: AbstractAsyncContextManager[object] | None = None,
    ) -> dict[str, RunStatus]:
        """The runs of one river from its runs list (``GET …/rivers/{river}/runs`` with ``start_time`` ``since``,
        pages of 200), as ``list_runs`` reads it. Finished runs are left out (their own ``GET …/runs/{run_id}``
        gives the whole document), as are runs beyond ``_BATCH_RUNS`` or the window."""
        if self.legacy:
            raise self._unsupported(Capability.STATUSES)
        if not runs:
            return {}
        wanted = {run_id for _, run_id in runs}
        listed = await self.list_runs(runs[0][0], since=since, limit=_BATCH_RUNS)
        return {s.run_id: s for s in listed if s.run_id in wanted and not s.final}

    def _next_page(self, call: Call, following: JsonValue, path: str, base: Mapping[str, JsonValue]) -> Call:
        """The call for the next page. Boomi's Data Integration API reference documents ``next_page`` as the next
        page's URL: it is followed as given, but only on the connection's own host (it carries the API token).
        A page number or cursor (what the bot met before) goes into ``page`` with the same window."""
        if isinstance(following, str) and following.strip().startswith("/"):  # a URL relative to the API host
            following = str(self.http.base_url.join(following.strip()))
        if isinstance(following, str) and following.strip().lower().startswith(("http://", "https://")):
            url = httpx.URL(following.strip())
            here = self.http.base_url
            if (url.scheme, url.host, url.port) != (here.scheme, here.host, here.port):
                raise self.caller.error(
                    ProviderResponseError,
                    f"Rivery's answer when asked to {call.what} points the next page at another host "
                    f"({url.scheme}://{url.host}): not followed, so that the API token is not sent there.",
                )
            return Call("GET", str(url), call.what)
        return Call("GET", path, call.what, params={**base, "page": following})

    async def probe(self, job: Job) -> str:
        """Legacy: ``GET /me`` (the vendor's own client calls it first); v1: the environment's statistics of the
        last hour, which need the token, the account and the environment to be right."""
        if self.legacy:
            body = await self._fetch(Call("GET", "me", "read the account of the API token"), None)
            account = body.get("account_id") if isinstance(body, dict) else None
            return f"the API token belongs to account {account}" if account else "the API token was accepted"
        end = self.now()
        await self.stats(None, start=end - timedelta(hours=1), end=end)
        return f"read the statistics of account {self.connection.account_id}"

    async def stats(self, job: Job | None, *, start: datetime, end: datetime) -> Stats:
        """Run counts per state over a period: of one river, or of the whole environment (``job`` None)."""
        if self.legacy:
            raise self._unsupported(Capability.STATS)
        if job is None:
            path, what = self._v1("activities_statistics"), "read the environment's activity statistics"
        else:
            path, what = self._river(job, "activities_statistics"), f"read the statistics of {job.describe()}"
        params = {"start_time": _rfc3339(start), "end_time": _rfc3339(end)}
        body = await self._fetch(Call("GET", path, what, params=params), job)
        if not isinstance(body, dict | list):
            raise self._bad_answer(Call("GET", path, what), body, "statistics")
        raw: dict[str, object] = dict(body) if isinstance(body, dict) else {"items": body}
        return Stats(start=start, end=end, counts=parse_statistics(body), raw=raw)

    async def enable(self, job: Job) -> None:
        await self._switch(job, Capability.ENABLE, "activate_river", "enable")

    async def disable(self, job: Job) -> None:
        await self._switch(job, Capability.DISABLE, "disable_river", "disable")

    async def _switch(self, job: Job, capability: Capability, action: str, verb: str) -> None:
        """204: done. 202 ``{operation_id}``: Rivery works on it; check the operation until it ends."""
        if self.legacy:
            raise self._unsupported(capability)
        what = f"{verb} {job.describe()}"
        # idempotent: enabling an enabled river changes nothing, so a retry after a 5xx is safe
        response = await self._send(Call("POST", self._river(job, action), what), job)
        operation = _operation_id(response)
        if operation:
            await self._wait_for(operation, job, what)

    async def _wait_for(self, operation: str, job: Job, what: str) -> None:
        status = ""
        for check in range(1, self.operation_checks + 1):
            call = Call("GET", self._v1("operations", operation), f"check operation {operation} ({what})")
            body = await self._fetch(call, job)
            status = _text(body, "status", "operation_status") if isinstance(body, dict) else ""
            if _key(status) in _OPERATION_DONE:
                return
            if _key(status) in _OPERATION_FAILED:
                reason = (_text(body, "error_message", "error", "message") if isinstance(body, dict) else "") or (
                    f"operation {operation} ended in error"
                )
                raise self.caller.error(ProviderRejected, f"Rivery could not {what}: {reason}.")
            if check < self.operation_checks:
                await self._sleep(self.operation_interval)
        raise self.caller.error(
            ProviderUnavailable,
            f"Rivery has not finished to {what} after {self.operation_checks} checks (operation {operation}, "
            f"last status {status or 'none'!r}). Look at the river in the Rivery console before trying again.",
        )


def _times(count: int) -> str:
    return "1 run" if count == 1 else f"{count} runs"


def _page_key(call: Call) -> str:
    """What identifies a page's request, to notice a cursor that leads back to a page already read."""
    return str(httpx.URL(call.url).copy_merge_params(call.params)) if call.params else call.url


def _detail_line(item: JsonValue) -> str:
    if not isinstance(item, dict):
        return str(item)
    loc = item.get("loc")
    parts = [str(p) for p in loc if p not in ("query", "body", "path")] if isinstance(loc, list) else []
    field = ".".join(parts)
    message = str(item.get("msg") or item.get("message") or item.get("type") or "invalid")
    return f"{field}: {message}" if field else message


def _operation_id(response: httpx.Response) -> str:
    """The operation to wait for, when Rivery answered 202 with one; empty when the change is done."""
    if response.status_code == 204 or not response.content.strip():
        return ""
    try:
        body = loads(response.content)
    except ValueError:
        return ""
    return _text(body, "operation_id") if isinstance(body, dict) else ""


#: the waits between polls of a log query, as rivery-cli's ``activities logs fetch`` waits (10 polls a second apart,
#: then 1, 3, 5… 29 s apart: about 4 minutes; it goes on with 10 polls 30 s apart, left out here). The evidence job
#: waits off the failure's path (cards and alerts never wait for it), and a log given up on is said so in the
#: thread for good, without a Full log button: 20 s, the wait before, gave up on logs Rivery prepares in a minute
_LOG_WAITS = (1.0,) * 10 + tuple(float(s) for s in range(1, 30, 2))


def _log_of(redact: Callable[[str], str], text: str, what: str) -> RunLog:
    """The CSV log's rows as lines (its columns joined, the header ``time,level,message`` left out), redacted, the
    last ``LOG_KEEP_LINES`` kept. Text that is not CSV is read line by line (the columns are an assumption)."""
    rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0]] == ["time", "level", "message"]:
        rows = rows[1:]
    lines = [redact(" ".join(cell.strip() for cell in row if cell.strip())) for row in rows]
    kept = tuple(lines[-LOG_KEEP_LINES:])
    return RunLog(kept, f"Rivery GET activities/runs/logs ({what})", len(lines) > LOG_KEEP_LINES)
