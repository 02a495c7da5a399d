"""The catalog's shape: what a pipeline, its parameters, defaults and routing rules may say.

Provider-specific fields (``river_id``, ``kitchen``…) are not here: each provider module's ``Job``
and ``Connection`` models validate them. ``load.py`` puts the two together.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.catalog.pagerduty import PagerDutyService
from bot.ops.text import UNTYPABLE
from bot.providers.base import JobConfig

__all__ = [
    "NO_ESCALATION",
    "Defaults",
    "Duration",
    "EscalateAfter",
    "ParameterSpec",
    "Pipeline",
    "PipelineSpec",
    "Principal",
    "RetryPolicy",
    "RouteRule",
    "Schedule",
    "parse_duration",
]

_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")
_PRINCIPAL = re.compile(
    r"^(\*|[UWSCG][A-Z0-9]{2,}|@[a-z0-9][a-z0-9._-]{0,79}|#[a-z0-9][a-z0-9_-]{0,79}|[^@\s]+@[^@\s]+\.[^@\s]+)$"
)
_CHANNEL = re.compile(r"^(#[a-z0-9][a-z0-9_-]{0,79}|[CG][A-Z0-9]{2,})$")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def parse_duration(value: object) -> timedelta:
    """``90`` (seconds), ``"45s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` → timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like 15m, 1h30m or a number of seconds")
    if isinstance(value, int | float):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return timedelta(seconds=value)
    text = str(value).strip().lower()
    match = _DURATION.match(text)
    if not text or not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration; write it like 90s, 15m, 1h30m or 2d")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    result = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if result <= timedelta(0):
        raise ValueError("a duration must be positive")
    return result


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]

#: ``escalate_after`` written as ``none`` (or ``false``): no escalation, even where ``defaults`` has one
NO_ESCALATION = timedelta(0)


def _escalate_after(value: object) -> timedelta:
    if value is False or (isinstance(value, str) and value.strip().lower() in ("none", "off", "never")):
        return NO_ESCALATION
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"{exc}, or none for no escalation") from None


EscalateAfter = Annotated[timedelta, BeforeValidator(_escalate_after)]


def _principal(value: object) -> str:
    text = str(value).strip()
    if not _PRINCIPAL.match(text):
        raise ValueError(
            f"{text!r} is not a Slack id nor a name: use a person's e-mail or id (U…), a user group's @handle or "
            "id (S…), a #channel or its id (C…), or * for everyone (names are resolved to ids when the bot starts)"
        )
    return text


Principal = Annotated[str, BeforeValidator(_principal)]


def _channel(value: object) -> str:
    text = str(value).strip()
    if not _CHANNEL.match(text):
        raise ValueError(f"{text!r} is not a channel: use its id (C0123ABCD) or #name in lower case")
    return text


Channel = Annotated[str, BeforeValidator(_channel)]


def _is_date(value: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return False
    try:
        date.fromisoformat(value)  # the shape is not enough: 2024-02-30 is no day
    except ValueError:
        return False
    return True


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: the longest parameter value: as long as a whole command may be
MAX_VALUE = 4_000


class ParameterSpec(_Strict):
    """One run parameter a pipeline accepts. ``name: value`` in YAML is short for ``{default: value}``."""

    type: Literal["string", "date", "int", "bool", "choice"] = "string"
    default: str | None = None
    required: bool = False
    choices: tuple[str, ...] | None = None
    pattern: str | None = None
    description: str = ""

    @field_validator("default", mode="before")
    @classmethod
    def _default_as_text(cls, value: object) -> object:
        return value if value is None or isinstance(value, str) else str(value)

    @model_validator(mode="after")
    def _coherent(self) -> ParameterSpec:
        if self.type == "choice" and not self.choices:
            raise ValueError("type choice needs a list of choices")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from None
        if self.default is not None:
            problem = self.problem_with(self.default)
            if problem:
                raise ValueError(f"default {self.default!r}: {problem}")
        return self

    def problem_with(self, value: str) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        # the command's own checks, for values that never went through its text: the modal's, a Workflow Builder
        # step's (its parameters are not capped by Slack's command box), the catalog's
        if len(value) > MAX_VALUE:
            return f"is {len(value):,} characters long; a parameter takes at most {MAX_VALUE:,}"
        if untypable := UNTYPABLE.search(value):
            return f"contains an invisible control character (U+{ord(untypable.group()):04X}); retype it without"
        # [0-9], not \d: int() and \d take any script's digits (١٢٣), which a provider would not read as a number
        if self.type == "int" and not re.fullmatch(r"[+-]?[0-9]+", value):
            return "must be a whole number written with the digits 0-9, like 42"
        if self.type == "bool" and value.strip().lower() not in ("true", "false"):
            return "must be true or false"
        if self.type == "date" and not _is_date(value):
            return "must be a date like 2024-01-31"
        if self.choices and value not in self.choices:
            return f"must be one of {', '.join(self.choices)}"
        if self.pattern and not re.fullmatch(self.pattern, value):
            return f"must match {self.pattern}"
        return None


class RetryPolicy(_Strict):
    """Retry a failing run automatically; alert only when the attempts are used up."""

    attempts: int = Field(default=3, ge=1, le=10, description="in all, the first run included")
    backoff: Duration = timedelta(minutes=1)
    on: tuple[Literal["failed", "unknown"], ...] = ("failed",)
    resume: bool = Field(default=True, description="use the provider's own resume where it has one")

    def delay(self, attempt: int) -> timedelta:
        """Wait before attempt ``attempt + 1``: the backoff doubles each time."""
        factor: int = 2 ** max(attempt - 1, 0)
        return self.backoff * factor


class Schedule(_Strict):
    """A cron schedule in a time zone; missed slots (the bot was down) run once or are skipped."""

    cron: str
    timezone: str = "UTC"
    missed: Literal["run_once", "skip"] = "run_once"
    parameters: dict[str, str] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone; use a name like Europe/Oslo") from None
        return value

    @model_validator(mode="after")
    def _cron(self) -> Schedule:
        try:
            self.trigger()
        except ValueError as exc:
            raise ValueError(f"cron {self.cron!r}: {exc}; write five fields like '0 6 * * 1-5'") from None
        return self

    def trigger(self) -> CronTrigger:
        return CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))


class Defaults(_Strict):
    channel: Channel | None = None
    owners: tuple[Principal, ...] = ()
    allow_run: tuple[Principal, ...] = ("*",)
    allow_change: tuple[Principal, ...] = ()
    watch: bool = False
    escalate_after: EscalateAfter | None = None  # an alert not acknowledged within this pings again, then escalates
    escalate_to: tuple[Principal, ...] = ()  # whom the second escalation pings: a user group or people


class RouteRule(_Strict):
    """Sends alerts of matching pipelines to a channel. First match wins; a pipeline's own channel wins over all."""

    channel: Channel
    provider: str | None = None
    tag: str | None = None
    pipeline: str | None = Field(default=None, description="a name or glob, like ingest-*")

    @model_validator(mode="after")
    def _something(self) -> RouteRule:
        if self.provider is None and self.tag is None and self.pipeline is None:
            raise ValueError("a route needs at least one of provider, tag, pipeline")
        return self

    def matches(self, pipeline: Pipeline) -> bool:
        if self.provider is not None and self.provider != pipeline.provider:
            return False
        if self.tag is not None and self.tag not in pipeline.tags:
            return False
        return self.pipeline is None or fnmatch.fnmatchcase(pipeline.name, self.pipeline)


def _parameters(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: (v if isinstance(v, Mapping) else {"default": v}) for k, v in value.items()}
    return value


def _parameter_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", name):
        raise ValueError(f"parameter name {name!r}: use letters, digits, _ . - (like execution_date)")
    return name


ParameterName = Annotated[str, AfterValidator(_parameter_name)]


class PipelineSpec(_Strict):
    """The provider-independent fields of a pipeline entry."""

    connection: str
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: Annotated[dict[ParameterName, ParameterSpec], BeforeValidator(_parameters)] = Field(
        default_factory=dict
    )
    channel: Channel | None = None
    owners: tuple[Principal, ...] | None = None
    allow_run: tuple[Principal, ...] | None = None
    allow_change: tuple[Principal, ...] | None = None
    expected_duration: Duration | None = None
    watch: bool | None = None
    retry: RetryPolicy | None = None
    schedule: Schedule | None = None
    escalate_after: EscalateAfter | None = None  # left out: the defaults'; none: no escalation
    escalate_to: tuple[Principal, ...] | None = None


@dataclass(frozen=True, slots=True)
class Pipeline:
    """A validated pipeline: defaults applied, the job typed by its provider."""

    name: str
    provider: str
    connection: str
    job: JobConfig
    description: str = ""
    tags: tuple[str, ...] = ()
    parameters: Mapping[str, ParameterSpec] = field(default_factory=dict)
    channel: str | None = None
    owners: tuple[str, ...] = ()
    allow_run: tuple[str, ...] = ("*",)
    allow_change: tuple[str, ...] = ()
    expected_duration: timedelta | None = None
    watch: bool = False
    retry: RetryPolicy | None = None
    schedule: Schedule | None = None
    pagerduty: PagerDutyService | None = None  # its own, else the defaults' (``pagerduty: false``: none)
    escalate_after: timedelta | None = None  # None: its alerts do not escalate
    escalate_to: tuple[str, ...] = ()
