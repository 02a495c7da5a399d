"""DataKitchen Automation API: create orders, follow their order runs ("servings"), stop and resume them.

A pipeline is a kitchen / recipe / variation. Triggering creates an *order* (``schedule: now``); the
platform then plans one *order run* for it, whose id (``hid``) the create answer does not carry. So a
run is watched as ``"<order_id>"`` (the newest order run of that order) right after the trigger, and
as ``"<order_id>/<serving_hid>"`` when one particular order run is meant (listing, resume history).

Authentication is a session JWT from ``POST v2/login`` (form fields). Tokens last about four hours:
the session renews them with ``GET v2/validatetoken`` when fewer than 180 s remain, adopts any
``refreshed_token`` response header, and logs in again once when the API answers 401.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import time
import zlib
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, NamedTuple, Self
from urllib.parse import quote, quote_plus

import httpx
from pydantic import Field, SecretStr

from bot.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderNotFound,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
)
from bot.models import RunState, RunStatus, TaskStatus, Triggered
from bot.providers._http import MAX_BODY_BYTES, Call, RetryPolicy, Sleep, loads, read_capped
from bot.providers.base import Capability, ConnectionConfig, JobConfig, ProviderClient

__all__ = ["Client", "Connection", "Job", "map_status"]

Clock = Callable[[], float]

_STATES = {
    "PLANNED_SERVING": RunState.QUEUED,
    "ACTIVE_SERVING": RunState.RUNNING,
    "COMPLETED_SERVING": RunState.SUCCEEDED,
    "SERVING_ERROR": RunState.FAILED,
    "STOPPED_SERVING": RunState.CANCELED,
}
#: raw statuses outside the model that will not change any more
_FINAL_OUTSIDE_MODEL = frozenset({"SERVING_RERAN"})

#: node statuses as DKUtils' OrderRunMonitor knows them (``summary.nodes{<node>: {status}}``)
_NODE_STATES = {
    "DKNODESTATUS_TEMPLATE": RunState.QUEUED,
    "DKNODESTATUS_IN_CONFIGURATION": RunState.QUEUED,
    "DKNODESTATUS_FULLY_CONFIGURED": RunState.QUEUED,
    "DKNODESTATUS_READY_FOR_PRODUCTION": RunState.QUEUED,
    "DKNODESTATUS_IN_PRODUCTION": RunState.RUNNING,
    "DKNODESTATUS_COMPLETED_PRODUCTION": RunState.SUCCEEDED,
    "DKNODESTATUS_PRODUCTION_ERROR": RunState.FAILED,
    "DKNODESTATUS_PRODUCTION_STOPPED": RunState.CANCELED,
    "DKNODESTATUS_SKIPPED": RunState.CANCELED,
}

#: renew the session token when fewer seconds than this remain (what DataKitchen's own clients do)
RENEW_BEFORE_S = 180.0
#: after a renewal that failed for a passing reason, wait this long before trying again
_RENEW_PAUSE_S = 30.0
_ORDERS_PAGE = 50
_MAX_ORDER_PAGES = 10
#: order states (DKUtils' constants): only these two are paused / unpaused
_ACTIVE_ORDER, _PAUSED_ORDER = "ACTIVE_ORDER", "PAUSED_ORDER"
_MESSAGE_LIMIT = 1500
#: of an order run's log, the characters and lines read from its end (where the failure is); each line is redacted
#: and searched for node names, on the event loop
_LOG_KEEP = 1024 * 1024
_LOG_KEEP_LINES = 5000
#: the most a compressed log is inflated to, a piece of ``_INFLATE_STEP`` at a time (a few tens of milliseconds)
_LOG_INFLATE = 32 * 1024 * 1024
_INFLATE_STEP = 256 * 1024


def map_status(raw: str | None) -> RunState:
    """DataKitchen order-run status → normalized state; unknown values (and SERVING_RERAN) → UNKNOWN."""
    return _STATES.get((raw or "").strip().upper(), RunState.UNKNOWN)


def is_final(raw: str | None) -> bool:
    """Whether the platform will not change an order run in this status any more."""
    key = (raw or "").strip().upper()
    return key in _FINAL_OUTSIDE_MODEL or map_status(key).is_terminal


def node_state(raw: str | None) -> RunState:
    """A recipe node's status (``DKNodeStatus_*``, or an order-run status) → normalized state."""
    key = (raw or "").strip().upper()
    return _NODE_STATES.get(key) or map_status(key)


class Connection(ConnectionConfig):
    provider: Literal["datakitchen"] = "datakitchen"
    base_url: str = Field(
        default="https://cloud.datakitchen.io", description="the platform; API paths are v2/... below it"
    )
    username: str = Field(min_length=1, description="the DataKitchen user the bot logs in as")
    password: SecretStr
    console_url: str | None = Field(default="https://cloud.datakitchen.io", description="web console")


#: catalog parameter types whose JSON type DataKitchen keeps (everything else is sent as text)
ParameterType = Literal["int", "bool"]
_JSON_TYPES: frozenset[str] = frozenset({"int", "bool"})


class Job(JobConfig):
    kitchen: str = Field(min_length=1)
    recipe: str = Field(min_length=1)
    variation: str = Field(min_length=1)
    #: filled by the catalog loader from the pipeline's ``parameters`` (``type: int`` / ``type: bool``);
    #: it travels with each run so that a retry or a resume sends the same JSON types
    parameter_types: dict[str, ParameterType] = Field(default_factory=dict)

    def describe(self) -> str:
        return f"recipe {self.recipe} / variation {self.variation} in kitchen {self.kitchen}"

    def with_parameter_types(self, types: Mapping[str, str]) -> Self:
        """The catalog's declarations decide: a ``parameter_types`` written by hand is replaced."""
        kept = {name: kind for name, kind in types.items() if kind in _JSON_TYPES}
        return self if kept == self.parameter_types else self.model_copy(update={"parameter_types": kept})


# -- session ----------------------------------------------------------------------------------


class _Session(httpx.Auth):
    """The DataKitchen session: logs in, renews and re-logs in around every request.

    Renewing needs requests of its own (login, validatetoken), sent from inside the auth flow under
    a lock, so that many concurrent status polls share one login. The token is a JWT whose ``exp``
    is read without checking the signature, as DataKitchen's own clients do.
    """

    requires_response_body = True  # documents the need; this async flow reads the bodies itself

    def __init__(
        self,
        base_url: str,
        username: str,
        password: SecretStr,
        *,
        clock: Clock,
        refuse: Callable[[httpx.Response], ProviderError],
        malformed: Callable[[str], ProviderError],
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        base = httpx.URL(base_url if base_url.endswith("/") else base_url + "/")
        self._login_url = base.join("v2/login")
        self._validate_url = base.join("v2/validatetoken")
        self._username = username
        self._password = password
        self._clock = clock
        self._refuse = refuse
        self._malformed = malformed
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires_at: float | None = None
        self._quiet_until = 0.0
        self._held: list[str] = []  # recent tokens, for redaction
        self._max_body = max_body

    # -- state -----------------------------------------------------------------------------

    @property
    def token(self) -> str | None:
        return self._token

    def tokens(self) -> list[str]:
        """Tokens this session has held lately: they are secrets too and must never be shown."""
        return list(self._held)

    def needs_renewal(self) -> bool:
        """No token yet, or one that expires within ``RENEW_BEFORE_S``."""
        return self._token is None or self._expiring()

    def _expiring(self) -> bool:
        now = self._clock()
        return (
            self._expires_at is not None
            and self._expires_at - now < RENEW_BEFORE_S
            and now >= self._quiet_until
        )

    def _adopt(self, token: str) -> None:
        self._token = token
        self._expires_at = jwt_expiry(token)
        self._quiet_until = 0.0
        if token not in self._held:
            self._held = [*self._held[-4:], token]

    # -- flow ------------------------------------------------------------------------------

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("the DataKitchen session works with httpx.AsyncClient only")

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # every answer is read here within the size limit (a plain aread() has none); HttpCaller maps BodyTooLarge
        validating = request.url == self._validate_url
        async with self._lock:
            if self._token is not None and not validating and self._expiring():
                answer = yield self._validate_request(request, self._token)
                await read_capped(answer, self._max_body)
                self._take_validation(answer)
            if self._token is None:
                answer = yield self._login_request(request)
                await read_capped(answer, self._max_body)
                if not self._take_login(answer):
                    return  # 429/5xx (retried like any other answer) or a redirect: the caller sees it
            token = self._token
        response = yield self._signed(request, token)
        await read_capped(response, self._max_body)
        self._take_answer(response, validating)
        if response.status_code != 401:
            return
        async with self._lock:  # expired or revoked: log in again, once, then replay the request
            if self._token is None or self._token == token:
                answer = yield self._login_request(request)
                await read_capped(answer, self._max_body)
                if not self._take_login(answer):
                    return
            token = self._token
        response = yield self._signed(request, token)
        await read_capped(response, self._max_body)
        self._take_answer(response, validating)

    # -- requests --------------------------------------------------------------------------

    @staticmethod
    def _signed(request: httpx.Request, token: str | None) -> httpx.Request:
        request.headers["Authorization"] = f"Bearer {token}"
        return request

    @staticmethod
    def _extensions(request: httpx.Request) -> dict[str, Any]:
        """Requests built here keep the caller's timeouts (without them httpx would wait for ever)."""
        timeout = request.extensions.get("timeout")
        return {"timeout": timeout} if timeout is not None else {}

    def _login_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "POST",
            self._login_url,
            data={"username": self._username, "password": self._password.get_secret_value()},
            headers={"accept": "*/*", "user-agent": request.headers.get("user-agent", "pipeline-bot")},
            extensions=self._extensions(request),
        )

    def _validate_request(self, request: httpx.Request, token: str) -> httpx.Request:
        return httpx.Request(
            "GET",
            self._validate_url,
            headers={
                "accept": "application/json",
                "authorization": f"Bearer {token}",
                "user-agent": request.headers.get("user-agent", "pipeline-bot"),
            },
            extensions=self._extensions(request),
        )

    # -- answers ---------------------------------------------------------------------------

    def _take_login(self, response: httpx.Response) -> bool:
        """Adopt the token of a login answer. False when the platform is busy or failing, or redirects (the
        caller reports that answer: a redirect is not a wrong password)."""
        code = response.status_code
        if code == 429 or code >= 500 or response.is_redirect:
            return False
        if not response.is_success:
            raise self._refuse(response)
        token, error = _token_of(response.text)
        if error:
            raise self._refuse(response)
        if not token:
            raise self._malformed(f"DataKitchen answered the login of user {self._username!r} without a token.")
        self._adopt(token)
        return True

    def _take_validation(self, response: httpx.Response) -> None:
        """Adopt a fresh token from ``validatetoken``; drop a refused one so that a login follows."""
        self._take_refreshed(response)
        if response.is_success:
            token, _ = _token_of(response.text, key="token")
            if token and token.count(".") == 2:
                self._adopt(token)
            elif self._expiring():  # "true" without a new token: log in for a fresh one
                self._token = None
        elif response.status_code == 401:
            self._token = None
        else:  # busy or failing: the current token still holds for a while
            self._quiet_until = self._clock() + _RENEW_PAUSE_S

    def _take_answer(self, response: httpx.Response, validating: bool) -> None:
        if validating and response.is_success:
            self._take_validation(response)
        else:
            self._take_refreshed(response)

    def _take_refreshed(self, response: httpx.Response) -> None:
        fresh = response.headers.get("refreshed_token", "").strip().strip('"')
        if fresh and response.status_code != 401:
            self._adopt(fresh)


def _token_of(text: str, key: str = "token") -> tuple[str, str]:
    """(token, error) from a login or validatetoken body: raw JWT, quoted JWT, or JSON with ``token``."""
    text = text.strip()
    if text.startswith(("{", '"')):
        try:
            body = loads(text)
        except ValueError:
            return text.strip('"'), ""
        if isinstance(body, str):
            return body.strip(), ""
        if isinstance(body, dict):
            if _has_error(body):
                return "", _words(body["error"]) or "error"
            value = body.get(key)
            return (value.strip(), "") if isinstance(value, str) else ("", "")
        return "", ""
    return text, ""


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without checking the signature; None when there is none."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


# -- client -----------------------------------------------------------------------------------


class Client(ProviderClient[Connection, Job]):
    provider: ClassVar[str] = "datakitchen"
    display_name: ClassVar[str] = "DataKitchen"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.LIST_RUNS, Capability.CANCEL, Capability.RESUME, Capability.ENABLE, Capability.DISABLE}
    )

    def __init__(
        self,
        name: str,
        connection: Connection,
        *,
        http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
    ) -> None:
        self.session = _Session(
            connection.base_url,
            connection.username,
            connection.password,
            clock=clock,
            refuse=self._login_refused,
            malformed=lambda message: self.caller.error(ProviderResponseError, message),
        )
        super().__init__(name, connection, http=http, retry=retry, sleep=sleep)
        # the session's tokens are secrets too; the login form carries the password, Basic auth would carry both
        self.caller.redactor.add_source(self.session.tokens)
        password = connection.password.get_secret_value()
        self.caller.redactor.add_basic_auth(connection.username, password)
        # the login form's field whole: hides a password too short to be redacted alone (MIN_LENGTH)
        self.caller.redactor.add(f"password={quote_plus(password)}")

    def _auth(self) -> httpx.Auth:
        return self.session

    def _error_text(self, response: httpx.Response) -> str:
        """DataKitchen errors read ``{"message": {"error": ...}}``; gateway HTML pages say nothing useful."""
        text = response.text
        if "html" in response.headers.get("content-type", "").lower() or text.lstrip().startswith("<"):
            return ""
        try:
            body = loads(response.content)
        except ValueError:
            return text.strip()
        return _words(body)

    def _login_refused(self, response: httpx.Response) -> ProviderError:
        said = self.caller.excerpt(self._error_text(self.caller.redacted_answer(response)))
        return self.caller.error(
            ProviderAuthError,
            f"DataKitchen refused the login of user {self.connection.username!r} for connection {self.name} "
            f"(HTTP {response.status_code}){': ' + said if said else ''}. Wrong username or password: check "
            "them in the connection's environment variables.",
            status_code=response.status_code,
        )

    # -- paths -----------------------------------------------------------------------------

    @staticmethod
    def _seg(value: str) -> str:
        return quote(value, safe="")

    def _order_ref(self, run_id: str) -> tuple[str, str | None]:
        order_id, _, hid = run_id.strip().partition("/")
        if not order_id or "/" in hid:
            raise self.caller.error(
                ProviderRejected,
                f"{run_id!r} is not a DataKitchen run id (expected '<order_id>' or '<order_id>/<order_run_id>').",
            )
        return order_id, hid or None

    async def _body(self, call: Call) -> Any:
        """The JSON answer of a call; a 2xx answer with an ``error`` key is a refusal, not a success."""
        body = await self._json(call)
        if isinstance(body, dict) and _has_error(body):
            raise self.caller.error(
                ProviderRejected, f"DataKitchen refused to {call.what}: {self.caller.excerpt(_words(body['error']))}"
            )
        return body

    # -- trigger and status ------------------------------------------------------------------

    async def _ensure_session(self) -> None:
        """Log in (or renew) with a read before a write, so that a login hiccup is retried.

        Otherwise a login that times out inside a create would be reported as "unknown whether it
        started" although nothing was sent.
        """
        if self.session.needs_renewal():
            what = f"log in to DataKitchen as {self.connection.username}"
            await self.caller.send(Call("GET", "v2/validatetoken", what))

    async def trigger(self, job: Job, parameters: Mapping[str, str]) -> Triggered:
        await self._ensure_session()
        call = Call(
            "PUT",
            f"v2/order/create/{self._seg(job.kitchen)}/{self._seg(job.recipe)}/{self._seg(job.variation)}",
            f"create an order for {job.describe()}",
            idempotent=False,
            json={"parameters": _overrides(parameters, job.parameter_types), "schedule": "now"},
        )
        try:
            body = await self._body(call)
        except ProviderRejected as exc:
            raise self.caller.error(
                ProviderRejected,
                f"{exc} Check kitchen, recipe and variation of this pipeline in pipelines.yml.",
                status_code=exc.status_code,
            ) from None
        order_id = _order_id_of(body, _CREATED_KEYS)
        if not order_id:
            raise self.caller.error(
                TriggerOutcomeUnknown,
                f"DataKitchen accepted the order for {job.describe()} but its answer has no order id "
                f"({self.caller.excerpt(body, 200)!r}). Check the DataKitchen console before trying again.",
            )
        return Triggered(run_id=order_id)

    async def get_status(self, job: Job, run_id: str) -> RunStatus:
        order_id, hid = self._order_ref(run_id)
        servings = await self._servings(job, order_id)
        detail: dict[str, Any] | None = None
        if hid is None:
            if not servings:
                return RunStatus(
                    run_id=run_id,
                    state=RunState.QUEUED,
                    raw_status="PLANNED_SERVING",
                    message="no order run yet",
                    extra={"order_id": order_id},
                )
            serving = servings[0]
        else:
            found = next((s for s in servings if _hid_of(s) == hid), None)
            if found is None:  # an older run beyond the first page: ask for it by id
                found = detail = await self._details(job, hid, f"check order run {hid} of order {order_id}")
            serving = found
        status = self._serving_status(run_id, order_id, serving)
        if status.state.is_terminal:
            status = await self._with_details(job, status, detail)
        return self.caller.redact_status(status)

    async def _servings(self, job: Job, order_id: str) -> list[dict[str, Any]]:
        call = Call(
            "GET",
            f"v2/order/servings/{self._seg(job.kitchen)}/{self._seg(order_id)}",
            f"check order {order_id} of {job.describe()}",
        )
        body = await self._body(call)
        servings = body.get("servings") if isinstance(body, dict) else None
        if not isinstance(servings, list):
            raise self.caller.error(
                ProviderResponseError,
                f"DataKitchen's answer to {call.what} has no list of servings: {self.caller.excerpt(body, 200)!r}",
            )
        return [s for s in servings if isinstance(s, dict)]

    async def _details(self, job: Job, hid: str, what: str) -> dict[str, Any]:
        call = Call(
            "POST",
            f"v2/order/details/{self._seg(job.kitchen)}",
            what,
            json={
                "serving_hid": hid,
                "summary": True,
                "logs": True,
                "testresults": False,
                "timingresults": False,
                "servingjson": False,
            },
        )
        body = await self._body(call)
        servings = body.get("servings") if isinstance(body, dict) else None
        found = [s for s in servings if isinstance(s, dict)] if isinstance(servings, list) else []
        if not found:
            raise self.caller.error(
                ProviderResponseError,
                f"DataKitchen's answer to {what} has no order run: {self.caller.excerpt(body, 200)!r}",
            )
        return next((s for s in found if _hid_of(s) == hid), found[0])

    async def _with_details(self, job: Job, status: RunStatus, detail: dict[str, Any] | None = None) -> RunStatus:
        """Add the node breakdown and the log's error lines to a finished run.

        Only asked once a run has ended, so that a running order costs one call per poll. A details
        call that fails for good leaves the status as it is, with a note: the run's end is known.
        """
        hid = status.extra.get("serving_hid", "")
        if detail is None:
            try:
                detail = await self._details(job, hid, f"read the details of order run {hid}")
            except ProviderUnavailable:
                raise
            except ProviderError as exc:
                note = f"(DataKitchen gave no details of this order run: {exc})"
                return replace(status, message=_join(status.message, note))
        # each piece before anything is cut from it (half a secret is not found); one pattern for every line
        redact = self.caller.redactor.snapshot()
        lines = [line._replace(text=redact(line.text)) for line in _log_lines(detail)]
        tasks = _tasks_of(detail, lines, redact)
        message = status.message
        if status.state is RunState.FAILED:
            message = _failure_message(tasks, lines, detail, status.message, redact)
        return replace(status, tasks=tasks or status.tasks, message=message)

    def _serving_status(self, run_id: str, order_id: str, serving: Mapping[str, Any]) -> RunStatus:
        """One order run (an entry of ``servings``) as a RunStatus."""
        raw = str(serving.get("status") or "")
        state = map_status(raw)
        hid = _hid_of(serving)
        timings = serving.get("timings") if isinstance(serving.get("timings"), dict) else {}
        assert isinstance(timings, dict)
        started = _from_ms(timings.get("start-time")) if state is not RunState.QUEUED else None
        ended = _from_ms(timings.get("end-time")) if is_final(raw) else None
        duration = _ms_delta(timings.get("duration")) if is_final(raw) else None
        words = str(serving.get("orderrun_status") or "")
        message = ""
        if raw.strip().upper() == "SERVING_RERAN":
            message = f"This order run was resumed: a newer run of order {order_id} superseded it."
        elif state in (RunState.FAILED, RunState.CANCELED, RunState.UNKNOWN):
            message = _cut(self.caller.redact(_words(serving.get("error")) or words), _MESSAGE_LIMIT)
        extra = {"order_id": str(serving.get("order_id") or order_id)}
        if hid:
            extra["serving_hid"] = hid
        if words:
            extra["orderrun_status"] = words
        return RunStatus(
            run_id=run_id,
            state=state,
            raw_status=raw,
            message=message,
            started_at=started,
            ended_at=ended,
            duration=duration,
            final=is_final(raw),
            extra=extra,
        )

    # -- listing ---------------------------------------------------------------------------

    async def _orders_of(self, job: Job, servings_per_order: int) -> list[tuple[dict[str, Any], list[Any]]]:
        """The orders of this recipe / variation with their newest order runs.

        The platform filters by recipe (``r``, as DKCloudCommand's ``list_order`` asks); the variation
        is picked out here. Pages of ``_ORDERS_PAGE`` orders, at most ``_MAX_ORDER_PAGES`` of them.
        """
        found: list[tuple[dict[str, Any], list[Any]]] = []
        for page in range(_MAX_ORDER_PAGES):
            call = Call(
                "GET",
                f"v2/order/status/{self._seg(job.kitchen)}",
                f"list the orders of recipe {job.recipe} in kitchen {job.kitchen}",
                params={
                    "start": page * _ORDERS_PAGE,
                    "count": _ORDERS_PAGE,
                    "scount": servings_per_order,
                    "r": job.recipe,
                },
            )
            body = await self._body(call)
            if not isinstance(body, dict) or not isinstance(body.get("orders", []), list):
                raise self.caller.error(
                    ProviderResponseError,
                    f"DataKitchen's answer to {call.what} has no list of orders: {self.caller.excerpt(body, 200)!r}",
                )
            orders = [o for o in body.get("orders") or [] if isinstance(o, dict)]
            by_order = _servings_by_order(body.get("servings"))
            for order in orders:
                order_id = _order_id_of(order, ("hid",))
                servings = by_order.get(order_id, [])
                if order_id and _belongs(order, servings, job):
                    found.append((order, servings))
            if len(orders) < _ORDERS_PAGE:
                break
        return found

    async def list_runs(self, job: Job, *, since: datetime, limit: int = 50) -> list[RunStatus]:
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        runs: list[RunStatus] = []
        for order, servings in await self._orders_of(job, servings_per_order=max(1, min(limit, 100))):
            order_id = _order_id_of(order, ("hid",))
            for serving in servings:
                hid = _hid_of(serving)
                if not hid:
                    continue
                status = self._serving_status(f"{order_id}/{hid}", order_id, serving)
                if status.started_at is None or status.started_at >= since:
                    runs.append(self.caller.redact_status(status))
        far_future = datetime.max.replace(tzinfo=UTC)
        runs.sort(key=lambda r: r.started_at or far_future, reverse=True)
        return runs[:limit]

    # -- operations ------------------------------------------------------------------------

    async def _serving_hid(self, job: Job, run_id: str) -> tuple[str, str]:
        order_id, hid = self._order_ref(run_id)
        if hid is None:
            servings = await self._servings(job, order_id)
            hid = _hid_of(servings[0]) if servings else ""
            if not hid:
                raise self.caller.error(
                    ProviderRejected, f"Order {order_id} of {job.describe()} has no order run yet."
                )
        return order_id, hid

    async def cancel(self, job: Job, run_id: str) -> None:
        order_id, hid = await self._serving_hid(job, run_id)
        await self._body(
            Call(
                "PUT",
                f"v2/serving/stop/{self._seg(hid)}",
                f"stop order run {hid} of order {order_id}",
                json={"serving_hid": hid, "kitchen_name": job.kitchen},
            )
        )

    async def resume(self, job: Job, run_id: str, parameters: Mapping[str, str]) -> Triggered:
        """Resume a failed order run: the platform starts a new run of the same order."""
        order_id, hid = await self._serving_hid(job, run_id)
        await self._ensure_session()
        body = await self._body(
            Call(
                "PUT",
                f"v2/order/resume/{self._seg(hid)}",
                f"resume order run {hid} of order {order_id}",
                idempotent=False,
                json={
                    "kitchen_name": job.kitchen,
                    "serving_hid": hid,
                    "skip-failed-nodes": False,
                    "parameters": _overrides(parameters, job.parameter_types),
                },
            )
        )
        answered = body.get("order_id") if isinstance(body, dict) else None
        return Triggered(run_id=str(answered or order_id))

    async def disable(self, job: Job) -> None:
        await self._pause(job, pause=True)

    async def enable(self, job: Job) -> None:
        await self._pause(job, pause=False)

    async def _pause(self, job: Job, *, pause: bool) -> None:
        """Pause the job's active orders (unpause its paused ones): that stops (restarts) its schedule.

        An order's state is its ``order-status`` (``ACTIVE_ORDER``, ``PAUSED_ORDER``, ``COMPLETED_ORDER``…);
        finished orders and orders already in the wanted state are left alone. One refusal does not
        keep the other orders from being paused; the refusals are reported together at the end.
        """
        verb = "pause" if pause else "unpause"
        wanted = _ACTIVE_ORDER if pause else _PAUSED_ORDER
        orders = [order for order, _ in await self._orders_of(job, servings_per_order=1)]
        if not orders:
            raise self.caller.error(
                ProviderRejected, f"DataKitchen has no order of {job.describe()}: there is no order to {verb}."
            )
        todo = [o for o in orders if _order_state(o) == wanted]
        if not todo:
            seen = ", ".join(sorted({_order_state(o) or "no order-status" for o in orders}))
            raise self.caller.error(
                ProviderRejected,
                f"There is no order to {verb}: none of the {len(orders)} order(s) of {job.describe()} is "
                f"{wanted} (they are {seen}).",
            )
        refused: list[str] = []
        for order in todo:
            order_id = _order_id_of(order, ("hid",))
            call = Call(
                "PUT",
                f"v2/order/{verb}/{self._seg(order_id)}",
                f"{verb} order {order_id} of {job.describe()}",
                json={"kitchen_name": job.kitchen},
            )
            try:
                await self._body(call)
            except (ProviderRejected, ProviderNotFound) as exc:
                refused.append(str(exc))
        if refused:
            done = len(todo) - len(refused)
            raise self.caller.error(
                ProviderRejected,
                f"DataKitchen {verb}d {done} of the {len(todo)} order(s) of {job.describe()}; "
                + " ".join(refused),
            )


# -- reading answers --------------------------------------------------------------------------


def _has_error(body: Mapping[str, Any]) -> bool:
    return "error" in body and body["error"] not in (None, False, "", {}, [])


def _words(value: Any) -> str:
    """The words of an error value: ``{"message": {"error": ...}}``, a string, a list…"""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        for key in ("message", "error", "error_message", "detail", "details", "reason"):
            if value.get(key):
                return _words(value[key])
        return json.dumps(value)  # whole: the caller redacts, then cuts
    if isinstance(value, list):
        return "; ".join(w for w in (_words(v) for v in value[:5]) if w)
    return str(value)


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, lines kept. Only ever of redacted text."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _overrides(parameters: Mapping[str, str], types: Mapping[str, str]) -> dict[str, Any]:
    """Run parameters as DataKitchen overrides: a parameter typed ``int`` or ``bool`` in the catalog is
    sent as a JSON number or boolean (recipe variables are JSON values: DKUtils' documented orders carry
    lists in ``input_settings.parameters``); everything else as text, as the seed's example does."""
    sent: dict[str, Any] = {}
    for name, value in parameters.items():
        kind, text = types.get(name), value.strip()
        if kind == "int" and re.fullmatch(r"-?\d+", text):
            sent[name] = int(text)
        elif kind == "bool" and text.lower() in ("true", "false"):
            sent[name] = text.lower() == "true"
        else:  # text, or a value the catalog did not check (it checks typed ones): as given
            sent[name] = value
    return sent


#: where a create answer names the new order: ``order_id`` (DKCloudCommand 1.5, DKUtils),
#: ``serving_hid`` (DKCloudCommand 1.0's create_order), ``serving_chronos_id`` (the legacy order id)
_CREATED_KEYS = ("order_id", "serving_hid", "serving_chronos_id")


def _order_id_of(body: Any, keys: Sequence[str] = ("order_id", "serving_hid", "hid")) -> str:
    """An order's id under the first of ``keys`` that holds one."""
    if not isinstance(body, dict):
        return ""
    for key in keys:
        if isinstance(body.get(key), str) and body[key].strip():
            return str(body[key]).strip()
    return ""


def _hid_of(serving: Mapping[str, Any]) -> str:
    for key in ("hid", "serving_hid", "orderrun_id"):
        if isinstance(serving.get(key), str) and serving[key].strip():
            return str(serving[key]).strip()
    return ""


def _servings_by_order(raw: Any) -> dict[str, list[Any]]:
    """``servings`` of order/status: ``{<order_id>: {servings: [...]}}``, or a flat list with ``order_id``."""
    found: dict[str, list[Any]] = {}
    if isinstance(raw, dict):
        for order_id, entry in raw.items():
            servings = entry.get("servings") if isinstance(entry, dict) else entry
            if isinstance(servings, list):
                found[str(order_id)] = [s for s in servings if isinstance(s, dict)]
    elif isinstance(raw, list):
        for serving in raw:
            if isinstance(serving, dict) and serving.get("order_id"):
                found.setdefault(str(serving["order_id"]), []).append(serving)
    return found


def _name(entry: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        if isinstance(entry.get(key), str):
            return str(entry[key])
    return None


def _belongs(order: Mapping[str, Any], servings: list[Any], job: Job) -> bool:
    """Whether an order is one of this recipe / variation (from the order, else from its runs)."""
    recipe = _name(order, "recipe", "recipe_name")
    variation = _name(order, "variation", "variation_name")
    for serving in servings:
        recipe = recipe or _name(serving, "recipe_name", "recipe")
        variation = variation or _name(serving, "variation_name", "variation")
    return recipe == job.recipe and variation == job.variation


def _order_state(order: Mapping[str, Any]) -> str:
    """An order's ``order-status`` (hyphenated, as DKCloudCommand's list_order and DKUtils read it)."""
    value = order.get("order-status")
    return value.strip().upper() if isinstance(value, str) else ""


def _from_ms(value: Any) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, UTC)


def _ms_delta(value: Any) -> timedelta | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return timedelta(milliseconds=value)


def _tasks_of(
    detail: Mapping[str, Any], lines: Sequence[_Line] = (), redact: Callable[[str], str] = str
) -> tuple[TaskStatus, ...]:
    """Nodes from ``summary.nodes`` (or, in older answers, the dict entries of ``summary`` itself).

    A failed node without words of its own gets the log lines that name it (``lines`` come redacted; a node's
    own words are redacted here before they are cut).
    """
    summary = detail.get("summary")
    if not isinstance(summary, dict):
        return ()
    nodes = summary.get("nodes") if isinstance(summary.get("nodes"), dict) else summary
    assert isinstance(nodes, dict)
    tasks = []
    for name, info in nodes.items():
        if not isinstance(info, dict) or "status" not in info:
            continue
        raw = str(info.get("status") or "")
        message = _cut(redact(_words(info.get("error") or info.get("message"))), _MESSAGE_LIMIT)
        state = node_state(raw)
        if state is RunState.FAILED and not message:
            message = "\n".join(line.text for line in lines if line.about(str(name)))[-500:]
        tasks.append(TaskStatus(name=str(name), state=state, raw_status=raw, message=message))
    return tuple(tasks)


class _Line(NamedTuple):
    """One log line of an order run, and the node it is about when the log says so."""

    text: str
    node: str = ""

    def about(self, node: str) -> bool:
        return self.node == node if self.node else node in self.text


def _log_lines(detail: Mapping[str, Any]) -> list[_Line]:
    """Log lines of a details answer: its last ``_LOG_KEEP_LINES`` lines and ``_LOG_KEEP`` characters at most,
    where a run's failure is told.

    DataKitchen's shape: ``log: {lines: [{record_type, node, message, …}]}`` (DKCloudCommand's
    orderrun_detail prints these entries, DKUtils' OrderRunMonitor reads ``record_type``, ``node`` and
    ``message``). A list of lines or entries, plain text or base64 zlib text are read too (assumption).
    """
    raw = detail.get("log", detail.get("logs"))
    if isinstance(raw, dict) and isinstance(raw.get("lines"), list):
        raw = raw["lines"]
    if isinstance(raw, list):
        return _tail([line for line in (_entry_line(e) for e in raw[-_LOG_KEEP_LINES:]) if line.text])
    if isinstance(raw, str):
        text = _maybe_compressed(raw)[-_LOG_KEEP:]
        return _tail([_Line(line.strip()) for line in text.splitlines()[-_LOG_KEEP_LINES:] if line.strip()])
    return []


def _tail(lines: list[_Line]) -> list[_Line]:
    """The last lines, ``_LOG_KEEP_LINES`` and ``_LOG_KEEP`` characters of them at most: each is redacted and
    searched, and the end of a log is what says why a run failed."""
    lines = lines[-_LOG_KEEP_LINES:]
    kept = 0
    for at in range(len(lines) - 1, -1, -1):
        kept += len(lines[at].text)
        if kept > _LOG_KEEP:
            return lines[at + 1 :]
    return lines


def _entry_line(entry: Any) -> _Line:
    if isinstance(entry, str):
        return _Line(entry.strip())
    if isinstance(entry, dict) and "message" in entry:
        level = entry.get("record_type")
        text = _words(entry.get("message"))
        node = entry.get("node")
        return _Line(f"{level} {text}" if isinstance(level, str) and text else text,
                     node if isinstance(node, str) else "")
    return _Line(_words(entry))


def _maybe_compressed(text: str) -> str:
    """DKCloudCommand decompresses logs (base64 of zlib); plain text passes through.

    Inflated a piece at a time, at most ``_LOG_INFLATE`` bytes, keeping the last ``_LOG_KEEP``: 10 MB of zlib can
    become 10 GB (1.4 MB of it grew the process by 2 GB and held the event loop for a minute). A log longer than
    that once inflated ends with a line saying where the bot stopped reading it."""
    try:
        data = base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return text
    inflater = zlib.decompressobj()
    kept = bytearray()
    inflated = 0
    try:
        while not inflater.eof and inflated < _LOG_INFLATE:
            piece = inflater.decompress(data, _INFLATE_STEP)
            data = inflater.unconsumed_tail
            if not piece:
                break  # no input left before the end of the stream
            inflated += len(piece)
            kept += piece
            del kept[: max(0, len(kept) - _LOG_KEEP)]
    except zlib.error:
        return text
    if not inflater.eof and inflated < _LOG_INFLATE:
        return text  # cut short: not a compressed log after all (zlib.decompress would refuse it too)
    shown = kept.decode("utf-8", "replace")
    if not inflater.eof:
        shown += (
            f"\n(the log goes on past {_LOG_INFLATE // 2**20} MB once decompressed; the bot read no further: "
            "see the order run in DataKitchen)"
        )
    return shown


def _failure_message(
    tasks: tuple[TaskStatus, ...],
    log: list[_Line],
    detail: Mapping[str, Any],
    fallback: str,
    redact: Callable[[str], str] = str,
) -> str:
    """Which nodes failed and what the log says about it (``lines`` come redacted; the rest is redacted here,
    before the message is cut)."""
    failed = [t.name for t in tasks if t.state is RunState.FAILED]
    lines = [line.text for line in log]
    errors = [line for line in lines if any(w in line.lower() for w in ("error", "fail", "exception"))]
    parts = []
    if failed:
        parts.append(f"Failed node{'s' if len(failed) > 1 else ''}: {', '.join(failed)}.")
    said = redact(_words(detail.get("error"))) or "\n".join((errors or lines)[-5:])
    if said:
        parts.append(said)
    message = "\n".join(parts) or fallback or "The order run failed; DataKitchen gave no reason."
    return _cut(message, _MESSAGE_LIMIT)
