"""What every provider emulator shares: a clock, scripted job outcomes, runs, faults, a request log.

Emulators import nothing from the rest of ``bot``: a client's misreading of an API must not be
copied into the server that tests it.

A run's state is a function of time: queued for ``queued_s``, running for ``running_s``, then its
scripted result (``succeed``, ``fail``, ``cancel``) — or running for ever (``hang``). With a
``ManualClock`` a test moves time itself; with ``RealClock`` (demo, ``pipeline-bot emulate``) runs
progress in real time.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

__all__ = [
    "Clock",
    "EmuRun",
    "EmulatorState",
    "Fault",
    "Json",
    "JsonValue",
    "ManualClock",
    "Outcome",
    "RealClock",
    "RecordedRequest",
]

Phase = Literal["queued", "running", "succeeded", "failed", "canceled"]
Result = Literal["succeed", "fail", "hang", "cancel"]
#: JSON a client sent or will read (the emulators' copy of bot.models.JsonValue: they import nothing of the bot)
JsonValue: TypeAlias = Any
#: one JSON object
Json: TypeAlias = dict[str, JsonValue]


class Clock(Protocol):
    def now(self) -> float: ...


class RealClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to. Starts at the real time so dates look current."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run of a job goes."""

    result: Result = "succeed"
    queued_s: float = 1.0
    running_s: float = 3.0
    message: str = ""
    tasks: tuple[str, ...] = ("extract", "load")
    failed_tasks: tuple[str, ...] = ()
    #: lines the run's log has before its tasks' own (a long log, 10,000 lines, to page through); their words are
    #: the emulator's own: no vendor source shows what a step logs
    log_lines: int = 0

    def filler(self) -> list[str]:
        return [f"step {i + 1} of {self.log_lines}: 1000 rows copied" for i in range(self.log_lines)]

    @classmethod
    def parse(cls, raw: Mapping[str, JsonValue]) -> Outcome:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown outcome keys {sorted(unknown)}; known: {sorted(known)}")
        values = dict(raw)
        for key in ("tasks", "failed_tasks"):
            if key in values:
                values[key] = tuple(values[key])
        if values.get("result", "succeed") not in ("succeed", "fail", "hang", "cancel"):
            raise ValueError(f"result must be succeed, fail, hang or cancel, not {values['result']!r}")
        return cls(**values)


_END: dict[str, Phase] = {"succeed": "succeeded", "fail": "failed", "cancel": "canceled"}


@dataclass(slots=True)
class EmuRun:
    """One run inside an emulator."""

    run_id: str
    job: str
    created_at: float
    outcome: Outcome
    parameters: Json = field(default_factory=dict)
    external: bool = False  # started outside the bot (console, schedule)
    canceled_at: float | None = None
    extra: Json = field(default_factory=dict)

    def phase(self, now: float) -> Phase:
        if self.canceled_at is not None and now >= self.canceled_at:
            return "canceled"
        age = now - self.created_at
        if age < self.outcome.queued_s:
            return "queued"
        if self.outcome.result == "hang" or age < self.outcome.queued_s + self.outcome.running_s:
            return "running"
        return _END[self.outcome.result]

    def started_at(self) -> float:
        return self.created_at + self.outcome.queued_s

    def ended_at(self, now: float) -> float | None:
        phase = self.phase(now)
        if phase in ("queued", "running"):
            return None
        if phase == "canceled" and self.canceled_at is not None:
            return self.canceled_at
        return self.created_at + self.outcome.queued_s + self.outcome.running_s

    def task_phase(self, task: str, now: float) -> Phase:
        """Each task follows its run; failed tasks fail, the others succeed, when the run ends."""
        phase = self.phase(now)
        if phase == "failed":
            return "failed" if task in self.outcome.failed_tasks or not self.outcome.failed_tasks else "succeeded"
        return phase


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure to inject on matching requests.

    ``route`` is a route name of the emulator ("trigger", "status", …) or ``*``. ``kind``:
    ``status`` answers ``status`` (with ``Retry-After`` when ``retry_after`` is set); ``delay`` waits
    ``delay`` seconds, then answers normally; ``malformed`` answers 200 with a body that is not JSON;
    ``expired_token`` answers as the provider does for an expired token; ``html`` answers ``status``
    with an HTML page, as gateways do; ``trickle`` answers normally but sends the body one byte every ``delay``
    seconds (a slowloris provider: each read comes before a per-read timeout, the answer takes for ever);
    ``reset`` handles the request (a trigger's run starts) and resets the connection instead of answering.
    ``times`` limits how often it fires (None: until removed).
    """

    route: str = "*"
    kind: Literal["status", "delay", "malformed", "expired_token", "html", "trickle", "reset"] = "status"
    status: int = 503
    retry_after: float | None = None
    delay: float = 0.0
    times: int | None = 1

    @classmethod
    def parse(cls, raw: Mapping[str, JsonValue]) -> Fault:
        known = set(cls.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown fault keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(raw))


@dataclass(slots=True)
class _ArmedFault:
    fault: Fault
    remaining: int | None


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    route: str
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: JsonValue


class EmulatorState:
    """Jobs, runs, faults and the request log of one emulator."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        jobs: Mapping[str, Outcome | Iterable[Outcome]] | None = None,
        default: Outcome | None = Outcome(),
        keep_requests: int | None = None,
    ) -> None:
        """``keep_requests``: how many of the latest requests ``requests`` keeps (all when None); long benchmark
        runs bound it so memory stays flat."""
        self.clock: Clock = clock or ManualClock()
        # per job, the outcomes of its next runs; the last one repeats
        self._scripts: dict[str, list[Outcome]] = {}
        for job, outcome in (jobs or {}).items():
            self.script(job, outcome)
        #: outcome of jobs that were not scripted; None means unknown jobs are refused (404)
        self.default = default
        self.runs: dict[str, EmuRun] = {}
        self.faults: list[_ArmedFault] = []
        self.requests: deque[RecordedRequest] = deque(maxlen=keep_requests)
        self._seq = itertools.count(1)

    # -- scripting --------------------------------------------------------------------------

    def script(self, job: str, outcome: Outcome | Iterable[Outcome]) -> None:
        self._scripts[job] = [outcome] if isinstance(outcome, Outcome) else list(outcome)

    def knows(self, job: str) -> bool:
        return job in self._scripts or self.default is not None

    def next_outcome(self, job: str) -> Outcome:
        script = self._scripts.get(job)
        if not script:
            assert self.default is not None
            return self.default
        return script.pop(0) if len(script) > 1 else script[0]

    def add_fault(self, fault: Fault) -> None:
        self.faults.append(_ArmedFault(fault, fault.times))

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, route: str) -> Fault | None:
        for armed in self.faults:
            if armed.fault.route not in ("*", route):
                continue
            if armed.remaining is not None:
                if armed.remaining <= 0:
                    continue
                armed.remaining -= 1
            return armed.fault
        return None

    # -- runs -------------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def new_id(self, style: str = "hex") -> str:
        if style == "uuid":
            return str(uuid.uuid4())
        if style == "objectid":  # Rivery and DataKitchen ids look like 24 hex digits
            return f"{int(self.now()):08x}{next(self._seq):016x}"
        return uuid.uuid4().hex

    def start_run(
        self,
        job: str,
        parameters: Mapping[str, JsonValue] | None = None,
        *,
        run_id: str | None = None,
        external: bool = False,
        outcome: Outcome | None = None,
    ) -> EmuRun:
        run = EmuRun(
            run_id=run_id or self.new_id(),
            job=job,
            created_at=self.now(),
            outcome=outcome or self.next_outcome(job),
            parameters=dict(parameters or {}),
            external=external,
        )
        self.runs[run.run_id] = run
        return run

    def runs_of(self, job: str) -> list[EmuRun]:
        """Runs of one job, newest first."""
        found = [r for r in self.runs.values() if r.job == job]
        return sorted(found, key=lambda r: r.created_at, reverse=True)

    def cancel(self, run: EmuRun) -> bool:
        if run.phase(self.now()) in ("queued", "running"):
            run.canceled_at = self.now()
            return True
        return False

    def requests_to(self, route: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.route == route]
