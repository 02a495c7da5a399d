"""Each command as its own type: every command the table knows becomes one, and each has exactly one handler."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

import pytest

from bot.slack.commands import handler
from bot.slack.commands.grammar import COMMANDS, AdHocTarget, CommandSpec, Parsed, parse
from bot.slack.commands.model import (
    Cancel,
    Command,
    Help,
    Last,
    ListPipelines,
    Mute,
    OpenRunModal,
    PipelineOp,
    Run,
    Schedules,
    Stats,
    Status,
    Unmute,
    Watch,
    typed,
)

PIPELINES = ("leads-ods", "orders")


def command(text: str, pipelines: tuple[str, ...] = PIPELINES, workflows: tuple[str, ...] = ("nightly",)) -> Command:
    parsed = parse(text, pipelines=pipelines, providers=("rivery", "tailer"), workflows=workflows)
    assert isinstance(parsed, Parsed), parsed
    return typed(parsed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Help()),
        ("help run", Help("run")),
        ("list", ListPipelines()),
        ("ls Rivery", ListPipelines("rivery")),
        ("run", OpenRunModal()),
        ("run leads-ods day=1", Run("leads-ods", {"day": "1"})),
        ("run nightly", Run("nightly", {})),
        ("run rivery:12", Run(AdHocTarget("rivery", "12"), {})),
        ("status", Status()),
        ("status #42", Status(42)),
        ("last leads-ods", Last("leads-ods", 10)),
        ("last leads-ods 25", Last("leads-ods", 25)),
        ("cancel 7", Cancel(7)),
        ("enable leads-ods", PipelineOp("enable", "leads-ods")),
        ("disable leads-ods", PipelineOp("disable", "leads-ods")),
        ("archive leads-ods", PipelineOp("archive", "leads-ods")),
        ("reset leads-ods", PipelineOp("reset", "leads-ods")),
        ("stats", Stats(None, timedelta(days=7))),
        ("stats orders 24h", Stats("orders", timedelta(hours=24))),
        ("watch leads-ods", Watch("leads-ods", True)),
        ("watch leads-ods #data-alerts", Watch("leads-ods", True, "#data-alerts")),
        ("unwatch leads-ods", Watch("leads-ods", False)),
        ("mute leads-ods", Mute("leads-ods", timedelta(hours=1))),
        ("mute leads-ods 4h", Mute("leads-ods", timedelta(hours=4))),
        ("unmute leads-ods", Unmute("leads-ods")),
        ("schedules", Schedules()),
    ],
)
def test_each_command_becomes_its_own_typed_value(text: str, expected: Command) -> None:
    assert command(text) == expected


@pytest.mark.parametrize("spec", COMMANDS, ids=lambda spec: spec.name)
def test_every_example_of_the_table_is_typed(spec: CommandSpec) -> None:
    for example in spec.examples:  # the table's examples name the demo catalog's pipelines and workflow
        typed_example = command(example, (*PIPELINES, "iowa-liquor-pda"), ("nightly", "daily-sales"))
        assert isinstance(typed_example, get_args(Command))


def test_every_command_type_has_exactly_one_handler() -> None:
    in_ack, later = set(handler.IN_ACK), set(handler.WORK)
    assert not in_ack & later
    assert in_ack | later == set(get_args(Command))
    assert in_ack == {Help, ListPipelines}  # answered from the catalog alone, in the ack


def test_a_value_of_the_wrong_type_is_a_grammar_bug() -> None:
    spec = next(s for s in COMMANDS if s.name == "last")
    with pytest.raises(TypeError):
        typed(Parsed(spec, {"pipeline": "leads-ods", "n": "10"}))
