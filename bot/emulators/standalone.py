"""``pipeline-bot emulate <provider>``: one emulator on its own, in real time.

With no scenario it accepts any credentials and any job id and runs each triggered job to success
within a few seconds. A scenario file (YAML) declares jobs, outcomes, faults and credentials::

    default: {result: succeed, queued_s: 1, running_s: 3}   # null: unknown jobs are refused
    jobs:
      5e8e1eb46b028e37b73f44f0: {result: fail, message: "Table not found", failed_tasks: [load]}
      flaky-river: [{result: fail}, {result: succeed}]          # one outcome per run, the last repeats
    faults:
      - {route: status, kind: status, status: 503, retry_after: 2, times: 3}
    tokens: [my-test-token]                                   # provider-specific credentials
    strict: true                                              # only what a vendor source documents (or --strict)
"""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from bot.emulators._core import Clock, EmulatorState, Fault, Json, JsonValue, Outcome, RealClock
from bot.emulators._server import EmulatorServer

__all__ = ["EMULATORS", "build_emulator", "load_scenario", "serve_forever"]

EMULATORS: dict[str, str] = {
    "rivery": "bot.emulators.rivery:RiveryEmulator",
    "tailer": "bot.emulators.tailer:TailerEmulator",
    "invision": "bot.emulators.invision:InVisionEmulator",
    "datakitchen": "bot.emulators.datakitchen:DataKitchenEmulator",
    "pagerduty": "bot.emulators.pagerduty:PagerDutyEmulator",
}


def emulator_class(provider: str) -> type[EmulatorServer]:
    module, _, name = EMULATORS[provider].partition(":")
    cls: type[EmulatorServer] = getattr(importlib.import_module(module), name)
    return cls


def load_scenario(path: Path) -> Json:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a scenario is a mapping with jobs, default, faults and credentials")
    return data


def _outcomes(value: JsonValue) -> Outcome | list[Outcome]:
    if isinstance(value, list):
        return [Outcome.parse(v or {}) for v in value]
    return Outcome.parse(value or {})


def build_emulator(
    provider: str, scenario: Mapping[str, JsonValue] | None = None, clock: Clock | None = None
) -> EmulatorServer:
    """An emulator configured by a scenario mapping (see the module docstring)."""
    scenario = dict(scenario or {})
    default_raw = scenario.pop("default", {})
    state = EmulatorState(
        clock=clock or RealClock(),
        default=None if default_raw is None else Outcome.parse(default_raw),
    )
    jobs = scenario.pop("jobs", None) or {}
    if not isinstance(jobs, Mapping):
        raise ValueError("jobs must be a mapping of job ids to outcomes, like {r1: succeeded}")
    for job, outcome in jobs.items():
        state.script(str(job), _outcomes(outcome))
    for fault in scenario.pop("faults", None) or []:
        state.add_fault(Fault.parse(fault))
    server = emulator_class(provider)(state)
    server.configure(scenario)
    return server


async def serve_forever(
    provider: str, *, host: str, port: int, scenario: Path | None, strict: bool = False
) -> int:
    """``strict``: the emulator serves only what a vendor source documents (the scenario key ``strict``)."""
    try:
        loaded = load_scenario(scenario) if scenario else {}
        server = build_emulator(provider, {**loaded, "strict": True} if strict else loaded)
    except (OSError, ValueError, TypeError) as exc:
        if strict and "strict" in str(exc):
            print(f"pipeline-bot emulate: {provider} has no strict mode yet", file=sys.stderr)
        else:
            print(f"pipeline-bot emulate: bad scenario: {exc}", file=sys.stderr)
        return 2
    url = await server.start(host, port)
    print(f"{provider} emulator listening on {url}  (control API: {url}/_emulator/runs)", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
    return 0
