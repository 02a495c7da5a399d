"""Reading DataKitchen's answers: status words, error words, orders and order runs (pure functions)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from bot.models import Json, JsonValue, RunState
from bot.providers.datakitchen.config import Job

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

_MESSAGE_LIMIT = 1500


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



def _has_error(body: Mapping[str, JsonValue]) -> bool:
    return "error" in body and body["error"] not in (None, False, "", {}, [])


def _words(value: JsonValue) -> str:
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


def _overrides(parameters: Mapping[str, str], types: Mapping[str, str]) -> Json:
    """Run parameters as DataKitchen overrides: a parameter typed ``int`` or ``bool`` in the catalog is
    sent as a JSON number or boolean (recipe variables are JSON values: DKUtils' documented orders carry
    lists in ``input_settings.parameters``); everything else as text, as the seed's example does."""
    sent: Json = {}
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


def _order_id_of(body: JsonValue, keys: Sequence[str] = ("order_id", "serving_hid", "hid")) -> str:
    """An order's id under the first of ``keys`` that holds one."""
    if not isinstance(body, dict):
        return ""
    for key in keys:
        if isinstance(body.get(key), str) and body[key].strip():
            return str(body[key]).strip()
    return ""


def _hid_of(serving: Mapping[str, JsonValue]) -> str:
    for key in ("hid", "serving_hid", "orderrun_id"):
        if isinstance(serving.get(key), str) and serving[key].strip():
            return str(serving[key]).strip()
    return ""


def _servings_by_order(raw: JsonValue) -> dict[str, list[JsonValue]]:
    """``servings`` of order/status: ``{<order_id>: {servings: [...]}}``, or a flat list with ``order_id``."""
    found: dict[str, list[JsonValue]] = {}
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


def _name(entry: Mapping[str, JsonValue], *keys: str) -> str | None:
    for key in keys:
        if isinstance(entry.get(key), str):
            return str(entry[key])
    return None


def _belongs(order: Mapping[str, JsonValue], servings: list[JsonValue], job: Job) -> bool:
    """Whether an order is one of this recipe / variation (from the order, else from its runs)."""
    recipe = _name(order, "recipe", "recipe_name")
    variation = _name(order, "variation", "variation_name")
    for serving in servings:
        recipe = recipe or _name(serving, "recipe_name", "recipe")
        variation = variation or _name(serving, "variation_name", "variation")
    return recipe == job.recipe and variation == job.variation


def _order_state(order: Mapping[str, JsonValue]) -> str:
    """An order's ``order-status`` (hyphenated, as DKCloudCommand's list_order and DKUtils read it)."""
    value = order.get("order-status")
    return value.strip().upper() if isinstance(value, str) else ""


def _from_ms(value: JsonValue) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return datetime.fromtimestamp(value / 1000, UTC)


def _ms_delta(value: JsonValue) -> timedelta | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return timedelta(milliseconds=value)

