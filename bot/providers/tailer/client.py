"""The Tailer client: launch jobs, read runs, enable/disable/archive configurations, reset workflows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime
from typing import ClassVar

import httpx

from bot.errors import (
    ConfigError,
    OperationNotSupported,
    ProviderAuthError,
    ProviderError,
    ProviderNoNews,
    ProviderNotFound,
    ProviderRejected,
    ProviderResponseError,
    TriggerOutcomeUnknown,
)
from bot.models import Json, JsonValue, RunStatus, Triggered
from bot.providers._http import Call, RetryPolicy, Sleep
from bot.providers.base import Capability, ProviderClient
from bot.providers.tailer.answers import answer_error, parse_launch, parse_results, parse_run
from bot.providers.tailer.auth import FirebaseSession, ServiceAccountAuth, _build_auth, _key_file, _StaticToken
from bot.providers.tailer.config import Connection, Job

_DAG_LAUNCH = "v1/dag/launch"
_DAG_STATUS = "v1/dag/status"
_CONFIGURATION = "v1/configuration/status"
_WORKFLOW = "v1/workflow/status"
#: a batched poll asks ``get_last_status`` for this many runs per asked run (no vendor source gives a maximum
#: ``limit``: an assumption), at least ``_BATCH_LIMIT[0]`` and at most ``_BATCH_LIMIT[1]``
_BATCH_PER_RUN, _BATCH_LIMIT = 2, (50, 1000)


class Client(ProviderClient[Connection, Job]):
    provider: ClassVar[str] = "tailer"
    display_name: ClassVar[str] = "Tailer"
    no_logs: ClassVar[str] = (
        "Tailer's API gives no log and no step details of a run: get_last_status (POST v1/dag/status) gives each "
        "run's status, start, last update and duration. See the run in Tailer Studio."
    )
    http2: ClassVar[bool] = True
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {
            Capability.LIST_RUNS,
            Capability.ENABLE,
            Capability.DISABLE,
            Capability.ARCHIVE,
            Capability.RESET,
            Capability.STATUSES,
        }
    )

    @classmethod
    def connection_problems(cls, connection: Connection) -> list[str]:
        """A ``service_account_file`` that cannot be read or is no service-account key (never quoting it)."""
        if connection.service_account_file is None:
            return []
        try:
            _key_file(connection.service_account_file, "")
        except ConfigError as exc:
            return list(exc.problems)
        return []

    def __init__(
        self,
        name: str,
        connection: Connection,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        #: the last batched ``get_last_status`` of each configuration: when (monotonic), its limit, its entries
        self._listings: dict[Hashable, tuple[float, int, list[JsonValue]]] = {}
        self.authn: _StaticToken | ServiceAccountAuth | FirebaseSession = _build_auth(
            name, connection, clock, self._session_error
        )
        self._auth_detail = ""
        super().__init__(name, connection, http=http, retry=retry, sleep=sleep)
        # the minted token and a key read from a file are secrets the connection does not hold in clear
        self.caller.redactor.add_source(self.authn.secrets)

    def _session_error(self, cls: type[ProviderError], message: str) -> ProviderError:
        return self._redacted(self.caller.error(cls, f"Connection {self.name}: {message}"))

    def _auth(self) -> httpx.Auth:
        return self.authn

    def _error_text(self, response: httpx.Response) -> str:
        # HttpCaller hands over the answer redacted; once more for what decoding the JSON revealed
        text = self.caller.redact(super()._error_text(response))
        if response.status_code == 401:
            self._auth_detail = text  # Tailer's words ("Jwt is expired"…) for the 401 message
        return text

    # -- run and status ---------------------------------------------------------------------

    async def trigger(self, job: Job, parameters: Mapping[str, str]) -> Triggered:
        refusal = job.run_refusal()
        if refusal is not None:
            raise OperationNotSupported(refusal, provider=self.display_name, connection=self.name)
        other = sorted(k for k in parameters if k != "execution_date")
        if other:
            raise ProviderRejected(
                f"Tailer runs accept only execution_date as a parameter (got {', '.join(other)}).",
                provider=self.display_name,
                connection=self.name,
            )
        # the seed's launch (line 24-28) names no job_id: the configuration is what is launched
        body = self._body(job, "launch_job", execution_date=parameters.get("execution_date"))
        what = f"launch {job.describe()}"
        try:
            answer = await self._post(job, _DAG_LAUNCH, body, what, idempotent=False)
            return Triggered(run_id=parse_launch(answer, self._shown))
        except (ValueError, ProviderResponseError) as exc:
            # a 2xx Tailer answered without a readable run id: the job may well have started
            raise self._redacted(
                self.caller.error(
                    TriggerOutcomeUnknown,
                    f"Tailer's answer to {what} has no readable run id ({exc}): it is unknown whether it started. "
                    f"Check {self._console()} before trying again.",
                )
            ) from None

    async def get_status(self, job: Job, run_id: str) -> RunStatus:
        body = self._body(job, "check_run_status", job_id=job.status_job_id(), run_id=run_id)
        what = f"check run {run_id} of {job.describe()}"
        runs = self._runs(await self._post(job, _DAG_STATUS, body, what, idempotent=True), what)
        mine = next((r for r in runs if r.run_id == run_id), None)
        if mine is None:
            # another run's status says nothing about this one: no news, never its outcome
            listed = f"it lists {len(runs)} other run(s)" if runs else f"it lists no run. {_check_identity(job)}"
            raise self._redacted(
                self.caller.error(
                    ProviderNoNews,
                    f"Tailer's answer about run {run_id} of {job.describe()} does not name that run ({listed}): "
                    "no news this time; the run stays as it was.",
                )
            )
        return mine

    async def list_runs(self, job: Job, *, since: datetime, limit: int = 50) -> list[RunStatus]:
        """Newest first; runs that started before ``since`` are left out."""
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return _recent(await self.last_status(job, limit=limit), since)

    def status_scope(self, job: Job) -> Hashable:
        return (job.account, job.environment, job.configuration_type, job.api_configuration_id())

    async def statuses(
        self, runs: Sequence[tuple[Job, str]], *, since: datetime,
        slots: AbstractAsyncContextManager[object] | None = None,
    ) -> dict[str, RunStatus]:
        """The runs of one configuration from one ``get_last_status`` (seed lines 87-91, 198-205), without
        ``job_id`` so that every job of the configuration is in it, newest first, ``limit`` twice the runs asked
        about. A run beyond the limit, an entry naming another ``job_id`` than its run's, and an entry the bot
        cannot read are left out: their own ``check_run_status`` settles them."""
        if not runs:
            return {}
        job = runs[0][0]
        wanted = {run_id: each for each, run_id in runs}
        limit = max(_BATCH_LIMIT[0], min(_BATCH_LIMIT[1], _BATCH_PER_RUN * len(wanted)))
        what = f"check the runs of {job.describe()}"
        answer = await self._post(job, _DAG_STATUS, self._body(job, "get_last_status", limit=limit), what,
                                  idempotent=True)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise self._redacted(self.caller.error(
                ProviderResponseError, f"Tailer's answer to {what} is not understood: no results list"
            ))
        self._listings[self.status_scope(job)] = (time.monotonic(), limit, results)
        found: dict[str, RunStatus] = {}
        for entry in results:
            owner = wanted.get(str(entry.get("run_id") or "")) if isinstance(entry, dict) else None
            if owner is None:
                continue
            assert isinstance(entry, dict)
            try:
                status = parse_run(entry)
            except (TypeError, ValueError, OverflowError):
                continue
            if status.extra.get("job_id") in (None, owner.status_job_id()):
                found[status.run_id] = self.caller.redact_status(status)
        return found

    def listed(self, job: Job, *, since: datetime, limit: int, max_age: float) -> list[RunStatus] | None:
        """``list_runs`` from the last batched ``get_last_status`` of the configuration: the same call with a
        limit at least as high, so its first ``limit`` entries are what ``list_runs`` would be answered."""
        at, asked, results = self._listings.get(self.status_scope(job), (0.0, 0, []))
        if asked < limit or time.monotonic() - at > max_age:
            return None
        try:
            runs = self._runs({"results": results[:limit]}, f"list runs of {job.describe()}")
        except ProviderError:
            return None  # an entry the bot cannot read: the watch's own call says what is wrong with it
        wanted = job.status_job_id()
        return _recent([r for r in runs if r.extra.get("job_id") in (None, wanted)], since)

    async def last_status(
        self, job: Job, *, limit: int = 10, status: str | None = None, execution_date: str | date | None = None
    ) -> list[RunStatus]:
        """The latest runs of a job (``get_last_status``), optionally only those with ``status``.

        Sent with the fields the seed shows (lines 87-91, 198-205): no ``job_id``. A configuration's answer
        may hold several jobs (a storage-to-storage one lists each file template's), so entries naming
        another ``job_id`` are left out here."""
        extra = {"status": status.upper() if status else None}
        runs = await self._query(job, "get_last_status", limit, execution_date, extra, f"list runs of {job.describe()}")
        wanted = job.status_job_id()
        return [r for r in runs if r.extra.get("job_id") in (None, wanted)]

    async def runs_by_status(
        self, job: Job, status: str, *, limit: int = 10, execution_date: str | date | None = None
    ) -> list[RunStatus]:
        """The latest runs of a job that have ``status`` (``get_by_status``), e.g. FAILED.

        An assumption: no vendor source documents ``get_by_status``; the bot itself never calls it."""
        what = f"list {status.upper()} runs of {job.describe()}"
        return await self._query(job, "get_by_status", limit, execution_date, {"status": status.upper()}, what)

    async def _query(
        self,
        job: Job,
        action: str,
        limit: int,
        execution_date: str | date | None,
        extra: Mapping[str, JsonValue],
        what: str,
    ) -> list[RunStatus]:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        day = execution_date.isoformat() if isinstance(execution_date, date) else execution_date
        body = self._body(job, action, execution_date=day, limit=limit, **extra)
        return self._runs(await self._post(job, _DAG_STATUS, body, what, idempotent=True), what)[:limit]

    # -- configuration and workflow ---------------------------------------------------------

    async def enable(self, job: Job) -> None:
        await self._set_configuration(job, "enable", activated=True, archived=False)

    async def disable(self, job: Job) -> None:
        await self._set_configuration(job, "disable", activated=False, archived=False)

    async def archive(self, job: Job) -> None:
        await self._set_configuration(job, "archive", activated=False, archived=True)

    async def reset(self, job: Job) -> None:
        """Reset a workflow: Tailer forgets which of its triggering jobs already ran."""
        if job.configuration_type != "workflow":
            raise ProviderRejected(
                f"Tailer resets only workflow data operations; {job.describe()} is not one. "
                "Point the pipeline at the workflow's configuration to reset it.",
                provider=self.display_name,
                connection=self.name,
            )
        body = self._body(job, "reset_workflow_status")
        await self._change(job, _WORKFLOW, body, f"reset the workflow {job.describe()}")

    async def cancel(self, job: Job, run_id: str) -> None:
        raise OperationNotSupported(
            "Tailer has no cancel: a launched run goes on until it ends. To stop further runs, disable the "
            "configuration (its runs then report DEACTIVATED).",
            provider=self.display_name,
            connection=self.name,
        )

    async def _set_configuration(self, job: Job, verb: str, *, activated: bool, archived: bool) -> None:
        body = self._body(job, "set_configuration_status", activated=activated, archived=archived)
        await self._change(job, _CONFIGURATION, body, f"{verb} {job.describe()}")

    async def _change(self, job: Job, path: str, body: Json, what: str) -> None:
        """Sent once; an answer that leaves the outcome open says to look in Tailer Studio."""
        try:
            await self._post(job, path, body, what, idempotent=False)
        except TriggerOutcomeUnknown as err:
            err.args = (
                self.caller.redact(
                    f"Tailer did not give a clear answer when asked to {what}"
                    f"{f' (HTTP {err.status_code})' if err.status_code else ''}: it is unknown whether the "
                    f"change was made. Check the configuration in {self._console()} before trying again."
                ),
            )
            raise

    # -- plumbing ---------------------------------------------------------------------------

    def console_url(self, job: Job, run_id: str | None = None) -> str | None:
        return self.connection.console_url

    def credential_deadline(self) -> tuple[datetime, str] | None:
        """A static token's ``exp``: the bot cannot renew it. None for the credentials it renews itself."""
        if isinstance(self.authn, _StaticToken) and self.authn.expires_at is not None:
            return datetime.fromtimestamp(self.authn.expires_at, UTC), _RENEW_STATIC
        return None

    async def __aenter__(self) -> Client:
        return self  # typed as this class, so `async with` gives access to last_status, authn…

    def _console(self) -> str:
        return f"Tailer Studio ({self.connection.console_url})" if self.connection.console_url else "Tailer Studio"

    def _body(self, job: Job, action: str, **extra: JsonValue) -> Json:
        body: Json = {
            "action": action,
            "account": job.account,
            "environment": job.environment,
            "configuration_type": job.configuration_type,
            "configuration_id": job.api_configuration_id(),
        }
        body.update({k: v for k, v in extra.items() if v is not None})
        return body

    async def _post(self, job: Job, path: str, body: Json, what: str, *, idempotent: bool) -> JsonValue:
        """POST, map failures to typed errors with Tailer's hints, and refuse answers that are not ok."""
        self._refuse_expired(what)
        call = Call("POST", path, what, idempotent=idempotent, json=body)
        try:
            answer = await self._json(call)
        except ProviderAuthError as err:
            if err.status_code == 401:
                raise self._refused(what) from None
            raise self._redacted(err) from None
        except ProviderNotFound as err:
            err.args = (f"{err} {_check_identity(job)}",)
            raise self._redacted(err) from None
        except ProviderError as err:
            raise self._redacted(err) from None
        problem = answer_error(answer, self._shown)
        if problem is not None:
            refused = self.caller.error(ProviderRejected, f"Tailer refused to {what}: it answered {problem}.")
            raise self._redacted(refused)
        return answer

    def _runs(self, answer: JsonValue, what: str) -> list[RunStatus]:
        try:
            return [self.caller.redact_status(run) for run in parse_results(answer, self._shown)]
        except ValueError as exc:
            raise self._redacted(
                self.caller.error(ProviderResponseError, f"Tailer's answer to {what} is not understood: {exc}")
            ) from None

    def _refuse_expired(self, what: str) -> None:
        """A static token past its ``exp`` is not sent: Tailer would answer 401 to every poll."""
        deadline = self.credential_deadline()
        if deadline is None or deadline[0].timestamp() > self._clock():
            return
        raise self._redacted(
            self.caller.error(
                ProviderAuthError,
                f"The Tailer token of connection {self.name} expired at {deadline[0]:%Y-%m-%d %H:%M} UTC; the bot "
                f"did not {what} with it. {deadline[1]}",
            )
        )

    def _refused(self, what: str) -> ProviderError:
        said = f" ({self._auth_detail})" if self._auth_detail else ""
        if isinstance(self.authn, FirebaseSession):
            message = (
                f"Tailer refused the token renewed with the refresh token of connection {self.name} (HTTP 401)"
                f"{said} when asked to {what}. Check that this Tailer user may use account and configuration, or "
                "run `tailer auth login` again and copy the new firebase_user.refreshToken from "
                "$TAILER_HOME/tailer-configuration.json."
            )
        elif isinstance(self.authn, ServiceAccountAuth):
            message = (
                f"Tailer refused the token signed with service account {self.authn.key.client_email} for "
                f"connection {self.name} (HTTP 401){said} when asked to {what}. Check that the key is valid and "
                f"not revoked, that the account has access to Tailer, that the audience "
                f"{self.authn.audience} is right, and that this machine's clock is right."
            )
        else:
            message = (
                f"Tailer refused the token of connection {self.name} (HTTP 401){said} when asked to {what}: "
                f"it has expired (they last about an hour) or is wrong. {_RENEW_STATIC}"
            )
        return self._redacted(self.caller.error(ProviderAuthError, message, status_code=401))

    def _redacted(self, err: ProviderError) -> ProviderError:
        """A message rewritten here (advice added) redacted again, with the minted token and key as well."""
        err.args = (self.caller.redact(str(err)),)
        return err

    def _shown(self, value: JsonValue) -> str:
        """A piece of an answer quoted in a message: redacted, then cut."""
        return repr(self.caller.excerpt(value, 200))


_RENEW_STATIC = (
    "Run `tailer auth get-token`, put the new token in the connection's environment variable and restart the "
    "bot; or give the connection refresh_token and firebase_api_key (from $TAILER_HOME/tailer-configuration.json "
    "after `tailer auth login`) so that the bot renews its tokens itself, as tailer-sdk does."
)


def _recent(runs: list[RunStatus], since: datetime) -> list[RunStatus]:
    """Newest first; runs that started before ``since`` are left out."""
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    recent = [r for r in runs if r.started_at is None or r.started_at >= since]
    oldest = datetime.min.replace(tzinfo=UTC)
    return sorted(recent, key=lambda r: r.started_at or oldest, reverse=True)


def _check_identity(job: Job) -> str:
    """What to check in pipelines.yml when Tailer does not know a job or run."""
    fields = (
        "account, environment, configuration_type, configuration_id and job_id"
        if job.job_id
        else "account, environment, configuration_type and configuration_id"
    )
    sent = job.api_configuration_id()
    added = " (the bot appends the environment to table-to-table ids)" if sent != job.configuration_id else ""
    return f"Check {fields} in pipelines.yml; Tailer was asked for configuration_id {sent}{added}."

