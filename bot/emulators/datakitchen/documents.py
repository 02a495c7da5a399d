"""What DataKitchen answers about its catalog, orders and order runs, and how a request's names find them."""

from __future__ import annotations

import base64
import io
import zipfile
from collections.abc import Mapping
from typing import Protocol

from bot.emulators._core import EmulatorState, EmuRun, Json, JsonValue
from bot.emulators.datakitchen.shapes import (
    NODE_STATUS,
    ORDERRUN_WORDS,
    SERVING_STATUS,
    Order,
    iso,
    ms,
)

__all__ = ["Documents", "Served"]


class Served(Protocol):
    """What the documents read of the emulator that serves them."""

    state: EmulatorState
    kitchens: dict[str, dict[str, list[str]]] | None
    orders: dict[str, Order]

    def keep(self, shape: str, answer: Json) -> Json: ...


class Documents:
    """What DataKitchen answers about its catalog, orders and order runs, and how a request's names find them."""

    def __init__(self, emu: Served) -> None:
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
        return SERVING_STATUS[run.phase(self.emu.state.now())]

    def _timings(self, run: EmuRun) -> dict[str, int]:
        now = self.emu.state.now()
        phase = run.phase(now)
        if phase == "queued":  # planned: the time it was planned for
            return {"start-time": ms(run.created_at)}
        start = min(run.started_at(), run.canceled_at or run.started_at())
        timings = {"start-time": ms(start)}
        end = run.ended_at(now)
        if end is not None:
            timings["end-time"] = ms(end)
            timings["duration"] = ms(max(end - start, 0.0))
        return timings

    def _serving_fields(self, run: EmuRun) -> Json:
        """Everything the emulator knows of an order run (each answer keeps what its shape allows)."""
        order = self.emu.orders[str(run.extra["order_id"])]
        status = self.status(run)
        return {
            "hid": run.run_id,
            "order_id": order.order_id,
            "status": status,
            "orderrun_status": ORDERRUN_WORDS[status],
            "recipe_name": order.recipe,
            "variation_name": order.variation,
            "timings": self.emu.keep("timings", self._timings(run)),
        }

    def serving(self, run: EmuRun) -> Json:
        """An order run as order/servings and order/status list it."""
        return self.emu.keep("serving", self._serving_fields(run))

    def order_status(self, order: Order) -> str:
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

    def order(self, order: Order) -> Json:
        return self.emu.keep("order", {
            "hid": order.order_id,
            "order_id": order.order_id,
            "recipe": order.recipe,
            "variation": order.variation,
            "order-status": self.order_status(order),
            "schedule": order.schedule,
            "input_settings": self.emu.keep("input_settings", {"parameters": order.parameters,
                                                               "schedule": order.schedule}),
            "created_time": ms(order.created_at),
        })

    def servings_of(self, order: Order) -> list[EmuRun]:
        """An order's runs, newest first."""
        runs = [self.emu.state.runs[h] for h in order.servings]
        return sorted(runs, key=lambda r: (r.created_at, order.servings.index(r.run_id)), reverse=True)

    def run(self, hid: str) -> EmuRun | None:
        run = self.emu.state.runs.get(hid)
        return run if run is not None and run.extra.get("order_id") in self.emu.orders else None

    def details_runs(self, kitchen: str, ask: Mapping[str, JsonValue]) -> list[EmuRun] | None:
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

    def detail(self, run: EmuRun, ask: Mapping[str, JsonValue]) -> Json:
        order = self.emu.orders[str(run.extra["order_id"])]
        now = self.emu.state.now()
        detail = self._serving_fields(run)
        detail.update({
            "recipe_id": order.order_id[:8] + run.run_id[8:],
            "run_time_variables": {**run.parameters, "CurrentKitchen": order.kitchen,
                                   "CurrentOrderId": order.order_id, "CurrentOrderRunId": run.run_id,
                                   "CurrentVariation": order.variation, "RecipeName": order.recipe},
            "resumed_by": run.extra.get("resumed_by"),
            "scheduled_start_time": ms(run.created_at),
        })
        if ask.get("summary"):
            timings = self._timings(run)
            detail["summary"] = self.emu.keep("summary", {
                "name": order.recipe,
                "status": NODE_STATUS[run.phase(now)],
                "start-time": timings.get("start-time"),
                "end-time": timings.get("end-time"),
                "total-recipe-time": timings.get("duration"),
                "nodes": {
                    task: self.emu.keep("node", {"status": NODE_STATUS[run.task_phase(task, now)],
                                                 "start_time": timings.get("start-time"),
                                                 "timing": timings.get("duration")})
                    for task in run.outcome.tasks
                },
            })
        if ask.get("logs"):
            detail["log"] = self.emu.keep("log", {"lines": self._log(run)})
        if ask.get("testresults") and run.phase(now) not in ("queued", "running"):
            detail["testresults"] = self._tests(run, now)
        return self.emu.keep("detail", detail)

    @staticmethod
    def _tests(run: EmuRun, now: float) -> str:
        """``testresults`` as text (DKCloudCommandRunner prints the string as it comes); its lines are the
        emulator's own: no source shows their format (assumption)."""
        lines = []
        for task in run.outcome.tasks:
            failed = run.task_phase(task, now) == "failed"
            lines.append(f"{task}: test row_count {'FAILED (0 rows)' if failed else 'passed'}")
        return "\n" + "\n".join(lines) + "\n"

    def full_log(self, run: EmuRun) -> str:
        """``GET v2/order/export/logs``' ``log``: base64 of a zip whose first file is the whole log's text, as
        DKCloudCommand's ``orderrun_detail(full_log=True)`` decodes it (``DKFileEncode.b64decode``, then
        ``DKZipHelper.unzip_first_file_as_string_or_unicode``). No source shows the text itself: its lines are the
        log entries as DKCloudCommand prints the details' (``datetime | record_type | thread_name | message``)
        and the file's name ``<order run>.log`` (assumptions)."""
        items = ("datetime", "record_type", "thread_name", "message")
        text = "\n".join(" | ".join(str(entry.get(k, "")) for k in items) for entry in self._log(run)) + "\n"
        packed = io.BytesIO()
        with zipfile.ZipFile(packed, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{run.run_id}.log", text)
        return base64.b64encode(packed.getvalue()).decode("ascii")

    def _log(self, run: EmuRun) -> list[Json]:
        """Log entries: each node's start and end, and the outcome's message on the nodes that failed."""
        now = self.emu.state.now()

        def line(level: str, message: str, node: str | None = None) -> Json:
            entry = {"datetime": iso(now), "record_type": level, "thread_name": "NodeExecutorThread:0",
                     "message": message, "node": node}
            return self.emu.keep("log_line", entry)

        lines = [line("INFO", f"Order run {run.run_id} planned")]
        if run.phase(now) == "queued":
            return lines
        lines += [line("INFO", text) for text in run.outcome.filler()]
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

