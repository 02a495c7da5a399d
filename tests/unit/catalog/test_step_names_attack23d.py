"""Twenty-third pass (d): a step name longer than an approval button's value can carry. Drawn with buttons whose value
``parse_step_value`` refuses (1,901 to ~1,990 characters) the approval could not be decided from Slack; longer,
``button()`` raised and the workflow's card was never drawn. The catalog refuses such a name where it is written."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bot.catalog.load import parse_catalog
from bot.catalog.workflows import STEP_NAME_MAX
from bot.errors import ConfigError
from bot.slack.blocks.workflow import parse_step_value, step_value
from tests.unit.catalog.test_workflow_catalog import BASE


def load(step: str) -> object:
    """YAML itself caps a plain key at 1,024 characters; an explicit key (``? …``) or a generated file has none."""
    raw: dict[str, Any] = yaml.safe_load(BASE)
    raw["workflows"] = {"gated": {"steps": {
        step: {"approval": {"approvers": ["U0ALICE"], "timeout": "2h"}, "on_success": "two"},
        "two": {"pipeline": "b"},
    }}}
    return parse_catalog(raw, {"PW": "secret-value"})


def problems(step: str) -> str:
    with pytest.raises(ConfigError) as err:
        load(step)
    return "\n".join(err.value.problems)


def test_a_step_name_too_long_for_its_button_is_refused_at_load() -> None:
    said = problems("s" * (STEP_NAME_MAX + 1))
    assert "workflows.gated.steps" in said and f"{STEP_NAME_MAX}" in said, said


def test_the_longest_step_name_allowed_is_decidable_from_its_button() -> None:
    longest = "s" * STEP_NAME_MAX
    load(longest)
    assert parse_step_value(step_value(10**12, longest)) == (10**12, longest)
    assert len(step_value(10**12, longest)) <= 2000
