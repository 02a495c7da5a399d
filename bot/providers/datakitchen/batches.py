"""DataKitchen's batched polls: the runs of a whole kitchen from one order status list (and its pages).

``GET v2/order/status/{kitchen}`` without a recipe filter gives the kitchen's orders, newest first, each with its
newest order run (``scount=1``); pages of ``ORDERS_PAGE`` orders (``start``/``count``) are read until every asked
order has been seen or the kitchen has no more. An order run the page does not show (an older run of a resumed
order), an order beyond the pages and a finished run (its details take a call of their own, as ``get_status``
makes) are left out: the tracker asks those one by one.

A kitchen with thousands of open orders is many pages (5,000 orders: 100 pages of 200 ms, 20 s one after the
other). Given the connection's slots, the pages after the first are read up to ``PAGES_AT_ONCE`` at once (``_Ahead``;
as many more as came back full, so a small kitchen asks no pages past its end): the
caller's own slot reads one after the other, so reading goes on when the connection has no slot free, and each
further page read at once takes one of the connection's slots. They are read overlapping by one order (pages of 50
orders every 49), and taken in order, so the answer is the one read one after the other would give: a page must
hold the last order of the page before it; one that does not was read before that page while orders were created
(the list moved down between the two answers, and an order may have fallen between them), and is read again. The order
both pages hold takes its status from the page answered last (pages read at once may be answered out of turn: the
later page is not always the newer, as it is one after the other). Without slots (``list_runs``, a pause) the pages
are read one after the other, overlapping alike: a page without the last order of the one before means orders were
removed above it meanwhile, and orders were skipped (``OrdersMoved``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, aclosing, suppress
from typing import NamedTuple, Protocol, TypeAlias
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

__all__ = ["OrdersMoved", "kitchen_statuses", "order_pages"]


class OrdersMoved(Exception):
    """Orders were removed above a page's end while the pages were read one after the other: read them again."""


#: orders per page, as ``list_runs`` asks them (no source gives a maximum of ``count``)
ORDERS_PAGE = 50
#: a batched poll pages through a kitchen's orders, newest first, until it has seen every order it asks about
MAX_PAGES = 100
#: pages of a kitchen's orders a batched poll reads at once (the caller's slot and the connection's free ones)
PAGES_AT_ONCE = 8
#: the pages read at once overlap by one order: each must hold the last order of the one before it
_STRIDE = ORDERS_PAGE - 1

#: the order in which pages are answered, across all reads (an order two pages hold is as the later answer shows it)
_ANSWERS = itertools.count()


class Page(NamedTuple):
    """One page of a kitchen's orders: the orders, their order runs by order id, and when it was answered (a number
    that grows with each page answered)."""

    orders: list[Json]
    by_order: dict[str, list[JsonValue]]
    answered: int


Slots: TypeAlias = AbstractAsyncContextManager[object]


async def kitchen_statuses(
    client: Client, runs: Sequence[tuple[Job, str]], *, slots: Slots | None = None
) -> dict[str, RunStatus]:
    """The statuses of ``runs`` (all of one kitchen) that the kitchen's order status list settles. ``slots``: the
    connection's, for the pages read at once (None: one after the other)."""
    wanted: dict[str, list[str]] = {}
    for _job, run_id in runs:
        order_id, _, hid = run_id.strip().partition("/")
        if order_id and "/" not in hid:  # anything else is not a run id: its own poll says so
            wanted.setdefault(order_id, []).append(run_id)
    if not runs or not wanted:
        return {}
    kitchen = runs[0][0].kitchen
    found: dict[str, RunStatus] = {}
    told: dict[str, int] = {}  # the answer each order's status was taken from
    unseen = set(wanted)
    what = f"check the order runs of kitchen {kitchen}"
    with suppress(OrdersMoved):  # orders removed meanwhile: those not seen go to their own polls
        async with aclosing(order_pages(client, kitchen, what, {"scount": 1}, MAX_PAGES, slots=slots)) as pages:
            async for page in pages:
                for order in page.orders:
                    order_id = _order_id_of(order, ("hid",))
                    unseen.discard(order_id)
                    if told.get(order_id, -1) > page.answered:  # on the page above too, which was answered later
                        continue
                    told[order_id] = page.answered
                    for run_id in wanted.get(order_id, ()):
                        found.pop(run_id, None)
                        status = _listed_status(client, run_id, order_id, page.by_order.get(order_id))
                        if status is not None:
                            found[run_id] = status
                if not unseen:
                    break
    return found


async def order_pages(
    client: Client, kitchen: str, what: str, asked: Mapping[str, JsonValue], max_pages: int,
    *, slots: Slots | None = None,
) -> AsyncGenerator[Page]:
    """The pages of ``GET v2/order/status/{kitchen}`` (``asked``: the query besides ``start``/``count``): each
    page's orders and their order runs by order id, until a short page or ``max_pages`` pages' worth of orders.
    ``list_runs`` and the batched polls both read them so; with ``slots`` (the connection's), the pages after the
    first are read several at once (see the module's docstring). Close it (``aclosing``) when leaving it early."""

    async def read(start: int) -> Page:
        return await _page(client, kitchen, what, asked, start)

    first = await read(0)
    yield first
    if len(first.orders) < ORDERS_PAGE:
        return
    if slots is None:
        # overlapping by one order as the pages read at once do: orders removed above a page's end move the list up,
        # and the next page began after orders never seen (`list_runs` left their runs out, a pause left them
        # running, untold). The page before's last order not in the next page: ``OrdersMoved``
        last = _last_id(first)
        for page in range(1, max_pages):
            got = await read(page * _STRIDE)
            if last and last not in {_order_id_of(o, ("hid",)) for o in got.orders}:
                raise OrdersMoved
            yield got
            if len(got.orders) < ORDERS_PAGE:
                return
            last = _last_id(got)
        return
    ahead = _Ahead(read, ORDERS_PAGE * max_pages, slots)
    last = _last_id(first)
    try:
        for page in range(1, ahead.pages):
            got = await ahead.page(page)
            if last not in {_order_id_of(o, ("hid",)) for o in got.orders}:
                # read before the page above it while orders came (or went): read after it, as one after the other
                got = await read(page * _STRIDE)
            yield got
            if len(got.orders) < ORDERS_PAGE:
                return
            last = _last_id(got)
    finally:
        await ahead.stop()


async def _page(client: Client, kitchen: str, what: str, asked: Mapping[str, JsonValue], start: int) -> Page:
    params = {"start": start, "count": ORDERS_PAGE, **asked}
    call = Call("GET", f"v2/order/status/{quote(kitchen, safe='')}", what, params=params)
    body = await client._body(call)
    if not isinstance(body, dict) or not isinstance(body.get("orders", []), list):
        raise client.caller.error(
            ProviderResponseError,
            f"DataKitchen's answer to {call.what} has no list of orders: {client.caller.excerpt(body, 200)!r}",
        )
    orders = [o for o in body.get("orders") or [] if isinstance(o, dict)]
    return Page(orders, _servings_by_order(body.get("servings")), next(_ANSWERS))


def _last_id(page: Page) -> str:
    return _order_id_of(page.orders[-1], ("hid",)) if page.orders else ""


class _Ahead:
    """Pages 1, 2… of the overlapping pages (``_STRIDE``) read ahead, ``PAGES_AT_ONCE`` at most at once, each
    handed out in order (``page``). One reader goes on the caller's slot, the others each take one of ``slots`` per
    page; a page past a short or failed one is not asked for. How far ahead grows as pages come back full (1, then
    2, 4… ``PAGES_AT_ONCE``; ``_allowed``): a kitchen of 60 orders costs 2 calls, as one after the other, not 9 (the
    seven pages asked with the second, past the kitchen's end, answered empty)."""

    def __init__(self, read: Callable[[int], Awaitable[Page]], orders: int, slots: Slots) -> None:
        self.read = read
        self.pages = 1 + -(-max(0, orders - ORDERS_PAGE) // _STRIDE)  # the first, and enough to cover ``orders``
        self.next = 1  # the next page to ask for
        self.full = 0  # pages 1..full came back full: the kitchen goes on at least that far
        self.news = asyncio.Event()  # set when a page is answered (a reader waiting to read further looks again)
        self.answers: dict[int, asyncio.Future[Page]] = {}
        self.readers = [asyncio.create_task(self._reader(None))]
        self.readers += [asyncio.create_task(self._reader(slots)) for _ in range(PAGES_AT_ONCE - 1)]

    def _answer(self, page: int) -> asyncio.Future[Page]:
        found = self.answers.get(page)
        if found is None:
            found = self.answers[page] = asyncio.get_running_loop().create_future()
        return found

    async def page(self, page: int) -> Page:
        if page not in self.answers and page >= self.pages:  # past a short page that a later read found full
            return await self.read(page * _STRIDE)
        return await self._answer(page)

    def _allowed(self) -> int:
        """The last page that may be asked for now: as many past the pages known full as are known full, plus one
        (at most ``PAGES_AT_ONCE``). A page the consumer waits for is always allowed: it asks for page p only once
        p - 1 came back full (else the kitchen ended there, or ``page`` reads it itself)."""
        return self.full + min(PAGES_AT_ONCE, self.full + 1)

    def _ready(self) -> bool:
        return self.next < self.pages and self.next <= self._allowed()

    async def _reader(self, slot: Slots | None) -> None:
        while self.next < self.pages:
            if not self._ready():  # further than the pages known full warrant: wait for an answer
                news = self.news
                await news.wait()
                continue
            if slot is None:
                await self._read_next()
                continue
            async with slot:
                if self._ready():  # others may have read the rest while this one waited for its slot
                    await self._read_next()

    async def _read_next(self) -> None:
        page, self.next = self.next, self.next + 1
        answer = self._answer(page)
        try:
            got = await self.read(page * _STRIDE)
        except Exception as exc:  # the page's taker raises it, as the call one after the other would have
            self.pages = min(self.pages, page + 1)
            answer.set_exception(exc)
            self._tell()
            return
        if len(got.orders) < ORDERS_PAGE:  # the kitchen's last page: none after it
            self.pages = min(self.pages, page + 1)
        answer.set_result(got)
        while (done := self.answers.get(self.full + 1)) is not None and done.done() and not done.cancelled() and (
            done.exception() is None and len(done.result().orders) >= ORDERS_PAGE
        ):
            self.full += 1
        self._tell()

    def _tell(self) -> None:
        """Wake the readers waiting to read further (a new event for the next wait)."""
        news, self.news = self.news, asyncio.Event()
        news.set()

    async def stop(self) -> None:
        """Cancel the reads still under way, their slots handed back before the batch's answer is; the answers
        nobody took (past the end) are dropped."""
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        for answer in self.answers.values():
            if answer.done() and not answer.cancelled():
                answer.exception()  # retrieved: an unread page's failure is nobody's
            else:
                answer.cancel()


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
