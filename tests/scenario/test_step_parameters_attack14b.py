"""Fourteenth independent pass (b): a parameter value that never went through a command's text.

``/pipeline run`` refuses text over 4,000 characters or holding a control or bidi character before parsing it; a
Workflow Builder step's ``parameters`` input (and the run modal's fields) skipped those checks: a right-to-left
override or a NUL was sent to the provider, and a value as long as Slack's event allows (about 1 MB) was recorded and
sent whole. ``ParameterSpec.problem_with``, which every path asks, now refuses them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.scenario.harness import world
from tests.scenario.test_workflow_step import STEP, declare_outputs, ended


def _with_a_text_parameter(catalog: dict[str, Any]) -> None:
    catalog["pipelines"]["leads-ods"]["parameters"]["note"] = {"type": "string"}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("fail\u202eok deliaf", "invisible control character (U+202E)"),
        ("nul\u0000in it", "invisible control character (U+0000)"),
        ("x" * 5_000, "5,000 characters long; a parameter takes at most 4,000"),
    ],
    ids=["bidi-override", "nul", "too-long"],
)
async def test_a_step_parameter_the_command_would_refuse_is_refused_and_nothing_starts(
    tmp_path: Path, value: str, said: str
) -> None:
    async with world(tmp_path, catalog_edit=_with_a_text_parameter) as w:
        declare_outputs(w)
        step = await w.slack.execute_function(
            STEP, {"pipeline": "leads-ods", "parameters": f'note="{value}"', "wait": False}, user="U0ALICE"
        )
        await ended(w, step)
        assert step.state == "failed" and step.error is not None and said in step.error, step.error
        await w.settle()
        assert not w.cards(channel="C0ALERTS")  # no run was started
        fine = await w.slack.execute_function(
            STEP, {"pipeline": "leads-ods", "parameters": 'note="a plain note"', "wait": False}, user="U0ALICE"
        )
        await ended(w, fine)
        assert fine.state == "completed", fine.error
