"""Pausing and unpausing a job's orders: how DataKitchen stops and restarts a recipe variation's schedule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.errors import ProviderNotFound, ProviderRejected
from bot.models import Json, JsonValue
from bot.providers._http import Call, HttpCaller
from bot.providers.datakitchen.answers import _order_id_of, _order_state
from bot.providers.datakitchen.config import Job

__all__ = ["pause_orders"]

_ACTIVE_ORDER, _PAUSED_ORDER = "ACTIVE_ORDER", "PAUSED_ORDER"


class Client(Protocol):
    """What of the DataKitchen client pausing uses (the client imports this module, not the other way round)."""

    caller: HttpCaller

    async def _body(self, call: Call) -> JsonValue: ...

    @staticmethod
    def _seg(value: str) -> str: ...


async def pause_orders(client: Client, job: Job, orders: Sequence[Json], *, pause: bool) -> None:
    """Pause the job's active ``orders`` (unpause its paused ones): that stops (restarts) its schedule.

    An order's state is its ``order-status`` (``ACTIVE_ORDER``, ``PAUSED_ORDER``, ``COMPLETED_ORDER``…);
    finished orders and orders already in the wanted state are left alone. One refusal does not
    keep the other orders from being paused; the refusals are reported together at the end.
    """
    verb = "pause" if pause else "unpause"
    wanted = _ACTIVE_ORDER if pause else _PAUSED_ORDER
    if not orders:
        raise client.caller.error(
            ProviderRejected, f"DataKitchen has no order of {job.describe()}: there is no order to {verb}."
        )
    todo = [o for o in orders if _order_state(o) == wanted]
    if not todo:
        seen = ", ".join(sorted({_order_state(o) or "no order-status" for o in orders}))
        raise client.caller.error(
            ProviderRejected,
            f"There is no order to {verb}: none of the {len(orders)} order(s) of {job.describe()} is "
            f"{wanted} (they are {seen}).",
        )
    refused: list[str] = []
    for order in todo:
        order_id = _order_id_of(order, ("hid",))
        call = Call(
            "PUT",
            f"v2/order/{verb}/{client._seg(order_id)}",
            f"{verb} order {order_id} of {job.describe()}",
            json={"kitchen_name": job.kitchen},
        )
        try:
            await client._body(call)
        except (ProviderRejected, ProviderNotFound) as exc:
            refused.append(str(exc))
    if refused:
        done = len(todo) - len(refused)
        raise client.caller.error(
            ProviderRejected,
            f"DataKitchen {verb}d {done} of the {len(todo)} order(s) of {job.describe()}; " + " ".join(refused),
        )
