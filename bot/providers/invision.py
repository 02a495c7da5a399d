"""Profitbase InVision Data Flows: start a data flow and read a run's status, with an API key.

InVision has no list of runs, no cancel and no failure message: a failed card says so and links to
the site's monitoring page. ``?await=true`` would block until the flow ends: never used here.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from bot.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderResponseError,
    TriggerOutcomeUnknown,
)
from bot.models import JsonValue, RunState, RunStatus, Triggered
from bot.providers._http import Call, sendable
from bot.providers.base import ConnectionConfig, JobConfig, ProviderClient

__all__ = ["Client", "Connection", "Job", "map_status"]

#: the run ``probe`` asks for: no InVision run has it
PROBE_RUN_ID = "00000000-0000-0000-0000-000000000000"

_STATES = {
    "pending": RunState.QUEUED,
    "running": RunState.RUNNING,
    "succeeded": RunState.SUCCEEDED,
    "failed": RunState.FAILED,
}


def map_status(raw: str | None) -> RunState:
    """InVision status → normalized state; case-insensitive, unknown values → UNKNOWN."""
    return _STATES.get((raw or "").strip().lower(), RunState.UNKNOWN)


class Connection(ConnectionConfig):
    provider: Literal["invision"] = "invision"
    header_secrets: ClassVar[frozenset[str]] = frozenset({"api_key"})
    base_url: str = Field(description="the InVision site, e.g. https://host/invision/")
    api_key: SecretStr


class Job(JobConfig):
    dataflow_id: str = Field(min_length=1, description="the Data Flow id (a GUID)")

    def describe(self) -> str:
        return f"data flow {self.dataflow_id}"


class _ApiKey(httpx.Auth):
    """The key goes in the ``x-api-key`` header, never the URL: URLs end up in logs."""

    def __init__(self, key: SecretStr) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["x-api-key"] = sendable(self._key.get_secret_value(), "the API key")
        yield request


class Client(ProviderClient[Connection, Job]):
    provider: ClassVar[str] = "invision"
    display_name: ClassVar[str] = "InVision"
    no_logs: ClassVar[str] = (
        "InVision's API gives no log and no step details of a run: its one read is a run's status "
        "(GET …/runs/{id}/status). See the run on the site's monitoring page."
    )
    accepts_parameters: ClassVar[bool] = False

    def _auth(self) -> httpx.Auth:
        return _ApiKey(self.connection.api_key)

    def _flow(self, job: Job) -> str:
        return f"api/pub/v1/dataflows/{quote(job.dataflow_id, safe='')}"

    async def trigger(self, job: Job, parameters: Mapping[str, str]) -> Triggered:
        if parameters:
            raise ProviderRejected(
                f"InVision data flows take no run parameters (got {', '.join(sorted(parameters))}).",
                provider=self.display_name,
                connection=self.name,
            )
        call = Call("POST", f"{self._flow(job)}/start", f"start {job.describe()}", idempotent=False)
        body = await self._json(call)
        if not isinstance(body, dict) or not str(body.get("runId") or "").strip():
            # InVision answered 200 to the start: the flow may well be running. Without a runId the bot cannot
            # follow it, and must not offer to start it again blindly.
            raise self.caller.error(
                TriggerOutcomeUnknown,
                f"InVision accepted the start of {job.describe()} but its answer has no runId: the data flow may "
                f"have started. Check the InVision console before running it again (answer: {str(body)[:200]!r}).",
            )
        status = self._parse(body, call)
        return Triggered(run_id=status.run_id, status=status)

    async def get_status(self, job: Job, run_id: str) -> RunStatus:
        call = Call(
            "GET",
            f"{self._flow(job)}/runs/{quote(run_id, safe='')}/status",
            f"check run {run_id} of {job.describe()}",
        )
        return self._parse(await self._json(call), call, run_id)

    async def probe(self, job: Job) -> str:
        """InVision has no read but a run's status: ask for a run that cannot exist. A refused key answers 401 or
        403; the documented bare 500 for an unknown run means the key was not refused. A 404 is no InVision answer
        (the document names none) but a path the server does not have: a base_url without the site's /invision/."""
        try:
            await self.get_status(job, PROBE_RUN_ID)
        except ProviderAuthError:
            raise
        except ProviderError as exc:
            if exc.status_code == 404:
                raise self.caller.error(
                    ProviderError,
                    f"InVision answered 404 Not Found to the status of a run: no InVision API at "
                    f"{self.connection.base_url} (the site's address usually ends in /invision/)",
                    status_code=404,
                ) from exc
            if exc.status_code != 500:  # unreachable, a gateway's 502, a 400: not an answer about the key
                raise
        return f"the API key was not refused (asked {job.describe()} for a run that does not exist)"

    def console_url(self, job: Job, run_id: str | None = None) -> str | None:
        return self.connection.console_url

    def _parse(self, body: JsonValue, call: Call, run_id: str | None = None) -> RunStatus:
        if not isinstance(body, dict) or not (body.get("runId") or run_id):
            raise self.caller.error(
                ProviderResponseError,
                f"InVision's answer to {call.what} has no runId: {self.caller.excerpt(body, 200)!r}",
            )
        raw = str(body.get("status") or "")
        state = map_status(raw)
        message = "InVision reports no failure details: see the site's monitoring page." if (
            state is RunState.FAILED
        ) else ""
        status = RunStatus(run_id=str(body.get("runId") or run_id), state=state, raw_status=raw, message=message)
        return self.caller.redact_status(status)  # its run id and status are InVision's words
