"""The DataKitchen emulator's server: its routes and their handlers (``on_<what>``) by API family: tokens
(login, validatetoken, the bearer check), the catalog DKUtils reads, orders and order runs; ``Documents`` writes
the answers."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from typing import ClassVar

from aiohttp import web

from bot.emulators._core import EmulatorState, EmuRun, Json, JsonValue, Outcome
from bot.emulators._server import EmulatorServer, Route, json_response, read_body
from bot.emulators.datakitchen.documents import Documents
from bot.emulators.datakitchen.shapes import (
    DEFAULT_CREATE_KEYS,
    REFRESH_WITHIN_S,
    SOURCED_FIELDS,
    SOURCED_REQUESTS,
    Catalog,
    Handler,
    Order,
    b64,
    catalog_of,
    create_keys_of,
    error,
    unb64,
    whole,
)

__all__ = ["DataKitchenEmulator"]

class DataKitchenEmulator(EmulatorServer):
    """DataKitchen's routes and their handlers (``on_<what>``), strict mode, tokens and orders; ``Documents``
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
        create_keys: Iterable[str] = DEFAULT_CREATE_KEYS,
        strict: bool = False,
    ) -> None:
        super().__init__(state)
        self.users = dict(users or {})  # username -> password; empty: any credentials
        self.token_ttl_s = token_ttl_s
        self.kitchens = catalog_of(kitchens) if kitchens is not None else None
        self.refreshed_token_header = refreshed_token_header
        self.quoted_token = quoted_token
        self.create_keys = create_keys_of(create_keys)
        #: serve only what a source shows (``SOURCED_REQUESTS`` / ``SOURCED_FIELDS``)
        self.strict = strict
        self.orders: dict[str, Order] = {}
        self.documents = Documents(self)
        self._secret = secrets.token_bytes(32)

    def configure(self, scenario: Mapping[str, JsonValue]) -> None:
        scenario = dict(scenario)
        if "users" in scenario:
            self.users = dict(scenario.pop("users") or {})
        if "token_ttl_s" in scenario:
            self.token_ttl_s = float(scenario.pop("token_ttl_s"))
        if "kitchens" in scenario:
            raw = scenario.pop("kitchens")
            self.kitchens = catalog_of(raw) if raw is not None else None
        if "refreshed_token_header" in scenario:
            self.refreshed_token_header = bool(scenario.pop("refreshed_token_header"))
        if "quoted_token" in scenario:
            self.quoted_token = bool(scenario.pop("quoted_token"))
        if "create_keys" in scenario:
            self.create_keys = create_keys_of(scenario.pop("create_keys"))
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
            route("GET", "/v2/order/export/logs/{kitchen}/{orderrun_id}", "export_log", self.on_export_log),
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
                    return error(f"strict: no source for {what} of {method} {path}", 400)
            return await handler(request)

        sourced.__name__ = handler.__name__
        return sourced

    def keep(self, shape: str, answer: Json) -> Json:
        """An answer as served: under strict mode without the keys no source shows for its shape."""
        if not self.strict:
            return answer
        allowed = SOURCED_FIELDS[shape]
        return {k: v for k, v in answer.items() if k in allowed}

    def expired_token_response(self) -> web.StreamResponse:
        return error("token expired", 401)

    # -- tokens -----------------------------------------------------------------------------

    def issue_token(self, username: str) -> str:
        """A signed HS256 JWT for ``username`` that expires ``token_ttl_s`` from now."""
        now = self.state.now()
        header = {"alg": "HS256", "typ": "JWT"}
        payload = {"sub": username, "username": username, "iat": int(now), "exp": int(now + self.token_ttl_s),
                   "jti": uuid.uuid4().hex}
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
        signature = hmac.new(self._secret, signing.encode(), hashlib.sha256).digest()
        return f"{signing}.{b64(signature)}"

    def _claims(self, token: str) -> tuple[Json | None, str]:
        """(claims, "") for a valid token, else (None, why)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None, "invalid token"
        expected = hmac.new(self._secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            good = hmac.compare_digest(expected, unb64(parts[2]))
            claims = json.loads(unb64(parts[1]))
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
                return error("missing authorization token", 401)
            claims, why = self._claims(token)
            if claims is None:
                return error(why, 401)
            response = await handler(request)
            remaining = float(claims["exp"]) - self.state.now()
            if self.refreshed_token_header and remaining < REFRESH_WITHIN_S:
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
            return error("Invalid username or password", 401)
        token = self.issue_token(username)
        if self.quoted_token:
            return web.Response(text=json.dumps(token), content_type="application/json")
        return web.Response(text=token, content_type="text/plain")

    async def on_validatetoken(self, request: web.Request) -> web.StreamResponse:
        token = self._bearer(request)
        claims, why = self._claims(token) if token else (None, "missing authorization token")
        if claims is None:
            return error(why, 401)
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
            return error(f"Kitchen {kitchen} does not exist", 404)
        return json_response(self.keep("recipes", {"recipes": sorted(catalog[kitchen])}))

    async def on_variations(self, request: web.Request) -> web.StreamResponse:
        kitchen, recipe = request.match_info["kitchen"], request.match_info["recipe"]
        variations = self.documents.known_catalog().get(kitchen, {}).get(recipe)
        if variations is None:
            return error(f"Recipe {recipe} does not exist in kitchen {kitchen}", 404)
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
        parameters: Mapping[str, JsonValue] | None = None,
        *,
        schedule: JsonValue = "now",
        external: bool = False,
        outcome: Outcome | None = None,
    ) -> tuple[Order, EmuRun]:
        """A new order with its first order run, as the platform plans it."""
        order = Order(
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
        self,
        order: Order,
        parameters: Mapping[str, JsonValue],
        *,
        external: bool = False,
        outcome: Outcome | None = None,
    ) -> EmuRun:
        run = self.state.start_run(
            order.job, parameters, run_id=self.state.new_id("uuid"), external=external, outcome=outcome
        )
        run.extra["order_id"] = order.order_id
        order.servings.append(run.run_id)
        return run

    def external_run(self, job: str, parameters: Mapping[str, JsonValue], outcome: Outcome | None = None) -> str:
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
            return error("The request body must be a JSON object", 400)
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            return error("parameters must be a JSON object", 400)
        refusal = self.documents.refusal(kitchen, recipe, variation)
        if refusal:
            return error(refusal, 417)
        order, _ = self.create_order(kitchen, recipe, variation, parameters, schedule=body.get("schedule", "now"))
        answer: Json = {"status": "success", "variable_overrides": parameters}
        for key in self.create_keys:
            answer[key] = order.order_id
        return json_response(self.keep("create", answer))

    async def on_servings(self, request: web.Request) -> web.StreamResponse:
        kitchen, order_id = request.match_info["kitchen"], request.match_info["order_id"]
        order = self.orders.get(order_id)
        if order is None or order.kitchen != kitchen:
            return error(f"Order {order_id} not found in kitchen {kitchen}", 404)
        body = await read_body(request)
        count = whole((body if isinstance(body, dict) else {}).get("count", request.query.get("count")), 10)
        runs = self.documents.servings_of(order)
        return json_response(self.keep("servings", {"servings": [self.documents.serving(r) for r in runs[:count]],
                                                    "total": len(runs)}))

    async def on_order_status(self, request: web.Request) -> web.StreamResponse:
        kitchen = request.match_info["kitchen"]
        if self.kitchens is not None and kitchen not in self.kitchens:
            return error(f"Kitchen {kitchen} does not exist", 404)
        body = await read_body(request)
        ask = {**request.query, **(body if isinstance(body, dict) else {})}
        start = whole(ask.get("start"), 0)
        count = whole(ask.get("count"), 20)
        scount = whole(ask.get("scount", ask.get("servingsCount")), 5)
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
            return error("Order run not found in kitchen " + kitchen, 404)
        orders = {str(r.extra["order_id"]): self.orders[str(r.extra["order_id"])] for r in runs}
        return json_response(self.keep("details", {
            "status": "success",
            "kitchenname": kitchen,
            "orders": [self.documents.order(o) for o in orders.values()],
            "servings": [self.documents.detail(r, ask) for r in runs],
        }))

    async def on_export_log(self, request: web.Request) -> web.StreamResponse:
        kitchen, hid = request.match_info["kitchen"], request.match_info["orderrun_id"]
        run = self.documents.run(hid)
        if run is None or self.orders[str(run.extra["order_id"])].kitchen != kitchen:
            return error(f"Order run {hid} not found in kitchen {kitchen}", 404)
        return json_response(self.keep("export_log", {"log": self.documents.full_log(run)}))

    async def on_stop(self, request: web.Request) -> web.StreamResponse:
        body = await read_body(request)
        ask = body if isinstance(body, dict) else {}
        hid = request.match_info["orderrun_id"]
        run = self.documents.run(hid)
        if run is None:
            return error(f"Order run {hid} not found", 404)
        kitchen = ask.get("kitchen_name")
        if kitchen and self.orders[str(run.extra["order_id"])].kitchen != kitchen:
            return error(f"Order run {hid} not found in kitchen {kitchen}", 404)
        if not self.state.cancel(run):
            return error(f"Order run {hid} cannot be stopped: it is {self.documents.status(run)}", 417)
        return json_response(self.keep("stop", {"status": "success", "serving_hid": hid,
                                                "serving_status": self.documents.status(run)}))

    async def on_resume(self, request: web.Request) -> web.StreamResponse:
        body = await read_body(request)
        ask = body if isinstance(body, dict) else {}
        # DKCloudCommand's order_resume names the run in the body and sends "None" in the path
        hid = str(ask.get("serving_hid") or request.match_info["orderrun_id"])
        run = self.documents.run(hid)
        if run is None:
            return error(f"Order run {hid} not found", 404)
        order = self.orders[str(run.extra["order_id"])]
        if ask.get("kitchen_name") and ask["kitchen_name"] != order.kitchen:
            return error(f"Order run {hid} not found in kitchen {ask['kitchen_name']}", 404)
        status = self.documents.status(run)
        if status != "SERVING_ERROR":
            return error(f"Only failed order runs can be resumed; order run {hid} is {status}", 417)
        raw = ask.get("parameters")
        overrides: Json = dict(raw) if isinstance(raw, dict) else {}
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
            return error(f"Order {order_id} not found", 404)
        status = self.documents.order_status(order)
        if status != ("ACTIVE_ORDER" if paused else "PAUSED_ORDER"):
            verb = "paused" if paused else "unpaused"
            return error(f"Order {order_id} is {status}: it cannot be {verb}", 417)
        order.paused = paused
        return json_response(self.keep("pause", {"status": "success", "order_id": order_id,
                                                 "order-status": self.documents.order_status(order)}))

    async def on_pause(self, request: web.Request) -> web.StreamResponse:
        return await self._set_paused(request, True)

    async def on_unpause(self, request: web.Request) -> web.StreamResponse:
        return await self._set_paused(request, False)

