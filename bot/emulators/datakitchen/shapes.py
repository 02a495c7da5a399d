"""What DataKitchen's answers are made of: its status words, what its sources show (strict mode), the small
encoders (epoch milliseconds, ISO times, base64url), and the emulator's record of an order."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from bot.emulators._core import Json, JsonValue
from bot.emulators._server import json_response

__all__ = [
    "CREATE_KEYS",
    "DEFAULT_CREATE_KEYS",
    "NODE_STATUS",
    "ORDERRUN_WORDS",
    "REFRESH_WITHIN_S",
    "SERVING_STATUS",
    "SOURCED_FIELDS",
    "SOURCED_REQUESTS",
    "Catalog",
    "Handler",
    "Order",
    "b64",
    "catalog_of",
    "create_keys_of",
    "error",
    "iso",
    "ms",
    "unb64",
    "whole",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Catalog = Mapping[str, Mapping[str, Iterable[str]]]  # kitchen -> recipe -> variations

SERVING_STATUS = {
    "queued": "PLANNED_SERVING",
    "running": "ACTIVE_SERVING",
    "succeeded": "COMPLETED_SERVING",
    "failed": "SERVING_ERROR",
    "canceled": "STOPPED_SERVING",
}
ORDERRUN_WORDS = {
    "PLANNED_SERVING": "OrderRun Planned",
    "ACTIVE_SERVING": "OrderRun Active",
    "COMPLETED_SERVING": "OrderRun Completed",
    "SERVING_ERROR": "Error in OrderRun",
    "STOPPED_SERVING": "OrderRun Stopped",
    "SERVING_RERAN": "OrderRun Resumed",
}
#: node statuses as DKUtils' OrderRunMonitor names them
NODE_STATUS = {
    "queued": "DKNodeStatus_ready_for_production",
    "running": "DKNodeStatus_in_production",
    "succeeded": "DKNodeStatus_completed_production",
    "failed": "DKNodeStatus_production_error",
    "canceled": "DKNodeStatus_production_stopped",
}
REFRESH_WITHIN_S = 180.0
#: keys the create answer may name the order under (``create_keys``); the first two are the default
CREATE_KEYS = ("order_id", "serving_hid", "serving_chronos_id")
DEFAULT_CREATE_KEYS = ("order_id", "serving_hid")

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
    # DKCloudAPI.get_order_run_full_log (a GET with no body)
    "export_log": (frozenset(), frozenset()),
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
    "export_log": frozenset({"log"}),  # DKCloudAPI.get_order_run_full_log returns rdict["log"]
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


def error(message: str, status: int = 417) -> web.Response:
    return json_response({"message": {"error": message}}, status)


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def iso(seconds: float) -> str:
    """A log entry's ``datetime``, as DKUtils' sample writes it (UTC, no zone)."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(slots=True)
class Order:
    order_id: str
    kitchen: str
    recipe: str
    variation: str
    created_at: float
    parameters: Json
    schedule: JsonValue = "now"
    paused: bool = False
    servings: list[str] = field(default_factory=list)  # EmuRun ids (hids), oldest first

    @property
    def job(self) -> str:
        return f"{self.kitchen}/{self.recipe}/{self.variation}"



def catalog_of(raw: Catalog) -> dict[str, dict[str, list[str]]]:
    return {str(k): {str(r): [str(v) for v in vs] for r, vs in recipes.items()} for k, recipes in raw.items()}


def create_keys_of(raw: Iterable[str]) -> tuple[str, ...]:
    keys = tuple(raw)
    if not keys or set(keys) - set(CREATE_KEYS):
        raise ValueError(f"create_keys must name some of {list(CREATE_KEYS)}, not {list(keys)}")
    return keys


def whole(value: JsonValue, default: int) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return default
