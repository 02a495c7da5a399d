from __future__ import annotations

import typing
from collections.abc import Mapping
from datetime import timedelta

import pytest
import yaml

from bot.catalog.catalog import Catalog
from bot.catalog.load import parse_catalog
from bot.catalog.workflows import Workflow
from bot.errors import ConfigError

BASE = """
defaults: {channel: C0OPS}  # a schedule needs somewhere to show its runs
connections:
  dk: {provider: datakitchen, username: bot, password: "${PW}"}
  inv: {provider: invision, base_url: "https://x/invision/", api_key: "${PW}"}
pipelines:
  a: {connection: dk, kitchen: k, recipe: r, variation: a, parameters: {day: {type: date}}}
  b: {connection: dk, kitchen: k, recipe: r, variation: b, retry: {attempts: 3, backoff: 30s}}
  c: {connection: inv, dataflow_id: f1, schedule: {cron: "0 6 * * 1-5", timezone: Europe/Oslo}}
"""


def load(extra: str) -> object:
    raw = yaml.safe_load(BASE)
    raw.update(yaml.safe_load(extra) or {})
    return parse_catalog(raw, {"PW": "secret-value"})


def problems(extra: str) -> str:
    with pytest.raises(ConfigError) as err:
        load(extra)
    return "\n".join(err.value.problems)


def test_a_valid_workflow_with_retry_and_schedule() -> None:
    catalog = load(
        """
        workflows:
          daily:
            parameters: {day: {type: date, required: true}}
            schedule: {cron: "0 5 * * *", missed: skip, parameters: {day: "2026-01-01"}}
            steps:
              one: {pipeline: a, parameters: {day: "{day}"}, on_success: [gate], on_failure: cleanup}
              gate: {approval: {approvers: [U0ALICE], timeout: 2h}, on_success: two}
              two: {pipeline: b}
              cleanup: {pipeline: c}
        """
    )
    workflow = catalog.workflows["daily"]  # type: ignore[attr-defined]
    assert workflow.start == ("one",)
    assert workflow.steps["one"].on_success == ("gate",)
    assert workflow.steps["gate"].approval.timeout == timedelta(hours=2)
    assert catalog.pipelines["b"].retry.attempts == 3  # type: ignore[attr-defined]
    assert catalog.pipelines["b"].retry.delay(2) == timedelta(seconds=60)  # type: ignore[attr-defined]
    assert catalog.pipelines["c"].schedule.timezone == "Europe/Oslo"  # type: ignore[attr-defined]


def test_cycles_unknown_steps_and_impossible_parameters_are_reported_with_paths() -> None:
    text = problems(
        """
        workflows:
          loop:
            steps:
              one: {pipeline: a, on_success: two}
              two: {pipeline: b, on_success: one}
          broken:
            parameters: {day: {type: date}}
            start: nowhere
            steps:
              one: {pipeline: a, parameters: {day: "{when}", size: "9"}, on_success: missing}
              two: {pipeline: nope}
              three: {pipeline: c, parameters: {x: "1"}}
              four: {pipeline: a, parameters: {day: "tomorrow"}}
              five: {approval: {approvers: [bob]}}
          a: {steps: {x: {pipeline: a}}}
        """
    )
    assert "workflows.loop.steps: the steps form a cycle (one → two → one)" in text
    assert "workflows.broken.start: 'nowhere' is not a step of broken" in text
    assert "workflows.broken.steps.one.on_success: 'missing' is not a step of broken" in text
    assert "workflows.broken.steps.one.parameters.day: {when} is not a parameter of the workflow" in text
    assert "workflows.broken.steps.one.parameters.size: a takes no parameter 'size'" in text
    assert "workflows.broken.steps.two.pipeline: 'nope' is not a pipeline in the catalog" in text
    assert "workflows.broken.steps.three.parameters: c runs on a provider that takes no parameters" in text
    assert "workflows.broken.steps.four.parameters.day: 'tomorrow' must be a date like 2024-01-31" in text
    assert "workflows.broken.steps.five.approval.approvers.0: 'bob' is not a Slack id" in text
    assert "workflows.a: a pipeline has the same name" in text


def test_bad_schedules_and_retry_policies_say_what_would_work() -> None:
    raw = yaml.safe_load(BASE)
    raw["pipelines"]["a"]["schedule"] = {"cron": "every day", "timezone": "Mars/Olympus"}
    raw["pipelines"]["b"]["retry"] = {"attempts": 0, "on": ["sometimes"]}
    with pytest.raises(ConfigError) as err:
        parse_catalog(raw, {"PW": "secret-value"})
    text = "\n".join(err.value.problems)
    assert "pipelines.a.schedule.timezone: 'Mars/Olympus' is not a time zone" in text
    assert "pipelines.b.retry.attempts" in text
    assert "pipelines.b.retry.on.0" in text


def test_the_catalog_s_workflows_are_typed_as_workflows() -> None:
    """Issue 13 ("Any only for Slack JSON payloads"): ``Catalog.workflows`` was ``Mapping[str, Any]`` (a cycle
    between model.py and workflows.py dodged), so mypy let a misspelt workflow attribute through."""
    hints = typing.get_type_hints(Catalog)
    assert hints["workflows"] == Mapping[str, Workflow]
    assert typing.Any not in {arg for hint in hints.values() for arg in typing.get_args(hint)}
