"""Retry policies, schedules and workflows as the catalog declares them, and their validation.

A workflow's steps are pipelines of any provider (or approval gates), joined by ``on_success`` /
``on_failure`` edges; parameters pass from the workflow to its steps through ``{name}`` templates.
Validation reports cycles, unknown steps and pipelines, and parameters that cannot work, with paths.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from bot.catalog.model import Channel, Duration, ParameterSpec, Pipeline, Principal, RetryPolicy, Schedule
from bot.models import JsonValue

__all__ = [
    "ApprovalSpec",
    "RetryPolicy",
    "Schedule",
    "StepSpec",
    "Workflow",
    "WorkflowSpec",
    "render_template",
    "template_names",
    "validate_workflow",
]

_TEMPLATE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApprovalSpec(_Strict):
    approvers: tuple[Principal, ...] = Field(min_length=1)
    timeout: Duration = timedelta(hours=24)
    question: str = ""


def _edges(value: object) -> object:
    if isinstance(value, str):
        return (value,)
    return value


Edges = Annotated[tuple[str, ...], BeforeValidator(_edges)]


class StepSpec(_Strict):
    pipeline: str | None = None
    approval: ApprovalSpec | None = None
    parameters: dict[str, str] = Field(default_factory=dict)
    on_success: Edges = ()
    on_failure: Edges = ()

    @field_validator("parameters", mode="before")
    @classmethod
    def _as_text(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        if (self.pipeline is None) == (self.approval is None):
            raise ValueError("a step is either a pipeline (pipeline: <name>) or an approval (approval: {...})")
        if self.approval is not None and self.parameters:
            raise ValueError("an approval step takes no parameters")
        return self


def _parameters(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: (v if isinstance(v, Mapping) else {"default": v}) for k, v in value.items()}
    return value


class WorkflowSpec(_Strict):
    description: str = ""
    steps: dict[str, StepSpec] = Field(min_length=1)
    start: Edges = ()
    parameters: Annotated[dict[str, ParameterSpec], BeforeValidator(_parameters)] = Field(default_factory=dict)
    channel: Channel | None = None
    owners: tuple[Principal, ...] | None = None
    allow_run: tuple[Principal, ...] | None = None
    allow_change: tuple[Principal, ...] | None = None
    schedule: Schedule | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Workflow:
    """A validated workflow, defaults applied."""

    name: str
    steps: Mapping[str, StepSpec]
    start: tuple[str, ...]
    description: str = ""
    parameters: Mapping[str, ParameterSpec] = field(default_factory=dict)
    channel: str | None = None
    owners: tuple[str, ...] = ()
    allow_run: tuple[str, ...] = ("*",)
    allow_change: tuple[str, ...] = ()
    schedule: Schedule | None = None
    tags: tuple[str, ...] = ()

    @property
    def provider(self) -> str:
        return "workflow"  # routing rules by provider never match a workflow; by name and tag they do


def template_names(value: str) -> list[str]:
    return _TEMPLATE.findall(value)


def render_template(value: str, parameters: Mapping[str, str]) -> str:
    """``{execution_date}`` → the workflow parameter's value."""
    return _TEMPLATE.sub(lambda m: parameters.get(m.group(1), m.group(0)), value)


#: the longest step name: an approval's buttons carry it with the run's id in a value Slack caps at 2,000 characters
STEP_NAME_MAX = 1900


def validate_workflow(
    name: str,
    spec: WorkflowSpec,
    pipelines: Mapping[str, Pipeline],
    accepts: Mapping[str, JsonValue],
    *,
    also_steps: set[str] | None = None,
    also_pipelines: Collection[str] = (),
) -> list[str]:
    """Every problem of one workflow, each with its path. ``accepts``: provider key → client class.
    ``also_steps``: steps that exist but were invalid (reported already): edges to them are fine.
    ``also_pipelines``: pipelines that exist but were invalid (reported already): steps running them are fine."""
    path = f"workflows.{name}"
    problems: list[str] = []
    steps = spec.steps
    known = set(steps) | (also_steps or set())
    for step_name, step in steps.items():
        where = f"{path}.steps.{step_name}"
        if len(step_name) > STEP_NAME_MAX:
            # its name travels in its approval buttons' value (2,000 characters in all, the run's id with it)
            problems.append(f"{path}.steps: a step's name is {len(step_name)} characters long; at most {STEP_NAME_MAX}")
            continue
        for edge_kind in ("on_success", "on_failure"):
            for target in getattr(step, edge_kind):
                if target not in known:
                    problems.append(
                        f"{where}.{edge_kind}: {target!r} is not a step of {name}; steps: {', '.join(steps)}"
                    )
        if step.pipeline is not None:
            pipeline = pipelines.get(step.pipeline)
            if pipeline is None and step.pipeline in also_pipelines:
                continue  # one mistake, one problem: the pipeline's own is listed
            if pipeline is None:
                problems.append(f"{where}.pipeline: {step.pipeline!r} is not a pipeline in the catalog")
                continue
            refusal = pipeline.job.run_refusal()
            if refusal is not None:
                problems.append(f"{where}.pipeline: {pipeline.name} cannot be run: {refusal}")
                continue
            problems.extend(_step_parameters(where, step, pipeline, spec, accepts))
    for target in spec.start:
        if target not in known:
            problems.append(f"{path}.start: {target!r} is not a step of {name}")
    cycle = _cycle(steps)
    if cycle:
        problems.append(f"{path}.steps: the steps form a cycle ({' → '.join(cycle)}); a workflow must end")
    return problems


def _step_parameters(
    where: str, step: StepSpec, pipeline: Pipeline, spec: WorkflowSpec, accepts: Mapping[str, JsonValue]
) -> list[str]:
    problems = []
    client = accepts.get(pipeline.provider)
    if step.parameters and client is not None and not client.accepts_parameters:
        problems.append(f"{where}.parameters: {pipeline.name} runs on a provider that takes no parameters")
        return problems
    for key, value in step.parameters.items():
        if pipeline.parameters and key not in pipeline.parameters:
            problems.append(
                f"{where}.parameters.{key}: {pipeline.name} takes no parameter {key!r}; "
                f"it takes: {', '.join(pipeline.parameters) or 'none'}"
            )
        for ref in template_names(value):
            if ref not in spec.parameters:
                problems.append(
                    f"{where}.parameters.{key}: {{{ref}}} is not a parameter of the workflow; declare it under "
                    "parameters:"
                )
        if not template_names(value) and key in pipeline.parameters:
            problem = pipeline.parameters[key].problem_with(value)
            if problem:
                problems.append(f"{where}.parameters.{key}: {value!r} {problem}")
    return problems


def _cycle(steps: Mapping[str, StepSpec]) -> list[str]:
    """A cycle among the steps' edges, as a path, or [] when there is none."""
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        step = steps[node]
        for nxt in (*step.on_success, *step.on_failure):
            if nxt not in steps:
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in steps:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []
