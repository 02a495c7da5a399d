"""Rivery's legacy and v1 APIs on one server, as the vendor documents and Rivery's own clients show them.

Legacy, under ``/api/`` (what ``rivery-cli`` calls; at the root, as on the EU API host, with
``legacy_prefix=""``): ``GET me`` → ``{account_id, environment_id}``; ``POST run`` ``{"river_id"}`` →
``{run_id, river_id}``; ``GET check_run?run_id=`` → the seed document's shape (``river_run_status``
W/P/R/D/F/E, missing while waiting when asked to; ``river_run_message``; ``tasks_status`` as a list, or as one
object as in Boomi's sample; ``run_insert_date``/``run_end_date`` in epoch ms; ``error_description`` on
failure; ``river_id``);
``POST run/cancel`` ``{"run_id"}``; ``GET activities/runs/logs?id=`` (a ``queryid`` header, 202 while the
log is prepared, then 200 with CSV).

v1, under ``/v1/accounts/{account}/environments/{env}/``: ``rivers/{river}/run`` (202
``{run_group_id, river_cross_id, runs}``), ``rivers/{river}/runs/{run_id}``, ``rivers/{river}/runs``
(``start_time`` and ``end_time`` required, else 422 ``{"detail": [...]}``; ``items_per_page`` 1..200;
pages ``{items, next_page, page, total_items, items_per_page}``, ``next_page`` the next page's URL),
``activities_statistics`` (of the
environment, or ``rivers/{river}/…`` of one river), ``rivers/{river}/cancel_run``,
``rivers/{river}/activate_river`` / ``disable_river`` (204, or 202 ``{operation_id}`` with
``async_operations``) and ``operations/{id}`` (``status`` W, D or E).

Every route wants ``Authorization: Bearer <token>`` (any token when none are configured); 4xx bodies
carry a JSON ``message`` except the 422 validation errors. Triggers past Boomi's throttling rules (2 runs of a
river a minute, 15 per token) are answered 429. Scenario keys: see ``configure``.

``strict=True`` serves only what a source documents (docs/PROVIDERS.md, "Rivery: provenance"): a request that
relies on an assumption (run ``variables``, a cancel body) is refused with 400 "strict: no source for …", and
fields no source names are left out of the answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from aiohttp import web

from bot.emulators._core import EmulatorState, EmuRun, Json, JsonValue
from bot.emulators._server import EmulatorServer, Route, json_response, read_body

__all__ = ["RiveryEmulator"]

_V1_STATUS = {"queued": "pending", "running": "running", "failed": "failed", "canceled": "canceled"}
_STAT_STATUS = {"queued": "pending", "running": "running", "succeeded": "succeed", "failed": "failed",
                "canceled": "canceled"}
_TASK_TEXT = {"W": "Waiting", "R": "Running", "D": "Done Successfully", "F": "Failed"}
_MAX_PER_PAGE = 200
_CANCEL_ANSWERS = ("json", "empty", "no_content")
_STATS_SHAPES = ("list", "dict", "flat")
_TASK_SHAPES = ("list", "object")
_PAGE_FORMS = ("url", "path", "number", "string")  # "path": a URL relative to the host (assumption)


@dataclass(slots=True)
class _Operation:
    """An asynchronous activate/disable: working for ``remaining`` more checks, then done or in error."""

    operation_id: str
    kind: str
    river: str
    active: bool
    remaining: int
    error: str = ""
    status: str = "W"


@dataclass(slots=True)
class _LogQuery:
    run_id: str
    remaining: int


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _iso(seconds: float | None) -> str | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def _no_source(what: str) -> web.Response:
    """Strict mode's refusal of a request that only an assumption supports."""
    return _message(f"strict: no source for {what}", 400)


#: v1 run fields a source names: ``run_id`` and ``status`` (Rivery's v1 reference, /work/shared/PROVIDERS.md)
_V1_RUN_SOURCED = ("run_id", "status")
#: a page of runs: Boomi's Data Integration API reference lists ``items``, ``next_page``, ``page``, ``total_items``
_V1_PAGE_SOURCED = ("items", "next_page", "page", "total_items")
#: an operation: Boomi's Data Integration API reference, Operations
_OPERATION_SOURCED = ("operation_id", "status", "error_message")


def _only(body: Json, keys: Iterable[str]) -> Json:
    return {k: v for k, v in body.items() if k in keys}


def _problem(loc: list[str], msg: str, kind: str) -> Json:
    return {"loc": loc, "msg": msg, "type": kind}


def _invalid(*problems: Json) -> web.Response:
    """FastAPI's validation answer, which the v1 API gives."""
    return json_response({"detail": list(problems)}, 422)


def _message(text: str, status: int) -> web.Response:
    return json_response({"message": text}, status)


def _parse_time(raw: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class RiveryEmulator(EmulatorServer):
    """Rivery's routes and their handlers (``on_<what>``) over its settings; ``_Rules`` checks requests and
    ``_Documents`` writes the answers."""

    provider: ClassVar[str] = "rivery"

    def __init__(
        self,
        state: EmulatorState | None = None,
        *,
        tokens: Iterable[str] = (),
        account_id: str = "acc",
        environment_id: str = "env",
        legacy_prefix: str = "/api",
        strict: bool = False,
    ) -> None:
        super().__init__(state)
        #: serve only what a source documents (see the module docstring)
        self.strict = strict
        #: where the legacy routes live: "/api" as on https://console.rivery.io/api (US), "" as on the EU API host
        #: https://api.eu-west-1.rivery.io (seeds/rivery-api-overview-and-activities.txt, lines 55-57)
        self.legacy_prefix = "/" + legacy_prefix.strip("/") if legacy_prefix.strip("/") else ""
        self.tokens = set(tokens)  # empty: any Bearer token is accepted
        self.account_id = account_id
        self.environment_id = environment_id
        #: legacy code of a failed run: "E" (error) or "F" (failed); Rivery uses both
        self.failure_code = "F"
        #: leave river_run_status out while a run waits, as Rivery may ("missing means waiting")
        self.omit_waiting_status = False
        #: a status a running run reports instead of "R" / "running": one no document lists, as a new one would be
        self.running_code = ""
        #: answer a trigger without its run id (the run starts all the same)
        self.omit_run_id = False
        #: Boomi's legacy API reference, RunRiver, "Throttling rules": a river may be run at most 2 times a minute,
        #: each user (API token) may run rivers at most 15 times a minute; past that, 429. 0: no limit.
        self.river_runs_per_minute = 2
        self.token_runs_per_minute = 15
        #: v1 spelling of success: "succeeded" (runs) or "succeed" (activities filters)
        self.success_spelling = "succeeded"
        #: activate/disable answer 202 with an operation instead of 204
        self.async_operations = False
        #: how many checks an operation answers "W" before it ends
        self.operation_polls = 1
        #: when set, operations end "E" with this error_message
        self.operation_error = ""
        #: shape of activities_statistics: "list" of {status, count}, "dict" status → count, or "flat"
        self.stats_shape = "list"
        #: tasks_status as a "list" of tasks (the seed's check_run sample) or one "object", the current task
        #: (Boomi's legacy API reference, RunRiver sample)
        self.tasks_status_shape = "list"
        #: next_page as the next page's "url" (Boomi's Data Integration API reference: "The next page URL"), or in
        #: the older forms the bot still reads: a page "number" or a "string" cursor
        self.next_page_as = "url"
        #: the scheme and host of next_page URLs; empty: this server's own (another host tests the same-host rule)
        self.next_page_base = ""
        #: how cancel answers: 200 with JSON ("json"), 200 with an empty body ("empty"), or 204 ("no_content")
        self.cancel_answer = "json"
        #: how many polls of a log query answer 202 before the log is ready
        self.log_polls = 1
        #: river names for messages ("River <name> Done Successfully"); the id otherwise
        self.river_names: dict[str, str] = {}
        #: whether each river is enabled (after activate_river / disable_river)
        self.active: dict[str, bool] = {}
        self.operations: dict[str, _Operation] = {}
        self._log_queries: dict[str, _LogQuery] = {}
        self.rules = _Rules(self)
        self.documents = _Documents(self)

    def configure(self, scenario: Mapping[str, JsonValue]) -> None:
        """Scenario keys: tokens, account_id, environment_id, legacy_prefix, failure_code ("E"/"F"), running_code,
        omit_waiting_status, omit_run_id, success_spelling, async_operations, operation_polls, operation_error,
        stats_shape, tasks_status_shape, next_page_as ("url"/"path"/"number"/"string"), next_page_base, cancel_answer,
        log_polls, river_names, river_runs_per_minute, token_runs_per_minute (0: no limit), strict."""
        rest = dict(scenario)
        if "tokens" in rest:
            tokens = rest.pop("tokens")
            self.tokens = {tokens} if isinstance(tokens, str) else {str(t) for t in tokens or ()}
        for key in ("account_id", "environment_id", "operation_error", "next_page_base", "running_code"):
            if key in rest:
                setattr(self, key, str(rest.pop(key)))
        if "legacy_prefix" in rest:
            prefix = str(rest.pop("legacy_prefix") or "").strip("/")
            self.legacy_prefix = f"/{prefix}" if prefix else ""
        for key in ("omit_waiting_status", "async_operations", "omit_run_id", "strict"):
            if key in rest:
                setattr(self, key, bool(rest.pop(key)))
        for key in ("operation_polls", "log_polls", "river_runs_per_minute", "token_runs_per_minute"):
            if key in rest:
                setattr(self, key, max(int(rest.pop(key)), 0))
        choices = {
            "failure_code": ("E", "F"),
            "success_spelling": ("succeeded", "succeed"),
            "stats_shape": _STATS_SHAPES,
            "tasks_status_shape": _TASK_SHAPES,
            "next_page_as": _PAGE_FORMS,
            "cancel_answer": _CANCEL_ANSWERS,
        }
        for key, allowed in choices.items():
            if key in rest:
                value = str(rest.pop(key))
                if value not in allowed:
                    raise ValueError(f"{key} must be one of {list(allowed)}, not {value!r}")
                setattr(self, key, value)
        if "river_names" in rest:
            self.river_names = {str(k): str(v) for k, v in dict(rest.pop("river_names")).items()}
        super().configure(rest)

    def routes(self) -> list[Route]:
        v1 = "/v1/accounts/{account}/environments/{env}"
        river = f"{v1}/rivers/{{river}}"
        legacy = self.legacy_prefix
        return [
            Route("GET", f"{legacy}/me", "me", self.on_me),
            Route("POST", f"{legacy}/run", "trigger", self.on_run),
            Route("GET", f"{legacy}/check_run", "status", self.on_check_run),
            Route("POST", f"{legacy}/run/cancel", "cancel", self.on_cancel),
            Route("GET", f"{legacy}/activities/runs/logs", "logs", self.on_logs),
            Route("POST", f"{river}/run", "v1_trigger", self.on_v1_run),
            Route("GET", f"{river}/runs/{{run}}", "v1_status", self.on_v1_status),
            Route("GET", f"{river}/runs", "v1_runs", self.on_v1_runs),
            Route("POST", f"{river}/cancel_run", "v1_cancel", self.on_v1_cancel),
            Route("GET", f"{v1}/activities_statistics", "v1_stats", self.on_v1_stats),
            Route("GET", f"{river}/activities_statistics", "v1_river_stats", self.on_v1_river_stats),
            Route("POST", f"{river}/activate_river", "v1_activate", self.on_v1_activate),
            Route("POST", f"{river}/disable_river", "v1_disable", self.on_v1_disable),
            Route("GET", f"{v1}/operations/{{operation}}", "v1_operation", self.on_v1_operation),
        ]

    def expired_token_response(self) -> web.StreamResponse:
        return _message("The token has expired", 401)

    # -- legacy handlers --------------------------------------------------------------------

    async def on_me(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.refused(request)) is not None:
            return refused
        return json_response({"account_id": self.account_id, "environment_id": self.environment_id})

    async def on_run(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.refused(request)) is not None:
            return refused
        body = await read_body(request)
        river = str(body.get("river_id") or "").strip() if isinstance(body, dict) else ""
        if not river:
            return _message("river_id is required", 400)
        if self.strict and (unsourced := sorted(set(body) - {"river_id"})):
            return _no_source(f"{', '.join(unsourced)} in the body of POST run: Boomi's RunRiver request and "
                              "rivery-cli's run_river send river_id alone")
        if (unknown := self.rules.unknown_river(river)) is not None:
            return unknown
        if (throttled := self.rules.throttled(request, river)) is not None:
            return throttled
        run = self.rules.start_run(river, body.get("variables"))
        if self.omit_run_id:
            return json_response({"river_id": river})
        return json_response({"run_id": run.run_id, "river_id": river})

    async def on_check_run(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.refused(request)) is not None:
            return refused
        run_id = request.query.get("run_id", "").strip()
        if not run_id:
            return _message("run_id is required", 400)
        run = self.rules.run_of(run_id)
        if run is None:
            return _message(f"Run {run_id} was not found", 404)
        return json_response(self.documents.check_run(run))

    async def on_cancel(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.refused(request)) is not None:
            return refused
        if self.strict:
            return _no_source("the body of POST run/cancel: rivery-cli's cancel_run sends whatever its caller "
                              "gives, and no document shows it")
        body = await read_body(request)
        run_id = str(body.get("run_id") or "").strip() if isinstance(body, dict) else ""
        if not run_id:
            return _message("run_id is required", 400)
        return self.rules.cancel(self.rules.run_of(run_id), run_id)

    async def on_logs(self, request: web.Request) -> web.StreamResponse:
        """The log download: a query is started (202 + ``queryid``), polled with ``queryId``, then 200 CSV."""
        if (refused := self.rules.refused(request)) is not None:
            return refused
        run_id = request.query.get("id", "").strip()
        if not run_id:
            return _message("id is required", 400)
        run = self.rules.run_of(run_id)
        if run is None:
            return _message(f"Run {run_id} was not found", 404)
        query_id = request.query.get("queryId") or request.query.get("queryid") or request.headers.get("queryid")
        if not query_id:
            query_id = self.state.new_id("hex")
            self._log_queries[query_id] = _LogQuery(run_id, self.log_polls)
            return json_response({"message": "Downloading logs is still in progress"}, 202, {"queryid": query_id})
        query = self._log_queries.get(query_id)
        if query is None or query.run_id != run_id:
            return _message(f"Logs query {query_id} was not found", 404)
        if query.remaining > 0:
            query.remaining -= 1
            return json_response({"message": "Downloading logs is still in progress"}, 202, {"queryid": query_id})
        return web.Response(text=self.documents.log_csv(run), content_type="text/csv", headers={"queryid": query_id})

    # -- v1 handlers ------------------------------------------------------------------------

    async def on_v1_run(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.v1_refused(request)) is not None:
            return refused
        river = request.match_info["river"]
        if (unknown := self.rules.unknown_river(river)) is not None:
            return unknown
        body = await read_body(request)
        if self.strict and body:
            return _no_source("a body in POST rivers/{river}/run: the v1 reference documents none")
        if (throttled := self.rules.throttled(request, river)) is not None:
            return throttled
        run = self.rules.start_run(river, body.get("variables") if isinstance(body, dict) else None)
        if self.omit_run_id:
            return json_response({"run_group_id": run.extra["run_group_id"], "river_cross_id": river, "runs": []}, 202)
        return json_response(
            {
                "run_group_id": run.extra["run_group_id"],
                "river_cross_id": river,
                "runs": [
                    {"run_id": run.run_id}
                    if self.strict
                    else {"run_id": run.run_id, "river_cross_id": river,
                          "status": self.documents.v1_status(run, run.created_at)}
                ],
            },
            202,
        )

    async def on_v1_status(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.v1_refused(request)) is not None:
            return refused
        river, run_id = request.match_info["river"], request.match_info["run"]
        if (unknown := self.rules.unknown_river(river)) is not None:
            return unknown
        run = self.rules.run_of(run_id, river)
        if run is None:
            return _message(f"Run {run_id} of river {river} was not found", 404)
        return json_response(self.documents.v1_run(run))

    async def on_v1_runs(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.v1_refused(request)) is not None:
            return refused
        window, problems = self.rules.window(request)
        paging, more_problems = self.rules.paging(request)
        if window is None or paging is None:
            return _invalid(*problems, *more_problems)
        river = request.match_info["river"]
        if (unknown := self.rules.unknown_river(river)) is not None:
            return unknown
        page, per_page = paging
        runs = [r for r in self.state.runs_of(river) if self.rules.in_window(r, window)]
        chunk = runs[(page - 1) * per_page : page * per_page]
        more = page * per_page < len(runs)
        following: int | str | None = None
        if more and self.next_page_as == "url":
            following = self.rules.page_url(request, page + 1)
        elif more and self.next_page_as == "path":
            following = request.url.update_query(page=str(page + 1)).path_qs
        elif more:
            following = page + 1 if self.next_page_as == "number" else str(page + 1)
        answer = {
            "items": [self.documents.v1_run(r) for r in chunk],
            "next_page": following,
            "page": page,
            "total_items": len(runs),
            "items_per_page": per_page,
        }
        return json_response(_only(answer, _V1_PAGE_SOURCED) if self.strict else answer)

    async def on_v1_cancel(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.v1_refused(request)) is not None:
            return refused
        river = request.match_info["river"]
        if self.strict:
            return _no_source("the body of POST rivers/{river}/cancel_run: no document shows it")
        body = await read_body(request)
        run_id = str(body.get("run_id") or "").strip() if isinstance(body, dict) else ""
        if not run_id:
            return _invalid(_problem(["body", "run_id"], "field required", "value_error.missing"))
        if (unknown := self.rules.unknown_river(river)) is not None:
            return unknown
        return self.rules.cancel(self.rules.run_of(run_id, river), run_id)

    async def on_v1_stats(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.v1_refused(request)) is not None:
            return refused
        window, problems = self.rules.window(request)
        if window is None:
            return _invalid(*problems)
        runs = [r for r in self.state.runs.values() if self.rules.in_window(r, window)]
        return json_response(self.documents.statistics(runs))

    async def on_v1_river_stats(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.v1_refused(request)) is not None:
            return refused
        window, problems = self.rules.window(request)
        if window is None:
            return _invalid(*problems)
        river = request.match_info["river"]
        if (unknown := self.rules.unknown_river(river)) is not None:
            return unknown
        runs = [r for r in self.state.runs_of(river) if self.rules.in_window(r, window)]
        return json_response(self.documents.statistics(runs))

    async def on_v1_activate(self, request: web.Request) -> web.StreamResponse:
        return await self._switch(request, "activate_river", True)

    async def on_v1_disable(self, request: web.Request) -> web.StreamResponse:
        return await self._switch(request, "disable_river", False)

    async def _switch(self, request: web.Request, kind: str, active: bool) -> web.StreamResponse:
        if (refused := self.rules.v1_refused(request)) is not None:
            return refused
        river = request.match_info["river"]
        if (unknown := self.rules.unknown_river(river)) is not None:
            return unknown
        if not self.async_operations:
            self.active[river] = active
            return web.Response(status=204)
        operation = _Operation(self.state.new_id("hex"), kind, river, active, self.operation_polls,
                               self.operation_error)
        self.operations[operation.operation_id] = operation
        return json_response({"operation_id": operation.operation_id}, 202)

    async def on_v1_operation(self, request: web.Request) -> web.StreamResponse:
        if (refused := self.rules.v1_refused(request)) is not None:
            return refused
        operation = self.operations.get(request.match_info["operation"])
        if operation is None:
            return _message(f"Operation {request.match_info['operation']} was not found", 404)
        if operation.status == "W":
            if operation.remaining > 0:
                operation.remaining -= 1
            elif operation.error:
                operation.status = "E"
            else:
                operation.status = "D"
                self.active[operation.river] = operation.active
        answer = {
            "operation_id": operation.operation_id,
            "operation_type": operation.kind,
            "river_id": operation.river,
            "status": operation.status,
            "error_message": operation.error if operation.status == "E" else None,
        }
        return json_response(_only(answer, _OPERATION_SOURCED) if self.strict else answer)


class _Rules:
    """What a request must carry (token, environment, known river, time window, page) and what it does to the runs:
    the throttling rules, starts and cancels."""

    def __init__(self, emu: RiveryEmulator) -> None:
        self.emu = emu
        self._triggers: list[tuple[float, str, str]] = []  # (when, river, token) of each accepted trigger

    def refused(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return _message("Missing Bearer token in the Authorization header", 401)
        if self.emu.tokens and token not in self.emu.tokens:
            return _message("Invalid or revoked API token", 401)
        return None

    def v1_refused(self, request: web.Request) -> web.Response | None:
        refused = self.refused(request)
        if refused is not None:
            return refused
        account, env = request.match_info["account"], request.match_info["env"]
        if account != self.emu.account_id or env != self.emu.environment_id:
            return _message(f"Environment {env} of account {account} was not found", 404)
        return None

    def unknown_river(self, river: str) -> web.Response | None:
        return None if self.emu.state.knows(river) else _message(f"River {river} was not found", 404)

    def run_of(self, run_id: str, river: str | None = None) -> EmuRun | None:
        run = self.emu.state.runs.get(run_id)
        return run if run is not None and (river is None or run.job == river) else None

    def window(self, request: web.Request) -> tuple[tuple[datetime, datetime] | None, list[Json]]:
        """``start_time`` and ``end_time``, both required; else the problems a 422 lists."""
        problems: list[Json] = []
        times: list[datetime] = []
        for key in ("start_time", "end_time"):
            raw = request.query.get(key)
            if raw is None:
               problems.append(_problem(["query", key], "field required", "value_error.missing"))
            elif (parsed := _parse_time(raw)) is None:
                problems.append(_problem(["query", key], "invalid datetime format", "value_error.datetime"))
            else:
                times.append(parsed)
        return ((times[0], times[1]) if not problems else None), problems

    def in_window(self, run: EmuRun, window: tuple[datetime, datetime]) -> bool:
        return window[0].timestamp() <= run.created_at <= window[1].timestamp()

    def paging(self, request: web.Request) -> tuple[tuple[int, int] | None, list[Json]]:
        """``page`` ≥ 1 and ``items_per_page`` in 1..200; else the problems a 422 lists."""
        problems: list[Json] = []
        values: dict[str, int] = {}
        for key, default, high in (("page", 1, None), ("items_per_page", 50, _MAX_PER_PAGE)):
            raw = request.query.get(key)
            try:
               value = default if raw is None else int(raw)
            except ValueError:
                problems.append(_problem(["query", key], "value is not a valid integer", "type_error.integer"))
                continue
            if value < 1:
                problems.append(_problem(["query", key], "ensure this value is greater than or equal to 1",
                                         "value_error.number.not_ge"))
            elif high is not None and value > high:
                problems.append(_problem(["query", key], f"ensure this value is less than or equal to {high}",
                                         "value_error.number.not_le"))
            values[key] = value
        return ((values["page"], values["items_per_page"]) if not problems else None), problems

    def page_url(self, request: web.Request, page: int) -> str:
        """This request's URL with the next page number: every filter and the window stay as asked."""
        url = request.url.update_query(page=str(page))
        return f"{self.emu.next_page_base.rstrip('/')}{url.path_qs}" if self.emu.next_page_base else str(url)

    def throttled(self, request: web.Request, river: str) -> web.Response | None:
        """429 past Rivery's throttling rules; otherwise the trigger is counted."""
        now = self.emu.state.now()
        token = request.headers.get("Authorization", "").strip().partition(" ")[2].strip()
        self._triggers = [t for t in self._triggers if now - t[0] < 60.0]
        by_river = sum(1 for _, r, _ in self._triggers if r == river)
        by_token = sum(1 for _, _, t in self._triggers if t == token)
        if self.emu.river_runs_per_minute and by_river >= self.emu.river_runs_per_minute:
            return _message(f"Too many requests: river {river} may be run up to {self.emu.river_runs_per_minute} "
                            "times per minute", 429)
        if self.emu.token_runs_per_minute and by_token >= self.emu.token_runs_per_minute:
            return _message(f"Too many requests: each user can execute rivers up to {self.emu.token_runs_per_minute} "
                            "times per minute", 429)
        self._triggers.append((now, river, token))
        return None

    def start_run(self, river: str, variables: JsonValue) -> EmuRun:
        parameters = dict(variables) if isinstance(variables, dict) else {}
        run = self.emu.state.start_run(river, parameters, run_id=self.emu.state.new_id("hex"))
        run.extra["run_group_id"] = self.emu.state.new_id("hex")
        return run

    def cancel(self, run: EmuRun | None, run_id: str) -> web.Response:
        if run is None:
            return _message(f"Run {run_id} was not found", 404)
        if not self.emu.state.cancel(run):
            return _message(f"Run {run_id} is not running any more ({run.phase(self.emu.state.now())})", 400)
        if self.emu.cancel_answer == "no_content":
            return web.Response(status=204)
        if self.emu.cancel_answer == "empty":
            return web.Response(status=200)
        return json_response({"run_id": run_id, "message": "Run cancellation requested"})


class _Documents:
    """The documents Rivery answers about runs: legacy ``check_run`` and its log, v1 runs and statistics."""

    def __init__(self, emu: RiveryEmulator) -> None:
        self.emu = emu

    def _name(self, river: str) -> str:
        return self.emu.river_names.get(river, river)

    def _task_code(self, run: EmuRun, task: str, index: int, now: float) -> str:
        phase = run.phase(now)
        if phase == "queued":
            return "W"
        if phase == "running":
            # tasks run one after the other across the running time
            share = run.outcome.running_s / max(len(run.outcome.tasks), 1)
            current = int((now - run.started_at()) // share) if share > 0 else 0
            return "D" if index < current else "R" if index == current else "W"
        if phase == "succeeded":
            return "F" if task in run.outcome.failed_tasks else "D"
        if phase == "canceled":
            return "F"
        return "F" if run.task_phase(task, now) == "failed" else "D"

    def _legacy_code(self, run: EmuRun, now: float) -> str | None:
        phase = run.phase(now)
        if phase == "queued":
            if self.emu.omit_waiting_status:
                return None
            return "W" if now - run.created_at < run.outcome.queued_s / 2 else "P"
        if phase == "running" and self.emu.running_code:
            return self.emu.running_code
        return {"running": "R", "succeeded": "D", "failed": self.emu.failure_code, "canceled": "F"}[phase]

    def check_run(self, run: EmuRun) -> Json:
        """The seed document's shape, key for key."""
        now = self.emu.state.now()
        phase = run.phase(now)
        name = self._name(run.job)
        tasks = []
        for index, task in enumerate(run.outcome.tasks):
            code = self._task_code(run, task, index, now)
            text = f"{task} {_TASK_TEXT[code]}"
            if code == "F" and phase == "canceled":
                text = f"{task} Canceled"
            elif code == "F" and run.outcome.message:
                text = f"{text}: {run.outcome.message}"
            tasks.append({"task_status": code, "task_status_message": text})
        shown: list[dict[str, str]] | dict[str, str] = tasks
        if self.emu.tasks_status_shape == "object" and tasks:
            shown = next((t for t in tasks if t["task_status"] != "D"), tasks[-1])
        # river_id: in Boomi's RunRiver sample, and rivery-cli's wait_for_end reads it from check_run
        body: Json = {"river_id": run.job, "tasks_status": shown, "run_insert_date": _ms(run.created_at)}
        ended = run.ended_at(now)
        if ended is not None:
            body["run_end_date"] = _ms(ended)
        river_code = self._legacy_code(run, now)
        if river_code is not None:
            body["river_run_status"] = river_code
        if phase == "failed":
            message = run.outcome.message or f"River {name} Failed"
            body["river_run_message"] = message
            body["error_description"] = message
        elif phase == "canceled":
            body["river_run_message"] = f"River {name} was canceled by a user"
            body["error_description"] = "Run canceled"
        else:
            said = {"queued": "is waiting to run", "running": "is running", "succeeded": "Done Successfully"}
            body["river_run_message"] = f"River {name} {said[phase]}"
        return body

    def _partial(self, run: EmuRun, now: float) -> bool:
        return run.phase(now) == "succeeded" and bool(run.outcome.failed_tasks)

    def v1_status(self, run: EmuRun, now: float) -> str:
        phase = run.phase(now)
        if phase == "succeeded":
            spelling = self.emu.success_spelling
            return f"partially {spelling}" if self._partial(run, now) else spelling
        if phase == "running" and self.emu.running_code:
            return self.emu.running_code
        return _V1_STATUS[phase]

    def v1_run(self, run: EmuRun) -> Json:
        now = self.emu.state.now()
        phase = run.phase(now)
        ended = run.ended_at(now)
        body: Json = {
            "run_id": run.run_id,
            "river_cross_id": run.job,
            "run_group_id": run.extra.setdefault("run_group_id", self.emu.state.new_id("hex")),
            "datasource_id": "emulated",
            "status": self.v1_status(run, now),
            "source_name": self._name(run.job),
            "target_name": None,
            "start_date_utc": None if phase == "queued" else _iso(min(run.started_at(), ended or now)),
            "end_date_utc": _iso(ended),
            "error_description": None,
            "units": 0.25 if ended is not None else 0.0,
        }
        if phase == "failed":
            body["error_description"] = run.outcome.message or f"River {self._name(run.job)} failed"
        elif phase == "canceled":
            body["error_description"] = "Run canceled by a user"
        if self._partial(run, now):
            body["warning"] = f"Targets not loaded: {', '.join(run.outcome.failed_tasks)}"
        return _only(body, _V1_RUN_SOURCED) if self.emu.strict else body

    def statistics(self, runs: Iterable[EmuRun]) -> Json:
        if self.emu.strict:
            return {}  # the seed documents the requests only: no field of the answer has a source
        now = self.emu.state.now()
        counts: dict[str, int] = {}
        units = 0.0
        total = 0
        for run in runs:
            label = _STAT_STATUS[run.phase(now)]
            if self._partial(run, now):
                label = "partially succeed"
            counts[label] = counts.get(label, 0) + 1
            units += 0.25 if run.ended_at(now) is not None else 0.0
            total += 1
        head: Json = {"units": units, "total_runs": total}
        if self.emu.stats_shape == "flat":
            return {**head, **counts}
        if self.emu.stats_shape == "dict":
            return {**head, "runs_statuses": counts}
        return {**head, "runs_statuses": [{"status": s, "count": n} for s, n in counts.items()]}

    def log_csv(self, run: EmuRun) -> str:
        lines = ["time,level,message"]
        stamp = _iso(run.created_at)
        lines += [f"{stamp},INFO,{text}" for text in run.outcome.filler()]
        tasks = self.check_run(run)["tasks_status"]
        for task in tasks if isinstance(tasks, list) else [tasks]:
            level = "ERROR" if task["task_status"] == "F" else "INFO"
            lines.append(f"{stamp},{level},{task['task_status_message'].replace(',', ' ')}")
        return "\r\n".join(lines) + "\r\n"

