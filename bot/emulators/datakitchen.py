"""DataKitchen Automation API (``/v2``), as the vendor documents and DataKitchen's own clients show it.

- ``POST /v2/login`` takes form fields (or JSON) ``username``/``password`` and answers the raw JWT
  as text (optionally in quotes); a refused login answers 401. Tokens are real HS256 JWTs with an
  ``exp`` claim on the emulator's clock. ``GET /v2/validatetoken`` answers ``{"token": <fresh>}``
  for a valid token, 401 otherwise. Every other route wants ``Authorization: Bearer <jwt>`` and
  answers 401 ``{"message": {"error": "token expired"}}`` for an expired one; with
  ``refreshed_token_header`` a token within 180 s of expiry gets a ``refreshed_token`` header.
- ``PUT /v2/order/create/{kitchen}/{recipe}/{variation}`` (``{"parameters": {...}, "schedule"}``)
  creates an order and plans one order run ("serving") for it; the answer carries the order id as
  ``order_id`` (DKCloudCommand 1.5, DKUtils) and ``serving_hid`` (DKCloudCommand 1.0) but no order-run
  id (``create_keys`` picks the keys). Unknown kitchens, recipes and variations answer 417
  ``{"message": {"error": ...}}``.
- Order runs: ``GET /v2/order/servings/{kitchen}/{order_id}``, ``GET /v2/order/status/{kitchen}``
  (``start``, ``count``, ``scount``, ``r`` = recipe as query parameters, as DKCloudCommand sends them,
  or a JSON body with ``recipe``, ``variation``, ``servingsCount``, as DKUtils does; orders carry
  ``order-status``), ``POST /v2/order/details/{kitchen}`` (by ``serving_hid``, ``serving_book_hid`` or
  ``order_id``; the requested run first; ``log.lines`` entries), ``PUT /v2/serving/stop/{id}``,
  ``PUT /v2/order/resume/{id}`` (a failed run only, named in the body or the path: a new run of the
  same order, the old one becomes ``SERVING_RERAN``), ``PUT /v2/order/pause/{order_id}`` (an
  ``ACTIVE_ORDER`` only) and ``/unpause/`` (a ``PAUSED_ORDER`` only).
- What DKUtils reads before creating an order: ``GET /v2/kitchen/list``,
  ``/v2/kitchen/recipenames/{kitchen}``, ``/v2/recipe/file/{kitchen}/{recipe}/variations.json``.

``strict``: only what a DataKitchen source shows is accepted and served (``SOURCED_REQUESTS``,
``SOURCED_FIELDS``; docs/PROVIDERS.md, "DataKitchen: provenance").

An order run is an ``EmuRun`` of job ``"<kitchen>/<recipe>/<variation>"`` whose ``run_id`` is the
order run's ``hid``. Times are epoch milliseconds, as in ``timings{start-time, end-time, duration}``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from bot.emulators._core import EmulatorState, EmuRun, Outcome
from bot.emulators._server import EmulatorServer, Route, json_response, read_body

__all__ = ["DataKitchenEmulator"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Catalog = Mapping[str, Mapping[str, Iterable[str]]]  # kitchen -> recipe -> variations

_SERVING_STATUS = {
    "queued": "PLANNED_SERVING",
    "running": "ACTIVE_SERVING",
    "succeeded": "COMPLETED_SERVING",
    "failed": "SERVING_ERROR",
    "canceled": "STOPPED_SERVING",
}
_ORDERRUN_WORDS = {
    "PLANNED_SERVING": "OrderRun Planned",
    "ACTIVE_SERVING": "OrderRun Active",
    "COMPLETED_SERVING": "OrderRun Completed",
    "SERVING_ERROR": "Error in OrderRun",
    "STOPPED_SERVING": "OrderRun Stopped",
    "SERVING_RERAN": "OrderRun Resumed",
}
#: node statuses as DKUtils' OrderRunMonitor names them
_NODE_STATUS = {
    "queued": "DKNodeStatus_ready_for_production",
    "running": "DKNodeStatus_in_production",
    "succeeded": "DKNodeStatus_completed_production",
    "failed": "DKNodeStatus_production_error",
    "canceled": "DKNodeStatus_production_stopped",
}
_REFRESH_WITHIN_S = 180.0
#: keys the create answer may name the order under (``create_keys``); the first two are the default
_CREATE_KEYS = ("order_id", "serving_hid", "serving_chronos_id")
_DEFAULT_CREATE_KEYS = ("order_id", "serving_hid")

# -- strict mode ---------------------------------------------------------------------------------
# What a DataKitchen source shows (docs/PROVIDERS.md, "DataKitchen: provenance"): the request keys
# each route may be sent and the answer keys of each shape. Under ``strict`` the emulator refuses a
# request with any other key (400, "strict: no source for …") and leaves every other answer key out,
# so a client (or test) that depends on an assumption fails until it says so.

#: route → (query keys, body keys) a source sends
SOURCED_REQUESTS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # the seed (lines 41, 79-80); DKCommon's DKApiHelper.new / login
    "login": (frozenset(), frozenset({"username", "password"})),
    # DKApiHelper.refresh_token / valid_token
    "validatetoken": (frozenset(), frozenset()),
    # the seed (lines 58-61, 89-97); DKApiHelper.create_order; DKUtils DataKitchenClient.create_order
    "trigger": (frozenset(), frozenset({"parameters", "schedule", "graph-setting", "ingredient_owner_order_run"})),
    # DKUtils DataKitchenClient.get_order_runs (``count`` in a JSON body)
    "status": (frozenset(), frozenset({"count"})),
    # DKCloudCommand DKCloudAPI.list_order (query); DKUtils DataKitchenClient.get_orders (JSON body)
    "list": (
        frozenset({"start", "count", "scount", "r"}),
        frozenset({"recipe", "variation", "timePeriod", "search", "orderStatus", "orderRunStatus", "servingsCount"}),
    ),
    # DKUtils get_order_run_details; DKCloudCommand's orderrun-info command (cli/__main__.py)
    "details": (frozenset(), frozenset({
        "serving_hid", "serving_book_hid", "logs", "servingjson", "summary", "testresults", "timingresults",
        "status", "runstatus", "disp_order_id", "disp_orderrun_id",
    })),
    # DKCloudAPI.orderrun_stop
    "stop": (frozenset(), frozenset({"serving_hid", "kitchen_name"})),
    # DKCloudAPI.order_resume; DKUtils DataKitchenClient.resume_order_run
    "resume": (frozenset(), frozenset({"serving_hid", "kitchen_name", "skip-failed-nodes", "parameters"})),
    # DKApiHelper.order_pause / order_unpause
    "pause": (frozenset(), frozenset({"kitchen_name"})),
    "unpause": (frozenset(), frozenset({"kitchen_name"})),
    # DKUtils DataKitchenClient._get_kitchens_info, get_recipes, get_variations
    "kitchens": (frozenset(), frozenset()),
    "recipes": (frozenset(), frozenset()),
    "variations": (frozenset(), frozenset()),
}

#: answer shape → keys a source shows
SOURCED_FIELDS: dict[str, frozenset[str]] = {
    "validatetoken": frozenset({"token"}),  # DKApiHelper.refresh_token
    # order_id: DKCloudCommandRunner.create_order, DKUtils create_and_monitor_orders; serving_hid: the
    # create_order of DKCloudCommand 1.0 (legacy); variable_overrides: DKCloudCommandRunner.create_order
    "create": frozenset({"order_id", "serving_hid", "variable_overrides"}),
    "servings": frozenset({"servings"}),  # DKUtils get_order_runs
    # DKUtils get_orders' documented sample
    "order_status": frozenset({"customer", "kitchenname", "orders", "repo", "servings", "total-orders"}),
    "order_servings": frozenset({"servings", "total"}),  # the same sample, servings{<order>: …}
    # DKUtils' samples of order runs (get_orders, get_order_status, get_order_runs)
    "serving": frozenset({"hid", "order_id", "orderrun_status", "status", "timings", "variation_name"}),
    "timings": frozenset({"start-time", "end-time", "duration"}),
    # DKUtils get_orders' sample; DKCloudCommandRunner.list_order
    "order": frozenset({"hid", "input_settings", "order-status", "recipe", "schedule", "variation"}),
    "input_settings": frozenset({"parameters", "schedule", "graph-setting"}),
    "details": frozenset({"orders", "servings"}),  # DKCloudCommandRunner.orderrun_detail
    # DKUtils get_order_run_details' sample; summary, log, testresults, timingresults: DKCloudCommandRunner
    "detail": frozenset({
        "hid", "order_id", "recipe_id", "status", "variation_name", "recipe_name", "run_time_variables",
        "orderrun_status", "resumed_by", "scheduled_start_time", "variation", "state", "summary", "log",
        "testresults", "timingresults",
    }),
    "summary": frozenset({"name", "start-time", "total-recipe-time", "nodes"}),  # DKCloudCommandRunner
    "node": frozenset({"status", "start_time", "timing"}),  # DKUtils order_run_monitor.Node
    "log": frozenset({"lines"}),  # DKCloudCommandRunner._get_logs_from_order_run
    # DKCloudCommandRunner._get_logs_from_order_run; DKUtils OrderRunMonitor.parse_log_entry
    "log_line": frozenset({"datetime", "record_type", "thread_name", "message", "node"}),
    "resume": frozenset({"order_id"}),  # DKCloudAPI.order_resume; DKUtils resume_and_monitor_orders
    "stop": frozenset(),  # DKCloudAPI.orderrun_stop reads nothing but a JSON object
    "pause": frozenset(),  # DKApiHelper.order_pause / order_unpause read nothing but a JSON object
    "kitchens": frozenset({"kitchens"}),  # DKApiHelper.list_kitchen; DKUtils _get_kitchens_info
    "kitchen": frozenset({
        "name", "description", "parent-kitchen", "recipes", "kitchen-staff", "recipeoverrides", "restrict-recipes",
    }),
    "recipes": frozenset({"recipes"}),  # DKUtils get_recipes
    "variations": frozenset({"contents"}),  # DKUtils get_variations
}


def _error(message: str, status: int = 417) -> web.Response:
    return json_response({"message": {"error": message}}, status)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _iso(seconds: float) -> str:
    """A log entry's ``datetime``, as DKUtils' sample writes it (UTC, no zone)."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(slots=True)
class _Order:
    order_id: str
    kitchen: str
    recipe: str
    variation: str
    created_at: float
    parameters: dict[str, Any]
    schedule: Any = "now"
    paused: bool = False
    servings: list[str] = field(default_factory=list)  # EmuRun ids (hids), oldest first

    @property
    def job(self) -> str:
        return f"{self.kitchen}/{self.recipe}/{self.variation}"


class DataKitchenEmulator(EmulatorServer):
    """DataKitchen's routes and their handlers (``on_<what>``), strict mode, tokens and orders; ``_Documents``
    writes the answers."""

    provider: ClassVar[str] = "datakitchen"

    def __init__(
        self,
        state: EmulatorState | None = None,
        *,
        users: Mapping[str, str] | None = None,
        token_ttl_s: float = 4 * 3600,
        kitchens: Catalog | None = None,
        refreshed_token_header: bool = False,
        quoted_token: bool = False,
        create_keys: Iterable[str] = _DEFAULT_CREATE_KEYS,
        strict: bool = False,
    ) -> None:
        super().__init__(state)
        self.users = dict(users or {})  # username -> password; empty: any credentials
        self.token_ttl_s = token_ttl_s
        self.kitchens = _catalog(kitchens) if kitchens is not None else None
        self.refreshed_token_header = refreshed_token_header
        self.quoted_token = quoted_token
        self.create_keys = _create_keys(create_keys)
        #: serve only what a source shows (``SOURCED_REQUESTS`` / ``SOURCED_FIELDS``)
        self.strict = strict
        self.orders: dict[str, _Order] = {}
        self.documents = _Documents(self)
        self._secret = secrets.token_bytes(32)

    def configure(self, scenario: Mapping[str, Any]) -> None:
        scenario = dict(scenario)
        if "users" in scenario:
            self.users = dict(scenario.pop("users") or {})
        if "token_ttl_s" in scenario:
            self.token_ttl_s = float(scenario.pop("token_ttl_s"))
        if "kitchens" in scenario:
            raw = scenario.pop("kitchens")
            self.kitchens = _catalog(raw) if raw is not None else None
        if "refreshed_token_header" in scenario:
            self.refreshed_token_header = bool(scenario.pop("refreshed_token_header"))
        if "quoted_token" in scenario:
            self.quoted_token = bool(scenario.pop("quoted_token"))
        if "create_keys" in scenario:
            self.create_keys = _create_keys(scenario.pop("create_keys"))
        if "strict" in scenario:
            self.strict = bool(scenario.pop("strict"))
        super().configure(scenario)

    def routes(self) -> list[Route]:
        def route(method: str, path: str, name: str, handler: Handler, guarded: bool = True) -> Route:
            handler = self._guarded(handler) if guarded else handler
            return Route(method, path, name, self._sourced(name, method, path, handler))

        return [
            route("POST", "/v2/login", "login", self.on_login, guarded=False),
            route("GET", "/v2/validatetoken", "validatetoken", self.on_validatetoken, guarded=False),
            route("PUT", "/v2/order/create/{kitchen}/{recipe}/{variation}", "trigger", self.on_create),
            route("GET", "/v2/order/servings/{kitchen}/{order_id}", "status", self.on_servings),
            route("GET", "/v2/order/status/{kitchen}", "list", self.on_order_status),
            route("POST", "/v2/order/details/{kitchen}", "details", self.on_details),
            route("PUT", "/v2/serving/stop/{orderrun_id}", "stop", self.on_stop),
            route("PUT", "/v2/order/resume/{orderrun_id}", "resume", self.on_resume),
            route("PUT", "/v2/order/pause/{order_id}", "pause", self.on_pause),
            route("PUT", "/v2/order/unpause/{order_id}", "unpause", self.on_unpause),
            route("GET", "/v2/kitchen/list", "kitchens", self.on_kitchens),
            route("GET", "/v2/kitchen/recipenames/{kitchen}", "recipes", self.on_recipes),
            route("GET", "/v2/recipe/file/{kitchen}/{recipe}/variations.json", "variations", self.on_variations),
        ]

    # -- strict mode ------------------------------------------------------------------------

    def _sourced(self, name: str, method: str, path: str, handler: Handler) -> Handler:
        """Wrap a route: under strict mode, refuse a query parameter or body field no source sends."""
        query_keys, body_keys = SOURCED_REQUESTS[name]

        async def sourced(request: web.Request) -> web.StreamResponse:
            if self.strict:
                body = await read_body(request)
                asked = [("query parameter", k) for k in request.query if k not in query_keys]
                if isinstance(body, dict):
                    asked += [("body field", str(k)) for k in body if k not in body_keys]
                if asked:
                    what = ", ".join(f"the {kind} {key!r}" for kind, key in asked)
                    return _error(f"strict: no source for {what} of {method} {path}", 400)
            return await handler(request)

        sourced.__name__ = handler.__name__
        return sourced

    def keep(self, shape: str, answer: dict[str, Any]) -> dict[str, Any]:
        """An answer as served: under strict mode without the keys no source shows for its shape."""
        if not self.strict:
            return answer
        allowed = SOURCED_FIELDS[shape]
        return {k: v for k, v in answer.items() if k in allowed}

    def expired_token_response(self) -> web.StreamResponse:
        return _error("token expired", 401)

    # -- tokens -----------------------------------------------------------------------------

    def issue_token(self, username: str) -> str:
        """A signed HS256 JWT for ``username`` that expires ``token_ttl_s`` from now."""
        now = self.state.now()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {"sub": username, "username": username, "iat": int(now), "exp": int(now + self.token_ttl_s),
                   "jti": uuid.uuid4().hex}
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
        signature = hmac.new(self._secret, signing.encode(), hashlib.sha256).digest()
        return f"{signing}.{_b64(signature)}"

    def _claims(self, token: str) -> tuple[dict[str, Any] | None, str]:
        """(claims, "") for a valid token, else (None, why)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None, "invalid token"
        expected = hmac.new(self._secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            good = hmac.compare_digest(expected, _unb64(parts[2]))
            claims = json.loads(_unb64(parts[1]))
        except ValueError:
            return None, "invalid token"
        if not good or not isinstance(claims, dict):
            return None, "invalid token"
        if float(claims.get("exp", 0)) <= self.state.now():
            return None, "token expired"
        if self.users and claims.get("sub") not in self.users:
            return None, "invalid token"
        return claims, ""

    @staticmethod
    def _bearer(request: web.Request) -> str:
        value = request.headers.get("authorization", "")
        scheme, _, token = value.strip().partition(" ")
        return token.strip().strip('"') if scheme.lower() == "bearer" else ""

    def _guarded(self, handler: Handler) -> Handler:
        """Wrap a route: refuse requests without a valid token; offer a fresh one near expiry."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            token = self._bearer(request)
            if not token:
                return _error("missing authorization token", 401)
            claims, why = self._claims(token)
            if claims is None:
                return _error(why, 401)
            response = await handler(request)
            remaining = float(claims["exp"]) - self.state.now()
            if self.refreshed_token_header and remaining < _REFRESH_WITHIN_S:
                response.headers["refreshed_token"] = self.issue_token(str(claims["sub"]))
            return response

        guarded.__name__ = handler.__name__
        return guarded

    async def on_login(self, request: web.Request) -> web.StreamResponse:
        body = await read_body(request)
        body = body if isinstance(body, dict) else {}
        username = str(body.get("username") or "")
        password = str(body.get("password") or "")
        if not username or (self.users and self.users.get(username) != password):
            return _error("Invalid username or password", 401)
        token = self.issue_token(username)
        if self.quoted_token:
            return web.Response(text=json.dumps(token), content_type="application/json")
        return web.Response(text=token, content_type="text/plain")

    async def on_validatetoken(self, request: web.Request) -> web.StreamResponse:
        token = self._bearer(request)
        claims, why = self._claims(token) if token else (None, "missing authorization token")
        if claims is None:
            return _error(why, 401)
        return json_response(self.keep("validatetoken", {"token": self.issue_token(str(claims["sub"]))}))

    # -- catalog ----------------------------------------------------------------------------

    async def on_kitchens(self, request: web.Request) -> web.StreamResponse:
        catalog = self.documents.known_catalog()
        return json_response(self.keep("kitchens", {"kitchens": [
            self.keep("kitchen", {
                "name": name, "description": f"Kitchen {name}", "parent-kitchen": "", "recipes": sorted(recipes),
                "kitchen-staff": [], "recipeoverrides": {}, "restrict-recipes": False,
            })
            for name, recipes in sorted(catalog.items())
        ]}))

    async def on_recipes(self, request: web.Request) -> web.StreamResponse:
        kitchen = request.match_info["kitchen"]
        catalog = self.documents.known_catalog()
        if kitchen not in catalog:
            return _error(f"Kitchen {kitchen} does not exist", 404)
        return json_response(self.keep("recipes", {"recipes": sorted(catalog[kitchen])}))

    async def on_variations(self, request: web.Request) -> web.StreamResponse:
        kitchen, recipe = request.match_info["kitchen"], request.match_info["recipe"]
        variations = self.documents.known_catalog().get(kitchen, {}).get(recipe)
        if variations is None:
            return _error(f"Recipe {recipe} does not exist in kitchen {kitchen}", 404)
        contents = {"variation-list": {v: {"description": f"variation {v}", "graph-setting": "default"}
                                       for v in variations}}
        return json_response(self.keep("variations", {"filename": "variations.json", "recipe": recipe,
                                                      "contents": json.dumps(contents, indent=2)}))

    # -- orders and order runs ----------------------------------------------------------------

    def create_order(
        self,
        kitchen: str,
        recipe: str,
        variation: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        schedule: Any = "now",
        external: bool = False,
        outcome: Outcome | None = None,
    ) -> tuple[_Order, EmuRun]:
        """A new order with its first order run, as the platform plans it."""
        order = _Order(
            order_id=self.state.new_id("uuid"),
            kitchen=kitchen,
            recipe=recipe,
            variation=variation,
            created_at=self.state.now(),
            parameters=dict(parameters or {}),
            schedule=schedule,
        )
        self.orders[order.order_id] = order
        return order, self._new_serving(order, order.parameters, external=external, outcome=outcome)

    def _new_serving(
        self, order: _Order, parameters: Mapping[str, Any], *, external: bool = False, outcome: Outcome | None = None
    ) -> EmuRun:
        run = self.state.start_run(
            order.job, parameters, run_id=self.state.new_id("uuid"), external=external, outcome=outcome
        )
        run.extra["order_id"] = order.order_id
        order.servings.append(run.run_id)
        return run

    def external_run(self, job: str, parameters: Mapping[str, Any], outcome: Outcome | None = None) -> str:
        """An order created in the console or by a schedule; returns its order run's hid."""
        parts = job.split("/", 2)
        if len(parts) != 3:
            raise ValueError(f"a DataKitchen job is '<kitchen>/<recipe>/<variation>', not {job!r}")
        if outcome is None and not self.state.knows(job):
            raise ValueError(f"unknown job {job!r}: script it or pass an outcome")
        kitchen, recipe, variation = parts
        _, run = self.create_order(kitchen, recipe, variation, parameters, external=True, outcome=outcome)
        return run.run_id

    async def on_create(self, request: web.Request) -> web.StreamResponse:
        kitchen, recipe, variation = (request.match_info[k] for k in ("kitchen", "recipe", "variation"))
        body = await read_body(request)
        if not isinstance(body, dict):
            return _error("The request body must be a JSON object", 400)
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            return _error("parameters must be a JSON object", 400)
        refusal = self.documents.refusal(kitchen, recipe, variation)
        if refusal:
            return _error(refusal, 417)
        order, _ = self.create_order(kitchen, recipe, variation, parameters, schedule=body.get("schedule", "now"))
        answer: dict[str, Any] = {"status": "success", "variable_overrides": parameters}
        for key in self.create_keys:
            answer[key] = order.order_id
        return json_response(self.keep("create", answer))

    async def on_servings(self, request: web.Request) -> web.StreamResponse:
        kitchen, order_id = request.match_info["kitchen"], request.match_info["order_id"]
        order = self.orders.get(order_id)
        if order is None or order.kitchen != kitchen:
            return _error(f"Order {order_id} not found in kitchen {kitchen}", 404)
        body = await read_body(request)
        count = _int((body if isinstance(body, dict) else {}).get("count", request.query.get("count")), 10)
        runs = self.documents.servings_of(order)
        return json_response(self.keep("servings", {"servings": [self.documents.serving(r) for r in runs[:count]],
                                                    "total": len(runs)}))

    async def on_order_status(self, request: web.Request) -> web.StreamResponse:
        kitchen = request.match_info["kitchen"]
        if self.kitchens is not None and kitchen not in self.kitchens:
            return _error(f"Kitchen {kitchen} does not exist", 404)
        body = await read_body(request)
        ask = {**request.query, **(body if isinstance(body, dict) else {})}
        start = _int(ask.get("start"), 0)
        count = _int(ask.get("count"), 20)
        scount = _int(ask.get("scount", ask.get("servingsCount")), 5)
        recipe = ask.get("r", ask.get("recipe"))  # r: DKCloudCommand's query; recipe: DKUtils' body
        orders = [o for o in self.orders.values() if o.kitchen == kitchen
                  and recipe in (None, o.recipe) and ask.get("variation") in (None, o.variation)]
        orders.sort(key=lambda o: o.created_at, reverse=True)
        page = orders[start:start + count]
        servings = {}
        for order in page:
            runs = self.documents.servings_of(order)
            servings[order.order_id] = self.keep("order_servings", {
                "servings": [self.documents.serving(r) for r in runs[:scount]], "total": len(runs)})
        return json_response(self.keep("order_status", {
            "kitchenname": kitchen,
            "orders": [self.documents.order(o) for o in page],
            "servings": servings,
            "total-orders": len(orders),
        }))

    async def on_details(self, request: web.Request) -> web.StreamResponse:
        kitchen = request.match_info["kitchen"]
        body = await read_body(request)
        ask = body if isinstance(body, dict) else {}
        runs = self.documents.details_runs(kitchen, ask)
        if runs is None:
            return _error("Order run not found in kitchen " + kitchen, 404)
        orders = {str(r.extra["order_id"]): self.orders[str(r.extra["order_id"])] for r in runs}
        return json_response(self.keep("details", {
            "status": "success",
            "kitchenname": kitchen,
            "orders": [self.documents.order(o) for o in orders.values()],
            "servings": [self.documents.detail(r, ask) for r in runs],
        }))

    async def on_stop(self, request: web.Request) -> web.StreamResponse:
        body = await read_body(request)
        ask = body if isinstance(body, dict) else {}
        hid = request.match_info["orderrun_id"]
        run = self.documents.run(hid)
        if run is None:
            return _error(f"Order run {hid} not found", 404)
        kitchen = ask.get("kitchen_name")
        if kitchen and self.orders[str(run.extra["order_id"])].kitchen != kitchen:
            return _error(f"Order run {hid} not found in kitchen {kitchen}", 404)
        if not self.state.cancel(run):
            return _error(f"Order run {hid} cannot be stopped: it is {self.documents.status(run)}", 417)
        return json_response(self.keep("stop", {"status": "success", "serving_hid": hid,
                                                "serving_status": self.documents.status(run)}))

    async def on_resume(self, request: web.Request) -> web.StreamResponse:
        body = await read_body(request)
        ask = body if isinstance(body, dict) else {}
        # DKCloudCommand's order_resume names the run in the body and sends "None" in the path
        hid = str(ask.get("serving_hid") or request.match_info["orderrun_id"])
        run = self.documents.run(hid)
        if run is None:
            return _error(f"Order run {hid} not found", 404)
        order = self.orders[str(run.extra["order_id"])]
        if ask.get("kitchen_name") and ask["kitchen_name"] != order.kitchen:
            return _error(f"Order run {hid} not found in kitchen {ask['kitchen_name']}", 404)
        status = self.documents.status(run)
        if status != "SERVING_ERROR":
            return _error(f"Only failed order runs can be resumed; order run {hid} is {status}", 417)
        raw = ask.get("parameters")
        overrides: dict[str, Any] = dict(raw) if isinstance(raw, dict) else {}
        new = self._new_serving(order, {**run.parameters, **overrides})
        new.extra["resumed_from"] = hid
        run.extra["reran"] = True
        run.extra["resumed_by"] = new.run_id
        return json_response(self.keep("resume", {"status": "success", "order_id": order.order_id,
                                                  "variable_overrides": overrides}))

    async def _set_paused(self, request: web.Request, paused: bool) -> web.StreamResponse:
        body = await read_body(request)
        ask = body if isinstance(body, dict) else {}
        order_id = request.match_info["order_id"]
        order = self.orders.get(order_id)
        kitchen = ask.get("kitchen_name")
        if order is None or (kitchen and order.kitchen != kitchen):
            return _error(f"Order {order_id} not found", 404)
        status = self.documents.order_status(order)
        if status != ("ACTIVE_ORDER" if paused else "PAUSED_ORDER"):
            verb = "paused" if paused else "unpaused"
            return _error(f"Order {order_id} is {status}: it cannot be {verb}", 417)
        order.paused = paused
        return json_response(self.keep("pause", {"status": "success", "order_id": order_id,
                                                 "order-status": self.documents.order_status(order)}))

    async def on_pause(self, request: web.Request) -> web.StreamResponse:
        return await self._set_paused(request, True)

    async def on_unpause(self, request: web.Request) -> web.StreamResponse:
        return await self._set_paused(request, False)


class _Documents:
    """What DataKitchen answers about its catalog, orders and order runs, and how a request's names find them."""

    def __init__(self, emu: DataKitchenEmulator) -> None:
        self.emu = emu

    def known_catalog(self) -> dict[str, dict[str, list[str]]]:
        """The configured kitchens, else what the state's scripted jobs and existing orders name."""
        if self.emu.kitchens is not None:
            return self.emu.kitchens
        keys = list(getattr(self.emu.state, "_scripts", {})) + [o.job for o in self.emu.orders.values()]
        found: dict[str, dict[str, list[str]]] = {}
        for key in keys:
            parts = key.split("/", 2)
            if len(parts) == 3:
                variations = found.setdefault(parts[0], {}).setdefault(parts[1], [])
                if parts[2] not in variations:
                    variations.append(parts[2])
        return found

    def refusal(self, kitchen: str, recipe: str, variation: str) -> str:
        """Why an order for kitchen / recipe / variation cannot be created ("" when it can)."""
        if self.emu.kitchens is not None:
            if kitchen not in self.emu.kitchens:
                return f"Kitchen {kitchen} does not exist"
            if recipe not in self.emu.kitchens[kitchen]:
                return f"Recipe {recipe} does not exist in kitchen {kitchen}"
            if variation not in self.emu.kitchens[kitchen][recipe]:
                return f"Variation {variation} does not exist in recipe {recipe}"
        if not self.emu.state.knows(f"{kitchen}/{recipe}/{variation}"):
            return f"Unable to create order: recipe {recipe} with variation {variation} not found in kitchen {kitchen}"
        return ""

    def status(self, run: EmuRun) -> str:
        if run.extra.get("reran"):
            return "SERVING_RERAN"
        return _SERVING_STATUS[run.phase(self.emu.state.now())]

    def _timings(self, run: EmuRun) -> dict[str, int]:
        now = self.emu.state.now()
        phase = run.phase(now)
        if phase == "queued":  # planned: the time it was planned for
            return {"start-time": _ms(run.created_at)}
        start = min(run.started_at(), run.canceled_at or run.started_at())
        timings = {"start-time": _ms(start)}
        end = run.ended_at(now)
        if end is not None:
            timings["end-time"] = _ms(end)
            timings["duration"] = _ms(max(end - start, 0.0))
        return timings

    def _serving_fields(self, run: EmuRun) -> dict[str, Any]:
        """Everything the emulator knows of an order run (each answer keeps what its shape allows)."""
        order = self.emu.orders[str(run.extra["order_id"])]
        status = self.status(run)
        return {
            "hid": run.run_id,
            "order_id": order.order_id,
            "status": status,
            "orderrun_status": _ORDERRUN_WORDS[status],
            "recipe_name": order.recipe,
            "variation_name": order.variation,
            "timings": self.emu.keep("timings", self._timings(run)),
        }

    def serving(self, run: EmuRun) -> dict[str, Any]:
        """An order run as order/servings and order/status list it."""
        return self.emu.keep("serving", self._serving_fields(run))

    def order_status(self, order: _Order) -> str:
        """``order-status`` with the values of DKUtils' constants."""
        if order.paused:
            return "PAUSED_ORDER"
        now = self.emu.state.now()
        newest = self.servings_of(order)[:1]
        live = any(self.emu.state.runs[h].phase(now) in ("queued", "running") for h in order.servings)
        if live or order.schedule != "now":
            return "ACTIVE_ORDER"
        if newest and newest[0].phase(now) == "failed" and not newest[0].extra.get("reran"):
            return "ORDER_ERROR"
        return "COMPLETED_ORDER"

    def order(self, order: _Order) -> dict[str, Any]:
        return self.emu.keep("order", {
            "hid": order.order_id,
            "order_id": order.order_id,
            "recipe": order.recipe,
            "variation": order.variation,
            "order-status": self.order_status(order),
            "schedule": order.schedule,
            "input_settings": self.emu.keep("input_settings", {"parameters": order.parameters,
                                                               "schedule": order.schedule}),
            "created_time": _ms(order.created_at),
        })

    def servings_of(self, order: _Order) -> list[EmuRun]:
        """An order's runs, newest first."""
        runs = [self.emu.state.runs[h] for h in order.servings]
        return sorted(runs, key=lambda r: (r.created_at, order.servings.index(r.run_id)), reverse=True)

    def run(self, hid: str) -> EmuRun | None:
        run = self.emu.state.runs.get(hid)
        return run if run is not None and run.extra.get("order_id") in self.emu.orders else None

    def details_runs(self, kitchen: str, ask: Mapping[str, Any]) -> list[EmuRun] | None:
        """The runs a details request names, the requested one first; None when unknown."""
        hid = ask.get("serving_hid")
        if hid:
            run = self.run(str(hid))
            if run is None or self.emu.orders[str(run.extra["order_id"])].kitchen != kitchen:
                return None
            return [run]
        order_id = ask.get("serving_book_hid") or ask.get("order_id")
        if order_id:
            order = self.emu.orders.get(str(order_id))
            if order is None or order.kitchen != kitchen:
                return None
            return self.servings_of(order)
        runs = (self.emu.state.runs[h] for o in self.emu.orders.values() if o.kitchen == kitchen for h in o.servings)
        newest = sorted(runs, key=lambda r: r.created_at, reverse=True)
        return newest[:1] or None

    def detail(self, run: EmuRun, ask: Mapping[str, Any]) -> dict[str, Any]:
        order = self.emu.orders[str(run.extra["order_id"])]
        now = self.emu.state.now()
        detail = self._serving_fields(run)
        detail.update({
            "recipe_id": order.order_id[:8] + run.run_id[8:],
            "run_time_variables": {**run.parameters, "CurrentKitchen": order.kitchen,
                                   "CurrentOrderId": order.order_id, "CurrentOrderRunId": run.run_id,
                                   "CurrentVariation": order.variation, "RecipeName": order.recipe},
            "resumed_by": run.extra.get("resumed_by"),
            "scheduled_start_time": _ms(run.created_at),
        })
        if ask.get("summary"):
            timings = self._timings(run)
            detail["summary"] = self.emu.keep("summary", {
                "name": order.recipe,
                "status": _NODE_STATUS[run.phase(now)],
                "start-time": timings.get("start-time"),
                "end-time": timings.get("end-time"),
                "total-recipe-time": timings.get("duration"),
                "nodes": {
                    task: self.emu.keep("node", {"status": _NODE_STATUS[run.task_phase(task, now)],
                                                 "start_time": timings.get("start-time"),
                                                 "timing": timings.get("duration")})
                    for task in run.outcome.tasks
                },
            })
        if ask.get("logs"):
            detail["log"] = self.emu.keep("log", {"lines": self._log(run)})
        return self.emu.keep("detail", detail)

    def _log(self, run: EmuRun) -> list[dict[str, Any]]:
        """Log entries: each node's start and end, and the outcome's message on the nodes that failed."""
        now = self.emu.state.now()

        def line(level: str, message: str, node: str | None = None) -> dict[str, Any]:
            entry = {"datetime": _iso(now), "record_type": level, "thread_name": "NodeExecutorThread:0",
                     "message": message, "node": node}
            return self.emu.keep("log_line", entry)

        lines = [line("INFO", f"Order run {run.run_id} planned")]
        if run.phase(now) == "queued":
            return lines
        for task in run.outcome.tasks:
            lines.append(line("INFO", f"node {task}: started", task))
            task_phase = run.task_phase(task, now)
            if task_phase == "failed":
                lines.append(line("ERROR", f"node {task}: {run.outcome.message or 'node failed'}", task))
            elif task_phase == "succeeded":
                lines.append(line("INFO", f"node {task}: completed", task))
            elif task_phase == "canceled":
                lines.append(line("WARNING", f"node {task}: stopped", task))
        return lines


def _catalog(raw: Catalog) -> dict[str, dict[str, list[str]]]:
    return {str(k): {str(r): [str(v) for v in vs] for r, vs in recipes.items()} for k, recipes in raw.items()}


def _create_keys(raw: Iterable[str]) -> tuple[str, ...]:
    keys = tuple(raw)
    if not keys or set(keys) - set(_CREATE_KEYS):
        raise ValueError(f"create_keys must name some of {list(_CREATE_KEYS)}, not {list(keys)}")
    return keys


def _int(value: Any, default: int) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return default
