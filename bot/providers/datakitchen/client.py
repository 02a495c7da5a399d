"""The DataKitchen client: create orders, follow their order runs, stop, resume, pause and unpause."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import quote, quote_plus

import httpx

from bot.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRejected,
    ProviderResponseError,
    ProviderUnavailable,
    TriggerOutcomeUnknown,
)
from bot.models import Json, JsonValue, RunLog, RunLogPage, RunState, RunStatus, Triggered
from bot.providers._http import Call, RetryPolicy, Sleep, loads
from bot.providers.base import Capability, ProviderClient
from bot.providers.datakitchen.answers import (
    _CREATED_KEYS,
    _MESSAGE_LIMIT,
    _belongs,
    _cut,
    _from_ms,
    _has_error,
    _hid_of,
    _join,
    _ms_delta,
    _order_id_of,
    _overrides,
    _words,
    is_final,
    map_status,
)
from bot.providers.datakitchen.batches import OrdersMoved, kitchen_statuses, order_pages
from bot.providers.datakitchen.config import Connection, Job
from bot.providers.datakitchen.logs import _failure_message, _log_lines, _tasks_of, export_page, log_of
from bot.providers.datakitchen.orders import pause_orders
from bot.providers.datakitchen.session import Clock, _Session

_MAX_ORDER_PAGES = 10
#: readings of a recipe's orders before giving up when orders keep being removed while they are read
_LIST_TRIES = 3
#: order states (DKUtils' constants): only these two are paused / unpaused


class Client(ProviderClient[Connection, Job]):
    provider: ClassVar[str] = "datakitchen"
    display_name: ClassVar[str] = "DataKitchen"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({
        Capability.LIST_RUNS, Capability.CANCEL, Capability.RESUME, Capability.ENABLE, Capability.DISABLE,
        Capability.STATUSES, Capability.LOGS})

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

    async def _body(self, call: Call) -> JsonValue:
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
        detail: Json | None = None
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

    async def _servings(self, job: Job, order_id: str) -> list[Json]:
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

    async def _details(self, job: Job, hid: str, what: str, tests: bool = False) -> Json:
        call = Call(
            "POST",
            f"v2/order/details/{self._seg(job.kitchen)}",
            what,
            json={
                "serving_hid": hid,
                "summary": True,
                "logs": True,
                "testresults": tests,
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

    async def _with_details(self, job: Job, status: RunStatus, detail: Json | None = None) -> RunStatus:
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

    async def run_log(self, job: Job, run_id: str) -> RunLog:
        """The order run's log and test results: the details DKCloudCommand's ``orderrun_detail`` asks for."""
        _, hid = await self._serving_hid(job, run_id)
        detail = await self._details(job, hid, f"read the log of order run {hid}", tests=True)
        return log_of(detail, self.caller.redactor.snapshot(), hid)

    async def run_log_page(self, job: Job, run_id: str, page: int, size: int) -> RunLogPage:
        """A page of the order run's whole log, from the full-log export DKCloudCommand reads for ``dk
        orderrun-info --full_log`` (``DKCloudAPI.get_order_run_full_log``: ``GET
        v2/order/export/logs/{kitchen}/{order_run_id}``, ``log``: base64 of a zip of the text)."""
        _, hid = await self._serving_hid(job, run_id)
        what = f"export the whole log of order run {hid}"
        call = Call("GET", f"v2/order/export/logs/{self._seg(job.kitchen)}/{self._seg(hid)}", what)
        body = await self._body(call)
        encoded = body.get("log") if isinstance(body, dict) else None
        if not isinstance(encoded, str):
            raise self.caller.error(
                ProviderResponseError, f"DataKitchen's answer to {what} has no log: {self.caller.excerpt(body, 200)!r}"
            )
        redact = self.caller.redactor.snapshot()
        try:  # off the event loop: inflating a long log takes a while
            return await asyncio.to_thread(export_page, encoded, page, size, redact, hid)
        except ValueError as exc:
            refused = f"DataKitchen's answer to {what} is not a log: {exc}"
            raise self.caller.error(ProviderResponseError, refused) from exc

    def _serving_status(self, run_id: str, order_id: str, serving: Mapping[str, JsonValue]) -> RunStatus:
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
            shows_cancels=True,  # a stopped order run is STOPPED_SERVING: a failure is never a stop
        )

    # -- listing ---------------------------------------------------------------------------

    async def _orders_of(self, job: Job, servings_per_order: int) -> list[tuple[Json, list[JsonValue]]]:
        """The orders of this recipe / variation with their newest order runs.

        The platform filters by recipe (``r``, as DKCloudCommand's ``list_order`` asks); the variation
        is picked out here. Pages of ``ORDERS_PAGE`` orders, at most ``_MAX_ORDER_PAGES`` of them. Each order once:
        orders created while the pages are read push the list down, and a page begins with orders the page before
        held (each of their runs listed twice: counted twice by ``stats``, shown twice by ``last``, an order paused
        twice); as the later page shows it, in its first place.
        """
        what = f"list the orders of recipe {job.recipe} in kitchen {job.kitchen}"
        params = {"scount": servings_per_order, "r": job.recipe}
        for _ in range(_LIST_TRIES):  # orders removed while the pages were read: read them again (OrdersMoved)
            found: dict[str, tuple[Json, list[JsonValue]]] = {}
            try:
                async for page in order_pages(self, job.kitchen, what, params, _MAX_ORDER_PAGES):
                    for order in page.orders:
                        order_id = _order_id_of(order, ("hid",))
                        servings = page.by_order.get(order_id, [])
                        if order_id and _belongs(order, servings, job):
                            found[order_id] = (order, servings)
            except OrdersMoved:
                continue
            return list(found.values())
        raise self.caller.error(
            ProviderResponseError,
            f"DataKitchen's orders of recipe {job.recipe} in kitchen {job.kitchen} kept changing while they were "
            f"read ({_LIST_TRIES} times: orders removed meanwhile); try again in a moment.",
        )

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

    # -- batched polls ---------------------------------------------------------------------

    def status_scope(self, job: Job) -> Hashable:
        return ("kitchen", job.kitchen)

    async def statuses(
        self, runs: Sequence[tuple[Job, str]], *, since: datetime,
        slots: AbstractAsyncContextManager[object] | None = None,
    ) -> dict[str, RunStatus]:
        """A kitchen's runs from its order status list, its pages read at once in ``slots``:
        ``bot/providers/datakitchen/batches.py``."""
        return await kitchen_statuses(self, runs, slots=slots)

    # -- operations ------------------------------------------------------------------------

    async def _serving_hid(self, job: Job, run_id: str) -> tuple[str, str]:
        order_id, hid = self._order_ref(run_id)
        if hid is None:
            servings = await self._servings(job, order_id)
            hid = _hid_of(servings[0]) if servings else ""
            if not hid:
                raise self.caller.error(ProviderRejected, f"Order {order_id} of {job.describe()} has no order run yet.")
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
        orders = [order for order, _ in await self._orders_of(job, servings_per_order=1)]
        await pause_orders(self, job, orders, pause=pause)
