"""DataKitchen's batched polls: the runs of a whole kitchen from one order status list (and its pages).

``GET v2/order/status/{kitchen}`` without a recipe filter gives the kitchen's orders, newest first, each with its
newest order run (``scount=1``); pages of ``ORDERS_PAGE`` orders (``start``/``count``) are read until every asked
order has been seen or the kitchen has no more. An order run the page does not show (an older run of a resumed
order), an order beyond the pages and a finished run (its details take a call of their own, as ``get_status``
makes) are left out: the tracker asks those one by one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Protocol
from urllib.parse import quote

from bot.errors import ProviderResponseError
from bot.models import Json, JsonValue, RunState, RunStatus
from bot.providers._http import Call, HttpCaller
from bot.providers.datakitchen.answers import _hid_of, _order_id_of, _servings_by_order
from bot.providers.datakitchen.config import Job


class Client(Protocol):
    """What of the DataKitchen client a batch uses (the client imports this module, not the other way round)."""

    caller: HttpCaller

    async def _body(self, call: Call) -> JsonValue: ...

    def _serving_status(self, run_id: str, order_id: str, serving: Mapping[str, JsonValue]) -> RunStatus: ...

__all__ = ["kitchen_statuses", "order_pages"]

#: orders per page, as ``list_runs`` asks them (no source gives a maximum of ``count``)
ORDERS_PAGE = 50
#: a batched poll pages through a kitchen's orders, newest first, until it has seen every order it asks about
MAX_PAGES = 100


async def kitchen_statuses(client: Client, runs: Sequence[tuple[Job, str]]) -> dict[str, RunStatus]:
    """The statuses of ``runs`` (all of one kitchen) that the kitchen's order status list settles."""
    wanted: dict[str, list[str]] = {}
    for _job, run_id in runs:
        order_id, _, hid = run_id.strip().partition("/")
        if order_id and "/" not in hid:  # anything else is not a run id: its own poll says so
            wanted.setdefault(order_id, []).append(run_id)
    if not runs or not wanted:
        return {}
    kitchen = runs[0][0].kitchen
    found: dict[str, RunStatus] = {}
    unseen = set(wanted)
    pages = order_pages(client, kitchen, f"check the order runs of kitchen {kitchen}", {"scount": 1}, MAX_PAGES)
    async for orders, by_order in pages:
        for order in orders:
            order_id = _order_id_of(order, ("hid",))
            unseen.discard(order_id)
            for run_id in wanted.get(order_id, ()):
                status = _listed_status(client, run_id, order_id, by_order.get(order_id))
                if status is not None:
                    found[run_id] = status
        if not unseen:
            break
    return found


async def order_pages(
    client: Client, kitchen: str, what: str, asked: Mapping[str, JsonValue], max_pages: int
) -> AsyncIterator[tuple[list[Json], dict[str, list[JsonValue]]]]:
    """The pages of ``GET v2/order/status/{kitchen}`` (``asked``: the query besides ``start``/``count``): each
    page's orders and their order runs by order id, until a short page or ``max_pages``. ``list_runs`` and the
    batched polls both read them so."""
    for page in range(max_pages):
        params = {"start": page * ORDERS_PAGE, "count": ORDERS_PAGE, **asked}
        call = Call("GET", f"v2/order/status/{quote(kitchen, safe='')}", what, params=params)
        body = await client._body(call)
        if not isinstance(body, dict) or not isinstance(body.get("orders", []), list):
            raise client.caller.error(
                ProviderResponseError,
                f"DataKitchen's answer to {call.what} has no list of orders: {client.caller.excerpt(body, 200)!r}",
            )
        orders = [o for o in body.get("orders") or [] if isinstance(o, dict)]
        yield orders, _servings_by_order(body.get("servings"))
        if len(orders) < ORDERS_PAGE:
            return


def _listed_status(client: Client, run_id: str, order_id: str, servings: list[JsonValue] | None) -> RunStatus | None:
    """A run's status as the kitchen's list shows it; None when the list does not settle it. A malformed entry,
    too, concerns that run only and leaves it to its own poll."""
    if servings is None:
        return None
    listed: list[Mapping[str, JsonValue]] = [s for s in servings if isinstance(s, dict)]
    hid = run_id.partition("/")[2]
    if not hid and not listed:  # as get_status says of an order with no run yet
        return RunStatus(run_id=run_id, state=RunState.QUEUED, raw_status="PLANNED_SERVING",
                         message="no order run yet", extra={"order_id": order_id})
    serving = next((s for s in listed if _hid_of(s) == hid), None) if hid else (listed[0] if listed else None)
    if serving is None:
        return None
    try:
        status = client._serving_status(run_id, order_id, serving)
    except (TypeError, ValueError, OverflowError):
        return None
    return None if status.final else client.caller.redact_status(status)
